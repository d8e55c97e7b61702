"""The write-time rollups equal a recomputation from the raw rows, after a burst over several models,
minutes and hours written in many batches (one retried), on both stores.

The recomputation here is written independently of the writer (``_rows``): plain Python over the rows
read back from ``system_telemetry``. Values are multiples of 1/8, so every sum is exact in any order.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from bisect import bisect_left
from collections import defaultdict
from typing import Any

import psycopg
from otel_tele.exporters.postgres._rows import prepare
from otel_tele.exporters.postgres.schema import MEASURE_NAMES, ROLLUPS, TTFT_BOUNDS, InferenceConfig

from otel_tele.inference_stats import InferenceStats

from . import _pg
from ._pg import Env

pg_dsn, clean_pg, env = _pg.pg_dsn, _pg.clean_pg, _pg.env  # fixtures

MODELS = ("llama3.2:3b", "gemma2:9b", "qwen2.5:14b", "mistral:7b", "gemma2:27b")


def burst(n: int, start: float) -> list[tuple[Any, ...]]:
    """``n`` rows over ~5 hours: inferences (some failed, some with no token or a TTFT), loads, VRAM."""
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        ts = start + i * 7.25  # crosses minute and hour boundaries; whole milliseconds
        model = MODELS[i % len(MODELS)]
        kind = i % 11
        if kind == 0:
            meta = {"model": model, "load_time_ms": 1000 + i % 64 / 8}
            rows.append(("LOAD_LATENCY", model, 1 + i % 64 / 8, json.dumps(meta), "ok", ts, None, None))
        elif kind == 1:
            rows.append(("VRAM_CHECK", "gpu0", 500 + i % 80 / 8, '{"used": 1}', None, ts, None, None))
        else:
            tokens = 0 if kind == 2 else 1 + i % 300
            ms = 8 + i % 4000 / 8
            meta: dict[str, Any] = {"model": model, "inference_time_ms": ms, "tokens_generated": tokens}
            if i % 3:
                meta["prompt_tokens"] = i % 50
            if kind in (4, 5):
                meta["time_to_first_token_s"] = (i % 80) / 8
            score = ms / tokens if tokens else None
            status = "failed" if kind == 6 else ("ok" if tokens else "no_tokens")
            score = None if kind == 6 else (None if score is None else round(score * 8) / 8)
            rows.append(("THOUGHT_LATENCY", model, score, json.dumps(meta), status, ts, "ab" * 16, "cd" * 8))
    return rows


def recompute(raw: list[tuple[Any, ...]], seconds: int) -> dict[tuple[int, str, str], list[Any]]:
    """Every rollup measure per (bucket, event type, component), from the stored rows only."""
    out: dict[tuple[int, str, str], dict[str, Any]] = defaultdict(
        lambda: {name: 0 for name in MEASURE_NAMES} | {"value_min": None, "value_max": None, "ttft_max": None}
    )
    for event_type, component, value, metadata, status, ts in raw:
        m = out[(int(ts // seconds) * seconds, event_type, component or "")]
        meta = json.loads(metadata)
        m["count"] += 1
        if value is not None and math.isfinite(value):
            m["value_count"] += 1
            m["value_sum"] += value
            m["value_min"] = value if m["value_min"] is None else min(m["value_min"], value)
            m["value_max"] = value if m["value_max"] is None else max(m["value_max"], value)
        m["failures"] += status in ("failed", "error")
        if event_type != "THOUGHT_LATENCY":
            continue
        ttft = meta.get("time_to_first_token_s")
        if ttft is not None:
            m["ttft_count"] += 1
            m["ttft_sum"] += ttft
            m["ttft_max"] = ttft if m["ttft_max"] is None else max(m["ttft_max"], ttft)
            m[f"ttft_le_{bisect_left(TTFT_BOUNDS, ttft):02d}"] += 1
        tokens, prompt = meta.get("tokens_generated"), meta.get("prompt_tokens")
        m["prompt_tokens_sum"] += prompt or 0
        if not tokens:
            m["zero_tokens"] += tokens == 0
            continue
        m["tokens_sum"] += tokens
        m["latency_ms_sum"] += meta["inference_time_ms"]
        if value is not None:
            m["weight_sum"] += tokens
            m["weighted_sum"] += value * tokens
    return {key: [m[name] for name in MEASURE_NAMES] for key, m in out.items()}


def raw_rows(env: Env) -> list[tuple[Any, ...]]:
    if env.dsn:
        with psycopg.connect(env.dsn) as conn:
            rows = conn.execute(
                "SELECT event_type, component, value, metadata::text, status, "
                "extract(epoch FROM timestamp)::float8 FROM system_telemetry"
            ).fetchall()
    else:
        with sqlite3.connect(env.data_dir / "inference.db") as conn:
            rows = conn.execute(
                "SELECT event_type, component, value, metadata, status, timestamp FROM system_telemetry"
            ).fetchall()
    return [tuple(row) for row in rows]


def test_rollups_equal_a_recomputation_from_the_raw_rows(env: Env) -> None:
    start = (time.time() // 3600 - 6) * 3600 + 0.125  # six hours ago: inside every window
    rows = burst(2_500, start)
    for i in range(0, len(rows), 317):  # many batches, of an odd size
        env.sink.store.write(prepare(rows[i : i + 317]), f"exact-{i}")
    env.sink.store.write(prepare(rows[:317]), "exact-0")  # a retried batch: skipped, not counted twice
    # and some through the public API (timestamps now, trace context from the call)
    for i in range(40):
        assert env.logger.record_thought(MODELS[i % 3], 0.125 * (1 + i % 5), i % 4 * 8, i % 6)
    assert env.cap.telemetry.force_flush(30_000)

    raw = raw_rows(env)
    assert len(raw) == len(rows) + 40 == env.sink.store.row_count()
    for rollup in ROLLUPS:
        stored = {
            (int(bucket), event_type, component): list(measures)
            for bucket, event_type, component, *measures in env.sink.store.rollup(
                rollup, since=0, step=rollup.seconds
            )
        }
        expected = recompute(raw, rollup.seconds)
        assert stored.keys() == expected.keys()
        for key, measures in expected.items():
            assert stored[key] == measures, (rollup.table, key)
    stats = InferenceStats(env.sink.store, config=InferenceConfig()).statistics_60day()
    counts: dict[str, int] = defaultdict(int)
    for event_type, *_ in raw:
        counts[event_type] += 1
    assert stats["event_counts"] == dict(counts)
