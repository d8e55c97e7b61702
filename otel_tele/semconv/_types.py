"""The shapes the vocabulary is declared in: events, their typed attributes, and the metrics they feed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from json import encoder as _json_encoder
from typing import Any, Literal


def encodable(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate, which no store or wire format takes, is kept visible
    as its ``\\udXXX`` escape (the rest unchanged); already valid text is returned as it is."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


MetricKind = Literal["counter", "updown_counter", "histogram", "gauge"]


class AttrType(Enum):
    """How an attribute value is coerced before it becomes an OTel attribute."""

    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"
    JSON = "json"  # any JSON-able value, carried as a JSON string attribute


def encoder_function(options: json.JSONEncoder) -> Callable[[Any], str]:
    """``options.encode``, the same text, without its per-call set-up.

    ``JSONEncoder.encode`` builds a new C encoder (and a float formatter and a circular-reference
    table) on every call — on the robot path that set-up cost about as much as the encoding (issue
    14). This builds one per thread: the C encoder keeps the table of the containers it is inside,
    so two threads must not share one (a ``default`` written in Python lets the other thread run
    mid-encoding). Without the C accelerator, or with ``indent``, it is ``options.encode`` itself.

    Example::

        dumps = encoder_function(json.JSONEncoder(separators=(",", ":")))
        dumps({"a": [1, 2.5]})  # '{"a":[1,2.5]}'
    """
    return _encoders(options)[0]


def _encoders(
    options: json.JSONEncoder,
) -> tuple[Callable[[Any], str], Callable[[Sequence[Any]], list[str]]]:
    """``encoder_function(options)`` and its column form (``options.encode`` of each value, the
    thread's encoder taken once for all of them)."""
    make: Any = getattr(_json_encoder, "c_make_encoder", None)  # the C accelerator, when built
    if make is None or options.indent is not None:
        plain = options.encode
        return plain, lambda values: [plain(value) for value in values]
    text = _json_encoder.encode_basestring_ascii if options.ensure_ascii else _json_encoder.encode_basestring
    circular = options.check_circular

    def build() -> tuple[Callable[[Any, int], Any], dict[int, Any] | None]:
        markers: dict[int, Any] | None = {} if circular else None
        encode = make(
            markers,
            options.default,
            text,
            None,
            options.key_separator,
            options.item_separator,
            options.sort_keys,
            options.skipkeys,
            options.allow_nan,
        )
        return encode, markers

    local = threading.local()

    def each(values: Sequence[Any]) -> list[str]:
        own = getattr(local, "encoder", None)
        if own is None:  # this thread's first call, or one from a ``default`` (or a ``repr``) the
            own = build()  # thread's encoder is running: that one gets its own
        local.encoder = None  # taken until this call returns
        try:
            encode, join = own[0], "".join
            # A bare string as JSONEncoder.encode does it.
            return [text(value) if isinstance(value, str) else join(encode(value, 0)) for value in values]
        except BaseException:
            if own[1] is not None:
                own[1].clear()  # a failure leaves the containers it was inside marked as open
            raise
        finally:
            local.encoder = own

    def encode(value: Any) -> str:
        if isinstance(value, str):  # what JSONEncoder.encode does for a bare string
            return text(value)
        return each((value,))[0]

    return encode, each


_dumps, _dumps_each = _encoders(
    json.JSONEncoder(default=repr, allow_nan=True, ensure_ascii=False, separators=(",", ":"))
)
_dumps_ascii = encoder_function(json.JSONEncoder(default=repr, allow_nan=True, separators=(",", ":")))


def to_json(value: Any) -> str:
    """JSON text for any value: NaN/inf kept as JavaScript literals, the unserialisable as ``repr``.

    Lone surrogates come out as ``\\udXXX`` escapes (``json.loads`` gives them back), so the text is
    valid UTF-8 for every store. A value JSON cannot carry at all (nested too deep, keys that are
    not strings or numbers, a ``repr`` that raises) is a ``ValueError`` naming only the reason.
    """
    try:
        return _utf8(_dumps(value), value)
    except Exception as exc:
        raise ValueError(f"not JSON-serialisable ({type(exc).__name__})") from None


def to_json_each(values: Sequence[Any]) -> list[str]:
    """``[to_json(value) for value in values]``: the same texts, the thread's encoder taken once
    (a column of values: ``otel_tele._event_rows``). A value with no JSON text is ``to_json``'s
    ``ValueError``."""
    try:
        texts = _dumps_each(values)
    except Exception:
        return [to_json(value) for value in values]  # raises, naming only the reason
    for index, text in enumerate(texts):
        if not text.isascii():
            texts[index] = _utf8(text, values[index])
    return texts


def _utf8(text: str, value: Any) -> str:
    """``text`` (``value`` as JSON), or ``value`` with every non-ASCII character escaped when
    ``text`` is not valid UTF-8 (a lone surrogate): then it comes out as its ``\\udXXX`` escape."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _dumps_ascii(value)
    return text


def _to_str(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        # Lone surrogates cannot be encoded by any exporter; keep them visible instead of failing.
        return encodable(value if type(value) is str else str.__str__(value))  # not a subclass's __str__
    return str(value)


_INT64 = range(-(2**63), 2**63)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} is not an integer")
    number = int(value)
    if number not in _INT64:  # OTLP and SQLite integers are 64-bit
        raise ValueError(f"{value!r} does not fit a 64-bit integer")
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no", ""):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    return bool(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    return float(value)  # NaN and ±inf are valid measurements and pass through


COERCERS: Mapping[AttrType, Callable[[Any], Any]] = {
    AttrType.INT: _to_int,
    AttrType.FLOAT: _to_float,
    AttrType.STR: _to_str,
    AttrType.BOOL: _to_bool,
    AttrType.JSON: to_json,
}


@dataclass(frozen=True)
class Attr:
    """A typed attribute key (``unit`` follows UCUM where it applies)."""

    key: str
    type: AttrType
    unit: str | None = None
    doc: str = ""


#: The Python type a coerced value already has (values of that exact type skip coercion).
_NATIVE: Mapping[AttrType, type] = {
    AttrType.INT: int,
    AttrType.FLOAT: float,
    AttrType.STR: str,
    AttrType.BOOL: bool,
}


@dataclass(frozen=True)
class Event:
    """A point event: becomes one OTel log record with ``event_name`` = ``name``."""

    name: str
    attributes: tuple[Attr, ...]
    doc: str = ""
    attributes_by_key: Mapping[str, Attr] = field(init=False, repr=False, compare=False)
    #: key → (native type or None, coercer): the hot path's view of ``attributes``
    coercers: Mapping[str, tuple[type | None, Callable[[Any], Any]]] = field(
        init=False, repr=False, compare=False
    )
    #: ASCII key → native type: the keys ``coerce_attributes`` can pass at a glance
    natives: Mapping[str, type] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes_by_key", {attr.key: attr for attr in self.attributes})
        object.__setattr__(
            self,
            "coercers",
            {attr.key: (_NATIVE.get(attr.type), COERCERS[attr.type]) for attr in self.attributes},
        )
        object.__setattr__(
            self,
            "natives",
            {
                attr.key: _NATIVE[attr.type]
                for attr in self.attributes
                if attr.type in _NATIVE and type(attr.key) is str and attr.key.isascii()
            },
        )


@dataclass(frozen=True)
class Metric:
    """A metric fed by an event: ``value`` names the attribute recorded (``None`` counts 1 per event),
    ``labels`` the attributes that become metric attributes (keep them low-cardinality)."""

    name: str
    kind: MetricKind
    unit: str
    description: str
    event: str
    value: str | None = None
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


def coerce_attributes(event: Event | None, attributes: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Typed, OTel-valid attributes for ``event``; returns (attributes, problems).

    Declared keys are coerced to their type; a value that cannot be coerced is left out and named in
    ``problems``. Undeclared keys pass through when they are valid OTel attribute values and are
    JSON-encoded otherwise, so nothing the caller gave is silently lost. A plain ``dict`` is fixed in
    place (the event path owns it) — no second dict per event, which the telemetry thread and the
    garbage collector would both pay for.
    """
    problems: list[str] = []
    declared = event.coercers if event is not None else _NO_COERCERS
    natives = event.natives if event is not None else _NO_NATIVES
    changes: list[tuple[Any, Any, Any]] | None = None  # (old key, new key, new value or _DROP)
    for key, value in attributes.items():
        value_type = type(value)
        # Hottest path, one lookup: a declared ASCII key whose value already has its type.
        if (
            value_type is natives.get(key)
            and type(key) is str
            and (value_type is float or (value.isascii() if value_type is str else value in _INT64))
        ):
            continue
        if value is None:
            changes = changes or []
            changes.append((key, key, _DROP))
            continue
        entry = declared.get(key)
        # Hot path: a value that already has its type (a str only if plainly encodable).
        if type(key) is str and key.isascii():
            if entry is not None:
                if value_type is entry[0] and (
                    value_type is float or (value.isascii() if value_type is str else value in _INT64)
                ):
                    continue
            elif _already_plain(value, value_type):
                continue
            new_key: str | None = key
        else:
            new_key = _key_text(key)  # not a string, or text that may not encode (lone surrogates)
        changes = changes or []
        if new_key is None:
            problems.append(f"a key of type {type(key).__name__} that has no text")
            changes.append((key, key, _DROP))
            continue
        try:
            changes.append((key, new_key, entry[1](value) if entry is not None else _plain_value(value)))
        except (TypeError, ValueError, OverflowError) as exc:
            problems.append(f"{new_key}: {exc}")
            changes.append((key, new_key, _DROP))
        except Exception as exc:  # the value's own methods raised: its message is not ours to keep
            problems.append(f"{new_key}: unusable value ({type(exc).__name__})")
            changes.append((key, new_key, _DROP))
    clean = attributes if type(attributes) is dict else dict(attributes)
    if changes:
        for key, new_key, value in changes:
            if new_key is not key or value is _DROP:
                del clean[key]
            if value is not _DROP:
                clean[new_key] = value
    return clean, problems


_DROP = object()


def _key_text(key: Any) -> str | None:
    """An attribute key as plain text (OTel keys are strings), or None if it has none."""
    try:
        return _to_str(key)
    except Exception:
        return None


def _already_plain(value: Any, value_type: type) -> bool:
    if value_type is float or value_type is bool:
        return True
    if value_type is int:
        return value in _INT64
    return value_type is str and value.isascii()


_NO_COERCERS: Mapping[str, tuple[type | None, Callable[[Any], Any]]] = {}
_NO_NATIVES: Mapping[str, type] = {}


def _plain_value(value: Any) -> Any:
    """An undeclared value as a valid OTel attribute value of exact builtin types (every exporter can
    encode it: 64-bit integers, UTF-8 text), or its JSON text."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        number = int(value)
        return number if number in _INT64 else str(number)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str | bytes | bytearray):
        return _to_str(value)
    homogeneous = isinstance(value, list | tuple) and value and all(type(v) is type(value[0]) for v in value)
    if homogeneous:
        first = value[0]
        if type(first) is str:
            return tuple(_to_str(v) for v in value)
        if type(first) is int and all(v in _INT64 for v in value):
            return tuple(value)
        if type(first) is float or type(first) is bool:
            return tuple(value)
    return to_json(value)
