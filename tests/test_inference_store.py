"""The inference query API on both stores: PostgreSQL (real server) and embedded SQLite, same tests."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from typing import Any

import psycopg
import pytest
from otel_tele.exporters.postgres import maintenance, open_store
from otel_tele.exporters.postgres._rows import prepare
from otel_tele.exporters.postgres.schema import MIGRATIONS, SCHEMA_VERSION, TABLE, InferenceConfig

from otel_tele.inference_stats import InferenceStats

from . import _pg
from ._pg import INJECTION, Env

pg_dsn, clean_pg, env = _pg.pg_dsn, _pg.clean_pg, _pg.env  # fixtures


def thought(model: str, ts: float, ms: float, tokens: int, prompt: int = 0) -> tuple[Any, ...]:
    score = ms / tokens if tokens else None
    meta = {
        "model": model,
        "inference_time_ms": ms,
        "tokens_generated": tokens,
        "prompt_tokens": prompt,
        "total_tokens": tokens + prompt,
        "latency_per_token_ms": score,
    }
    return (
        "THOUGHT_LATENCY",
        model,
        score,
        json.dumps(meta),
        "ok" if tokens else "no_tokens",
        ts,
        None,
        None,
    )


def test_token_weighting_hand_computed(env: Env) -> None:
    """Weighted efficiency = sum(ms)/sum(tokens): A = (100 + 1000) / (10 + 50) = 18.333, mean 15."""
    log = env.logger
    assert env.run(log.log_thought_latency("model-a", 0.1, 10, prompt_tokens=5))
    assert env.run(log.log_thought_latency("model-a", 1.0, 50))
    assert env.run(log.log_thought_latency("model-b", 0.2, 100, prompt_tokens=7))
    assert env.run(log.log_thought_latency("model-b", 0.3, 0))  # zero tokens: status, not a division error
    result = env.run(log.get_aggregated_efficiency(hours=24))
    a, b = sorted(result["models"], key=lambda m: m["model"])
    assert a["weighted_efficiency_ms_per_token"] == pytest.approx(1100 / 60)
    assert a["mean_efficiency_ms_per_token"] == pytest.approx(15.0)
    assert (a["min_efficiency_ms_per_token"], a["max_efficiency_ms_per_token"]) == (10.0, 20.0)
    assert (a["inferences"], a["tokens_generated"], a["prompt_tokens"]) == (2, 60, 5)
    assert b["weighted_efficiency_ms_per_token"] == pytest.approx(2.0)
    assert (b["inferences"], b["zero_token_inferences"], b["tokens_generated"]) == (2, 1, 100)
    assert [m["model"] for m in result["models"]] == ["model-b", "model-a"]  # best (fewest ms/token) first
    assert [m["rank"] for m in result["models"]] == [1, 2]
    assert result["overall"]["weighted_efficiency_ms_per_token"] == pytest.approx((100 + 1000 + 200) / 160)
    assert sum(i["inferences"] for i in result["intervals"]) == 4


def test_component_filter_and_window(env: Env) -> None:
    """component= selects one model; hours= excludes older rollup buckets."""
    now = time.time()
    env.backfill([thought("m1", now - 3 * 3600, 500, 10), thought("m2", now - 120, 100, 10)])
    env.run(env.logger.log_thought_latency("m1", 0.2, 10))
    only = env.run(env.logger.get_aggregated_efficiency(component="m1", hours=24))
    assert [m["model"] for m in only["models"]] == ["m1"]
    assert only["models"][0]["weighted_efficiency_ms_per_token"] == pytest.approx(35.0)
    recent = env.run(env.logger.get_aggregated_efficiency(component="m1", hours=1))
    assert recent["models"][0]["weighted_efficiency_ms_per_token"] == pytest.approx(20.0)
    assert env.run(env.logger.get_aggregated_efficiency(component="nope"))["models"] == []


def test_load_latency_and_vram(env: Env) -> None:
    """Load latency is averaged per model (failures counted); VRAM checks and lockouts per GPU."""
    log = env.logger
    assert env.run(log.log_load_latency("m", 2.0))
    assert env.run(log.log_load_latency("m", 4.0, success=False))
    assert env.run(log.log_vram_check("gpu0", 1000.0, used_mb=23000.0, total_mb=24000.0))
    assert env.run(log.log_vram_lockout("gpu0", trigger_threshold=2000.0, free_vram=1000.0))
    loads = env.run(log.get_aggregated_efficiency())["load_latency"]
    assert loads == [
        {
            "model": "m",
            "loads": 2,
            "mean_load_seconds": 3.0,
            "min_load_seconds": 2.0,
            "max_load_seconds": 4.0,
            "failures": 1,
        }
    ]
    stats = env.run(log.get_60day_statistics())
    assert stats["vram"] == [
        {"gpu": "gpu0", "checks": 1, "mean_free_mb": 1000.0, "min_free_mb": 1000.0, "lockouts": 1}
    ]
    assert stats["event_counts"] == {"LOAD_LATENCY": 2, "VRAM_CHECK": 1, "VRAM_LOCKOUT": 1}


def test_60day_trends_ordered_and_degradation_alert(env: Env) -> None:
    """model_trends[0] is the most efficient; a >20 % slowdown in the last 24 h raises an alert."""
    now = time.time()
    day = 86_400
    env.backfill(
        [
            thought("slow", now - 30 * day, 4000, 100),
            thought("fast", now - 30 * day, 200, 100),
            thought("fast", now - 10 * day, 200, 100),
            thought("old", now - 70 * day, 1, 100),
        ]
    )
    env.run(env.logger.log_thought_latency("fast", 0.3, 100))  # 3 ms/token now vs 2 before: +50 %
    stats = env.run(env.logger.get_60day_statistics())
    models = stats["model_trends"]
    assert [m["model"] for m in models] == ["fast", "slow"]  # "old" is outside the 60 days
    fast = models[0]
    assert fast["weighted_efficiency_ms_per_token"] == pytest.approx(700 / 300)
    assert fast["baseline_efficiency_ms_per_token"] == pytest.approx(2.0)
    assert fast["recent_24h_efficiency_ms_per_token"] == pytest.approx(3.0)
    assert fast["efficiency_change"] == pytest.approx(0.5)
    assert len(fast["daily"]) == 3 and fast["daily"][-1]["weighted_efficiency_ms_per_token"] == pytest.approx(
        3.0
    )
    assert [(a["alert"], a["component"]) for a in stats["alerts"]] == [("efficiency_drop", "fast")]
    env.cap.flush()
    assert env.cap.metric_value(
        "inference.efficiency.change", **{"gen_ai.request.model": "fast"}
    ) == pytest.approx(0.5)
    assert env.cap.metric_value("inference.alerts", **{"inference.alert.name": "efficiency_drop"}) == 1
    alert = env.cap.events("inference.alert")[0]
    assert alert["inference.component"] == "fast"


def test_footprint_counts_and_alerts(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Footprint: table_sizes[0] is system_telemetry with exact rows; thresholds are configurable."""
    empty = env.run(env.logger.get_telemetry_footprint())
    # Only tables that exist are listed: none before the first write, system_telemetry first after.
    assert [t["table"] for t in empty["table_sizes"]][:1] in ([], [TABLE])
    assert empty["row_count"] == 0 and empty["alerts"] == []
    for i in range(5):
        assert env.run(env.logger.log_thought_latency(f"m{i % 2}", 0.01 * (i + 1), 10))
    env.sink.config = InferenceConfig(inference_alert_rows=3, inference_alert_table_bytes=1)
    env.logger.close()
    footprint = env.run(env.logger.get_telemetry_footprint())
    first = footprint["table_sizes"][0]
    assert first["table"] == TABLE and first["rows"] == 5 == footprint["row_count"] == env.raw_count()
    assert first["size_bytes"] > 0 and footprint["total_size_bytes"] >= first["size_bytes"]
    assert footprint["oldest_record"] <= footprint["newest_record"]
    assert sorted(a["alert"] for a in footprint["alerts"]) == ["row_count", "table_size"]
    env.cap.flush()
    assert env.cap.metric_value("inference.telemetry.rows") == 5
    assert env.cap.metric_value("inference.telemetry.size") == first["size_bytes"]


def test_prune_keeps_the_window_and_counts_stay_exact(env: Env) -> None:
    """Prune deletes rows and rollups older than the retention window in batches; the rest stays."""
    now = time.time()
    old = [thought("m", now - 70 * 86_400 + i, 100, 10) for i in range(25)]
    env.backfill([*old, thought("m", now - 5 * 86_400, 100, 10), thought("m", now, 100, 10)])
    stats = env.logger.stats

    def prune(**kwargs: Any) -> dict[str, Any]:  # the store's maintenance (the query API only reads)
        return maintenance.prune(env.sink.store, env.sink.config, **kwargs)

    assert stats.store.row_count() == 27 == env.raw_count()  # type: ignore[attr-defined]
    result = prune(retention_days=60, batch_rows=10, max_batches=1)
    assert (result["deleted_rows"], result["complete"]) == (10, False)
    result = prune(retention_days=60, batch_rows=10)
    assert result["deleted_rows"] == 15 and result["complete"] and result["deleted_rollup_rows"] > 0
    assert stats.store.row_count() == 2 == env.raw_count()  # type: ignore[attr-defined]
    assert prune()["deleted_rows"] == 0
    with pytest.raises(ValueError):
        prune(retention_days=-1)


def test_sink_prunes_on_a_schedule_after_writes(env: Env) -> None:
    """The sink's first write (and one per interval after it) prunes rows past the retention window."""
    now = time.time()
    env.backfill([thought("m", now - 90 * 86_400, 100, 10), thought("m", now - 86_400, 100, 10)])
    assert env.raw_count() == 2
    assert env.run(env.logger.log_thought_latency("m", 0.1, 10))
    env.cap.flush()
    assert env.raw_count() == 2 == env.sink.store.row_count()


def test_sql_injection_leaves_schema_and_data_unchanged(env: Env) -> None:
    """Hostile strings through every string parameter are stored or matched literally, never run."""
    log = env.logger
    assert env.run(log.log(INJECTION, INJECTION, 1.0, {INJECTION: INJECTION}, INJECTION))
    assert env.run(log.log_thought_latency(INJECTION, 0.1, 10))
    assert env.run(log.log_load_latency(INJECTION, 1.0))
    assert env.run(log.log_vram_check(INJECTION, 1.0, used_mb=1.0, total_mb=2.0))
    env.cap.flush()
    schema, rows = env.schema(), env.raw_count()
    result = env.run(log.get_aggregated_efficiency(component=INJECTION))
    assert [m["model"] for m in result["models"]] == [INJECTION]
    assert env.run(log.get_aggregated_efficiency(component="' OR '1'='1"))["models"] == []
    env.run(log.get_60day_statistics())
    env.run(log.get_telemetry_footprint())
    assert env.schema() == schema and env.raw_count() == rows == 4


def test_hostile_values_are_made_valid_not_lost(env: Env) -> None:
    """NaN/inf and NUL in metadata, NUL and 10k-character names, lone surrogates: all stored."""
    log = env.logger
    huge = "g" * 10_000
    assert env.run(
        log.log(
            "CUSTOM",
            "gpu\x00one",
            1.0,
            {"nan": math.nan, "inf": -math.inf, "nul": "a\x00b", "nested": [math.inf, {"k\x00": 1}]},
        )
    )
    assert env.run(log.log("CUSTOM", huge, 2.0))
    assert env.run(log.log("CUSTOM", "bad-\udcff-utf8", math.nan, {"bytes": b"\xff\xfe"}))
    assert env.run(log.log_thought_latency("m", math.nan, 10))  # kept, status invalid, no score
    assert not env.run(log.log_thought_latency("m", "fast", 10))  # type: ignore[arg-type]
    assert not env.run(log.log(None))  # type: ignore[arg-type]
    assert not env.run(log.log("CUSTOM", metadata=["not", "a", "mapping"]))  # type: ignore[arg-type]
    footprint = env.run(log.get_telemetry_footprint())
    assert footprint["row_count"] == 4 == env.raw_count()
    for snapshot in env.cap.telemetry.sink_stats():  # the three refused calls are booked failed
        assert snapshot.failed == (3 if snapshot.sink == "events" else 0) and snapshot.reconciles, snapshot
    rows = _raw_rows(env)
    first = next(r for r in rows if r[0] and r[0].startswith("gpu"))
    assert first[0] == "gpu\\u0000one"
    meta = first[1] if isinstance(first[1], dict) else json.loads(first[1])
    assert meta["nan"] == "NaN" and meta["inf"] == "-Infinity" and meta["nul"] == "a\\u0000b"
    long_row = next(r for r in rows if r[0] and r[0].startswith("ggg"))
    long_meta = long_row[1] if isinstance(long_row[1], dict) else json.loads(long_row[1])
    assert len(long_row[0]) == 256 and long_meta["otel_tele.truncated"]["component"] == huge
    invalid = [r for r in rows if r[2] == "invalid"]
    assert len(invalid) == 1
    with pytest.raises(ValueError):
        env.logger.stats.aggregated_efficiency(hours=-1)
    with pytest.raises(ValueError):
        env.logger.stats.aggregated_efficiency(hours=math.nan)
    with pytest.raises(ValueError):
        env.logger.stats.aggregated_efficiency(component=42)  # type: ignore[arg-type]


def _raw_rows(env: Env) -> list[tuple[Any, ...]]:
    query = "SELECT component, metadata, status FROM system_telemetry ORDER BY id"
    if env.dsn:
        with psycopg.connect(env.dsn) as conn:
            return conn.execute(query).fetchall()
    with sqlite3.connect(env.data_dir / "inference.db") as conn:
        return conn.execute(query).fetchall()


def test_forward_migration_keeps_old_rows(env: Env) -> None:
    """A store at schema version 1 is migrated to the current version on the first write, rows kept."""
    store = env.sink.store
    if env.dsn:
        with psycopg.connect(env.dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE system_telemetry_schema (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for template, names in MIGRATIONS[0]("postgresql"):
                conn.execute(template.format(**{k: f'"{v}"' for k, v in names.items()}))
            conn.execute("INSERT INTO system_telemetry_schema (version) VALUES (1)")
            conn.execute("INSERT INTO system_telemetry (event_type, component, value) VALUES ('OLD', 'm', 1)")
    else:
        env.data_dir.mkdir(parents=True)
        with sqlite3.connect(env.data_dir / "inference.db") as conn:
            for template, names in MIGRATIONS[0]("sqlite"):
                conn.execute(template.format(**{k: f'"{v}"' for k, v in names.items()}))
            conn.execute("PRAGMA user_version = 1")
            conn.execute(
                "INSERT INTO system_telemetry (event_type, component, value, timestamp) "
                "VALUES ('OLD', 'm', 1, ?)",
                (time.time() - 60,),
            )
    assert store.schema_version() == 1
    assert env.run(env.logger.log_thought_latency("m", 0.1, 10))
    env.cap.flush()
    assert store.schema_version() == SCHEMA_VERSION
    assert env.raw_count() == 2 == store.row_count()  # the old row got its rollups too
    assert env.run(env.logger.get_60day_statistics())["event_counts"] == {"OLD": 1, "THOUGHT_LATENCY": 1}


def test_retried_batch_is_written_once(env: Env) -> None:
    """A batch id already committed is skipped: a retry after an ambiguous commit does not duplicate."""
    batch = prepare([thought("m", time.time(), 100, 10)])
    env.sink.store.write(batch, "batch-1")
    env.sink.store.write(batch, "batch-1")
    assert env.raw_count() == 1 == env.sink.store.row_count()


def test_query_before_any_write_reads_empty_without_creating_tables(env: Env) -> None:
    """A fresh store answers every question with empty results and creates nothing (GET is read-only)."""
    stats = InferenceStats(open_store(env.dsn, env.data_dir), config=InferenceConfig())
    try:
        assert stats.aggregated_efficiency()["models"] == []
        assert stats.statistics_60day()["model_trends"] == []
        assert stats.footprint()["row_count"] == 0
        assert stats.store.schema_version() == 0
    finally:
        stats.close()
