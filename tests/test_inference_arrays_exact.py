"""The bulk array encodings (``_arrays.encode`` framing whole columns, ``encode_epoch_timestamps``
computing microseconds from epoch floats) send exactly the bytes the element-by-element path sends
(the driver's own dumper per value, of ``datetime.fromtimestamp(ts, UTC)`` for timestamps), for
hostile values; what the element path refuses, the bulk path refuses too."""

from __future__ import annotations

import math
import random
import struct
from datetime import UTC, datetime
from typing import Any

import pytest
from otel_tele.exporters.postgres import _arrays
from otel_tele.exporters.postgres._arrays import encode, encode_each, encode_epoch_timestamps

NAN_PAYLOAD = struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0]
FLOATS: list[Any] = [
    0.0, -0.0, 1.5, -2.25, math.nan, -math.nan, NAN_PAYLOAD, math.inf, -math.inf, 5e-324, -5e-324,
    1.7976931348623157e308, -1.7976931348623157e308, 2.2250738585072014e-308, 1 / 3, 1e15 + 0.3,
]  # fmt: skip
INTS: list[Any] = [0, 1, -1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63), 10**18, 255, -256]
TEXTS: list[Any] = [
    "", "a", "é", "😀", "ünïcödé 😀", "a\x00b", "\x00", "x" * 70_000, "line\nbreak\ttab", "'\"\\",
    '{"model":"m","ms":1.5}', "中文", "\u200b\ufeff", "\U0010ffff",
]  # fmt: skip
#: Epoch seconds the stores take (years 1 to 9999), half microseconds (rounded half to even), the
#: 2000-01-01 epoch PostgreSQL counts from, and negative fractions.
TIMESTAMPS: list[float] = [
    -62_135_596_800.0, -62_135_596_799.9999995, -62_135_596_799.999999, 253_402_300_799.0,
    253_402_300_798.9999995, 253_402_300_798.999999, 0.0, -0.0, 0.0000005, 0.0000015, 0.0000025, -0.0000005,
    -1.0000005, -1.5, 946_684_800.0, 946_684_799.9999995, 946_684_800.0000005, 1_700_000_000.0000005,
    1_700_000_000.0000015, 1_700_000_123.9999995, 1_700_000_123.999999, 2_000_000_000.25, 1e-7, -1e-7,
]  # fmt: skip


def _same(values: list[Any], element: str) -> None:
    assert _arrays._BULK_FROM <= 40
    assert bytes(encode(values, element)) == bytes(encode_each(values, element))
    assert encode(values, element).oid == encode_each(values, element).oid


@pytest.mark.parametrize(("element", "values"), [("float8", FLOATS), ("int8", INTS), ("text", TEXTS)])
def test_bulk_arrays_are_the_element_by_element_bytes(element: str, values: list[Any]) -> None:
    rng = random.Random(element)
    _same(values, element)
    _same([*values, None] * 4, element)  # with NULLs (from 32 elements a column is framed whole)
    _same([None] * 5, element)
    _same([None] * 40, element)
    _same([], element)
    _same(values[:1], element)
    shuffled = values * 20
    rng.shuffle(shuffled)
    _same(shuffled, element)


def test_repeated_key_texts_are_the_element_by_element_bytes() -> None:
    keys = ["THOUGHT_LATENCY", "gemma2:27b", "ok", "é😀", ""] * 500 + [None, "x"]
    _same(keys, "text")
    _same([k for k in keys if k is not None], "text")


def test_random_floats_and_ints_bit_for_bit() -> None:
    rng = random.Random(5)
    floats = [struct.unpack(">d", rng.randbytes(8))[0] for _ in range(5_000)]  # every bit pattern
    _same(floats, "float8")
    _same([rng.randrange(-(2**63), 2**63) for _ in range(5_000)], "int8")


@pytest.mark.parametrize(
    ("element", "value"), [("int8", 2**63), ("int8", -(2**63) - 1), ("text", "\ud800"), ("text", "a\udfffb")]
)
def test_what_the_element_path_refuses_the_bulk_path_refuses(element: str, value: Any) -> None:
    with pytest.raises((OverflowError, struct.error, UnicodeEncodeError)):
        encode_each([value], element)
    with pytest.raises((OverflowError, struct.error, UnicodeEncodeError)):
        encode(["ok" if element == "text" else 1] * 40 + [value], element)


def _timestamps_each(seconds: list[float]) -> bytes:
    return bytes(encode_each([datetime.fromtimestamp(s, UTC) for s in seconds], "timestamptz"))


def test_epoch_timestamps_are_the_bytes_of_their_datetimes() -> None:
    assert bytes(encode_epoch_timestamps(TIMESTAMPS)) == _timestamps_each(TIMESTAMPS)
    assert encode_epoch_timestamps(TIMESTAMPS).oid == encode_each([], "timestamptz").oid
    assert bytes(encode_epoch_timestamps([])) == _timestamps_each([])
    rng = random.Random(11)
    seconds = [rng.uniform(-62_135_596_799.0, 253_402_300_798.0) for _ in range(5_000)]
    seconds += [
        round(rng.uniform(0, 4e9), 6) + rng.choice([0.0000005, -0.0000005, 0.0]) for _ in range(5_000)
    ]
    seconds += [rng.randrange(0, 4 * 10**15) / 10**6 + 5e-7 for _ in range(5_000)]  # half microseconds
    assert bytes(encode_epoch_timestamps(seconds)) == _timestamps_each(seconds)
