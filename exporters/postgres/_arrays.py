"""One-dimensional PostgreSQL arrays in binary form, encoded here from a column of a batch.

psycopg adapts a Python list parameter element by element in Python (~5 µs per element at 2,048
elements: more than the whole row costs otherwise). Here each element goes through the driver's own
binary dumper (its C implementation: the bytes a binary ``COPY`` of the value would send) and the
array is framed once: ``ndim, has_null, element oid, length, lower bound``, then ``int32 length +
bytes`` per element (-1 for NULL).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import datetime
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
    "timestamptz"); each value must be of the element's Python type (float, int, str, aware datetime)."""
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
