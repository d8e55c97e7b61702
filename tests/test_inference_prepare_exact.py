"""``prepare`` (column at a time: rows vouched for by ``_clean``, rollups by ``_rollup``) gives exactly
what the row-by-row reference below gives: the same rows (the same objects' values, in order), the
same rollup measures bit for bit (float sums depend on the order of addition: values here are not
multiples of a power of two), in the same key order, and the same rejected count, for hostile batches.

The reference is the writer's previous code, kept here as the oracle: ``sanitize_row`` per row, a
``min``/``max``/``+=`` fold per row into the minute buckets, merged into hours.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

import pytest
from otel_tele.exporters.postgres import _rollup, _rows
from otel_tele.exporters.postgres._rollup import number
from otel_tele.exporters.postgres.schema import (
    MEASURE_NAMES,
    ROLLUP_MINUTE,
    ROLLUPS,
    TTFT_BOUNDS,
    empty_measures,
    merge_into,
)

from otel_tele.semconv import inference as inf

_I = {name: i for i, name in enumerate(MEASURE_NAMES)}


def _add_row(m: list[float], row: Any, meta: Mapping[str, Any]) -> None:
    m[_I["count"]] += 1
    value = number(row[2])
    if value is not None:
        m[_I["value_count"]] += 1
        m[_I["value_sum"]] += value
        m[_I["value_min"]] = value if math.isnan(m[_I["value_min"]]) else min(m[_I["value_min"]], value)
        m[_I["value_max"]] = value if math.isnan(m[_I["value_max"]]) else max(m[_I["value_max"]], value)
    if row[4] in inf.FAILURE_STATUSES:
        m[_I["failures"]] += 1
    if row[0] != inf.THOUGHT_LATENCY_TYPE:
        return
    ttft = number(meta.get("time_to_first_token_s"))
    if ttft is not None and ttft >= 0:
        m[_I["ttft_count"]] += 1
        m[_I["ttft_sum"]] += ttft
        m[_I["ttft_max"]] = ttft if math.isnan(m[_I["ttft_max"]]) else max(m[_I["ttft_max"]], ttft)
        m[_I["ttft_le_00"] + bisect_left(TTFT_BOUNDS, ttft)] += 1
    tokens = number(meta.get("tokens_generated"))
    prompt = number(meta.get("prompt_tokens"))
    if prompt is not None and prompt > 0:
        m[_I["prompt_tokens_sum"]] += int(prompt)
    if tokens is None or tokens <= 0:
        m[_I["zero_tokens"]] += tokens == 0
        return
    m[_I["tokens_sum"]] += int(tokens)
    latency = number(meta.get("inference_time_ms"))
    if latency is not None:
        m[_I["latency_ms_sum"]] += latency
    if value is not None:
        m[_I["weight_sum"]] += int(tokens)
        m[_I["weighted_sum"]] += value * int(tokens)


def reference(raw: list[Any]) -> tuple[list[Any], dict[str, dict[Any, list[float]]], int]:
    rows, rejected, minute = [], 0, {}
    for one in raw:
        try:
            row, meta = _rows.sanitize_row(one)
        except Exception:
            rejected += 1
            continue
        rows.append(row)
        key = (int(row[5] // 60) * 60, row[0], row[1] or "")
        measures = minute.get(key)
        if measures is None:
            measures = minute[key] = empty_measures()
        _add_row(measures, row, meta)
    rollups = {ROLLUP_MINUTE.table: minute}
    for rollup in ROLLUPS[1:]:
        coarse: dict[Any, list[float]] = {}
        for (bucket, event_type, component), measures in minute.items():
            target = coarse.setdefault(
                (bucket // rollup.seconds * rollup.seconds, event_type, component), empty_measures()
            )
            merge_into(target, measures)
        rollups[rollup.table] = coarse
    return rows, rollups, rejected


def _meta(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.6:
        meta: dict[str, Any] = {
            "model": rng.choice(["m", "é", "😀"]),
            "inference_time_ms": rng.random() * 900,
        }
        meta["tokens_generated"] = rng.choice([0, 1, 7, 100, -3, 2.5, "9", True, None, 10**400, 0.0, -0.0])
        if rng.random() < 0.5:
            meta["prompt_tokens"] = rng.choice([0, 3, 12.7, -1, "x", 10**30])
        if rng.random() < 0.5:
            meta["time_to_first_token_s"] = rng.choice(
                [0.0, 0.05, 0.1, 0.25, 1.0, 3.3, 10.0, 99.0, -1.0, rng.random()]
            )
        separators = rng.choice([(",", ":"), (", ", ": ")])
        return json.dumps(meta, ensure_ascii=rng.random() < 0.5, separators=separators)
    return rng.choice(HOSTILE_METADATA)


HOSTILE_METADATA: list[Any] = [
    "{}",
    "[]",
    " {}",
    "{} ",
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": "\\u0000"}',
    '{"a": "\ud800"}',
    '{"a": "NaNo"}',
    "not json",
    '{"a": 1}{"b": 2}',
    '{"otel_tele.truncated": {}}',
    '{"tokens_generated": 5, "tokens_generated": 6}',
    "[" * 100_000 + "]" * 100_000,
    "null",
    '"text"',
    {"a": 1},
    None,
    7,
    "{\n}",
]
HOSTILE_KEYS: list[Any] = ["", "a\x00b", "\ud800x", "k" * 300, "é" * 256, "é" * 257, 5, None]
HOSTILE_TS: list[Any] = [math.nan, math.inf, 1.0e13, -62_135_596_800.0, 253_402_300_799.0, 1_700_000_000, "x"]


def _key(rng: random.Random, none: bool) -> Any:
    return rng.choice(
        ["THOUGHT_LATENCY"] * 6
        + ["LOAD_LATENCY", "m1", "é", *HOSTILE_KEYS[:-1]]
        + ([None] * 2 if none else [None])
    )


def hostile_rows(seed: int, n: int, *, odd_shapes: bool) -> list[Any]:
    rng = random.Random(seed)
    rows: list[Any] = []
    t = 1_700_000_000.123
    for _ in range(n):
        t += rng.random() * 20
        ts: Any = t
        if rng.random() < 0.05:
            ts = rng.choice(
                [math.nan, math.inf, 1.0e13, -62_135_596_800.0, 253_402_300_799.0, 1_700_000_000, "x"]
            )
        value = rng.choice(
            [None, math.nan, math.inf, -math.inf, -0.0, 0.0, 3, True, rng.random() * 10, rng.random()]
        )
        row = (
            _key(rng, False),
            _key(rng, True),
            value,
            _meta(rng),
            rng.choice(["ok", "failed", "error", None, "s" * 300, "no_tokens"]),
            ts,
            rng.choice([None, "ab" * 16]),
            rng.choice([None, "cd" * 8]),
        )
        if odd_shapes and rng.random() < 0.01:
            row = row[:7]
        elif odd_shapes and rng.random() < 0.01:
            row = list(row)  # type: ignore[assignment]
        rows.append(row)
    return rows


def clean_rows(seed: int, n: int) -> list[Any]:
    """What the event path sends: every row stored as it came (the fast path throughout)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ms = 100 + rng.random() * 900
        tokens = rng.randrange(0, 300)
        meta = {"model": "m", "inference_time_ms": ms, "tokens_generated": tokens, "prompt_tokens": i % 40}
        if i % 3 == 0:
            meta["time_to_first_token_s"] = rng.random() * 4
        value = ms / tokens if tokens else None
        ts = 1_700_000_000.0 + i * rng.random() * 3
        rows.append(("THOUGHT_LATENCY", f"model{i % 3}", value, json.dumps(meta), "ok", ts, None, None))
    return rows


def _same(raw: list[Any]) -> None:
    batch = _rows.prepare(list(raw), rejected=2)
    rows, rollups, rejected = reference(raw)
    assert batch.rejected == rejected + 2
    assert repr(batch.rows) == repr(rows)
    assert [type(v) for row in batch.rows for v in row] == [type(v) for row in rows for v in row]
    for table, expected in rollups.items():
        got = batch.rollups[table]
        assert list(got) == list(expected)  # key order: the hour rollup is merged in it
        assert repr(got) == repr(expected)  # repr: every bit of every float, NaN and -0.0 included
        assert [type(v) for m in got.values() for v in m] == [type(v) for m in expected.values() for v in m]


@pytest.fixture(params=["by key", "row after row", "as the batch decides"])
def fold(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each way ``_rollup`` folds the measures: per key a column at a time, or row after row."""
    rows_per_key = {"by key": 0, "row after row": 10**9}.get(request.param)
    if rows_per_key is not None:
        monkeypatch.setattr(_rollup, "_ROWS_PER_KEY", rows_per_key)


@pytest.mark.usefixtures("fold")
@pytest.mark.parametrize("odd_shapes", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_hostile_batches_prepare_exactly_as_row_by_row(seed: int, odd_shapes: bool) -> None:
    raw = hostile_rows(seed, 1500, odd_shapes=odd_shapes)
    metas = _rows.clean_metadata(raw, _rows._TS_RANGE)
    assert 0 < metas.count(None) < len(raw) - 100  # both paths taken
    _same(raw)


@pytest.mark.usefixtures("fold")
@pytest.mark.parametrize("seed", range(3))
def test_clean_batches_prepare_exactly_as_row_by_row(seed: int) -> None:
    raw = clean_rows(seed, 3000)
    assert None not in _rows.clean_metadata(raw, _rows._TS_RANGE)  # all on the column path
    _same(raw)


@pytest.mark.usefixtures("fold")
def test_one_key_batch_and_empty_batch() -> None:
    raw = [row for row in clean_rows(9, 500) if row[1] == "model0"]
    raw = [(*row[:5], 1_700_000_000.0 + i / 1000, *row[6:]) for i, row in enumerate(raw)]
    _same(raw)
    _same([])


def test_an_integer_beyond_float_in_metadata_is_no_measurement_and_fails_nothing() -> None:
    huge = "1" + "0" * 400
    raw = [
        (
            "THOUGHT_LATENCY",
            "m",
            2.0,
            '{"tokens_generated": ' + huge + ', "prompt_tokens": 3}',
            "ok",
            1e9,
            None,
            None,
        ),
        (
            "THOUGHT_LATENCY",
            "m",
            2.0,
            '{"tokens_generated": 4, "time_to_first_token_s": ' + huge + "}",
            "ok",
            1e9,
            None,
            None,
        ),
    ]
    batch = _rows.prepare(raw)
    assert batch.rejected == 0 and len(batch.rows) == 2
    (measures,) = batch.rollups[ROLLUP_MINUTE.table].values()
    assert measures[_I["tokens_sum"]] == 4 and measures[_I["prompt_tokens_sum"]] == 3
    assert measures[_I["ttft_count"]] == 0


def test_each_hostile_value_alone_in_a_clean_batch() -> None:
    """Every hostile value once, in an otherwise clean row among clean rows: judged like the reference."""
    base = clean_rows(4, 40)
    for column, values in ((3, HOSTILE_METADATA), (0, HOSTILE_KEYS), (1, HOSTILE_KEYS), (4, HOSTILE_KEYS)):
        for value in values:
            raw = list(base)
            raw[17] = (*raw[17][:column], value, *raw[17][column + 1 :])
            _same(raw)
    for ts in HOSTILE_TS:
        raw = list(base)
        raw[5] = (*raw[5][:5], ts, *raw[5][6:])
        _same(raw)
