"""One-dimensional PostgreSQL arrays in binary form, encoded here from a column of a batch.

psycopg adapts a Python list parameter element by element in Python (~5 µs per element at 2,048
elements: more than the whole row costs otherwise). Here the array is framed once: ``ndim, has_null,
element oid, length, lower bound``, then ``int32 length + bytes`` per element (-1 for NULL), each
element's bytes the ones the driver's own binary dumper sends (what a binary ``COPY`` of the value
would send). :func:`encode` frames whole columns at once (float8/int8 through ``array``, text from
``str.encode``, timestamps from epoch seconds in :func:`encode_epoch_timestamps`); :func:`encode_each`
goes element by element through the dumper, and the tests hold the two to the same bytes.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from datetime import datetime
from math import modf
from typing import Any

from psycopg import postgres
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import Format

_HEADER = struct.Struct(">iiIii")
_EMPTY = struct.Struct(">iiI")
_LENGTH = struct.Struct(">i").pack
_NULL = _LENGTH(-1)


class Encoded(bytes):
    """An array already in PostgreSQL's binary form; ``oid`` is the array type's."""

    oid: int


class _EncodedDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return bytes(obj)

    def get_key(self, obj: Any, format: PyFormat) -> Any:
        return (type(self), obj.oid)

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        dumper = _EncodedDumper(Encoded)
        dumper.oid = obj.oid
        return dumper


def register(adapters: Any) -> None:
    """Let ``adapters`` (a connection's or a cursor's) send :class:`Encoded` arrays as they are."""
    adapters.register_dumper(Encoded, _EncodedDumper)


def _element_dumper(python_type: type, type_name: str) -> tuple[int, int, Callable[[Any], Any]]:
    dumper = postgres.adapters.get_dumper(python_type, PyFormat.BINARY)(python_type, None)
    info = postgres.types[type_name]
    return info.oid, info.array_oid, dumper.dump


#: (element oid, array oid, element dumper) per element type the store writes.
ELEMENTS: dict[str, tuple[int, int, Callable[[Any], Any]]] = {
    "text": _element_dumper(str, "text"),
    "float8": _element_dumper(float, "float8"),
    "int8": _element_dumper(int, "int8"),
    "timestamptz": _element_dumper(datetime, "timestamptz"),
}


def encode(values: Sequence[Any], element: str) -> Encoded:
    """``values`` (None: NULL) as a binary array of ``element`` ("text", "float8", "int8",
    "timestamptz"); each value must be of the element's Python type (float, int, str, aware datetime).

    Without NULLs, float8 and int8 arrays are framed whole (:func:`_fixed_width`) and text arrays
    from one ``str.encode`` per value (the bytes the driver's binary text dumper sends: UTF-8, strict);
    the bytes are the ones :func:`encode_each` frames element by element (tests hold them equal)."""
    if len(values) < _BULK_FROM or element == "timestamptz":  # a rollup's few keys: framing costs more
        return encode_each(values, element)
    has_null = None in values
    if element == "text":
        body = _text_body(values, has_null)
    elif has_null:
        return encode_each(values, element)
    else:
        body = _fixed_width(values, _TYPECODES[element])
    oid, array_oid, _ = ELEMENTS[element]
    encoded = Encoded(_HEADER.pack(1, int(has_null), oid, len(values), 1) + body)
    encoded.oid = array_oid
    return encoded


def encode_epoch_timestamps(seconds: Sequence[float]) -> Encoded:
    """Epoch seconds (floats, none missing) as a timestamptz array: the bytes :func:`encode` sends for
    ``datetime.fromtimestamp(s, UTC)``, without making the datetimes. ``fromtimestamp`` rounds the
    fraction's microseconds half to even (``round``) and the binary timestamptz is microseconds since
    2000-01-01 UTC: the same integer, computed directly."""
    oid, array_oid, _ = ELEMENTS["timestamptz"]
    if not seconds:
        return encode_each(seconds, "timestamptz")
    micros = [
        int(whole) * 1_000_000 + round(fraction * 1e6) - _PG_EPOCH_US
        for fraction, whole in map(modf, seconds)
    ]
    encoded = Encoded(_HEADER.pack(1, 0, oid, len(micros), 1) + _fixed_width(micros, "q"))
    encoded.oid = array_oid
    return encoded


def _fixed_width(values: Sequence[Any], typecode: str) -> bytes:
    """8-byte elements framed in one pass: ``array`` packs them (network byte order after a swap),
    strided slice assignments put each behind its length word (``00 00 00 08``)."""
    data = array(typecode, values)
    if _SWAP:
        data.byteswap()
    raw = data.tobytes()
    out = bytearray(12 * len(data))
    out[3::12] = b"\x08" * len(data)
    for byte in range(8):
        out[4 + byte :: 12] = raw[byte::8]
    return bytes(out)


def _text_body(values: Sequence[Any], has_null: bool) -> bytes:
    """Each text framed behind its length (NULL: length -1). A column of few distinct texts (event
    type, model, status) frames each distinct text once and joins the frames."""
    distinct = set(values)
    if len(distinct) * 8 <= len(values):
        framed = {v: _NULL if v is None else _LENGTH(len(d := v.encode())) + d for v in distinct}
        return b"".join(map(framed.__getitem__, values))
    if has_null:
        data = [b"" if v is None else v.encode() for v in values]
        lengths = [_NULL if v is None else _LENGTH(len(d)) for v, d in zip(values, data, strict=True)]
    else:
        data = [v.encode() for v in values]
        lengths = list(map(_LENGTH, map(len, data)))
    parts: list[bytes] = lengths + data
    parts[0::2], parts[1::2] = lengths, data
    return b"".join(parts)


def encode_each(values: Sequence[Any], element: str) -> Encoded:
    """:func:`encode` element by element through the driver's dumper (datetimes, arrays with NULLs)."""
    oid, array_oid, dump = ELEMENTS[element]
    if not values:
        encoded = Encoded(_EMPTY.pack(0, 0, oid))
    else:
        parts: list[Any] = []
        append = parts.append
        has_null = 0
        if element == "int8":  # int's dumper picks the narrowest type: frame the 8 bytes here
            for value in values:
                if value is None:
                    has_null = 1
                    append(_NULL)
                else:
                    append(_INT8(8, value))
        elif element == "float8":
            for value in values:
                if value is None:
                    has_null = 1
                    append(_NULL)
                else:
                    append(_FLOAT8(8, value))
        else:
            for value in values:
                if value is None:
                    has_null = 1
                    append(_NULL)
                else:
                    data = dump(value)
                    append(_LENGTH(len(data)))
                    append(data)
        encoded = Encoded(_HEADER.pack(1, has_null, oid, len(values), 1) + b"".join(parts))
    encoded.oid = array_oid
    return encoded


_INT8 = struct.Struct(">iq").pack
_FLOAT8 = struct.Struct(">id").pack
_TYPECODES = {"float8": "d", "int8": "q"}
_BULK_FROM = 32  # elements from which framing a whole column beats element by element
_SWAP = sys.byteorder == "little"
_PG_EPOCH_US = 946_684_800 * 1_000_000  # PostgreSQL's timestamps count from 2000-01-01 UTC
