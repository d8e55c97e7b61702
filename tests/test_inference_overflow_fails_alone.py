"""A record whose rollup increment no column can hold (a token count beyond a bigint) fails alone on
both stores: its neighbours in the batch are written, the books count exactly one failed."""

from __future__ import annotations

from . import _pg
from ._pg import Env

pg_dsn, clean_pg, env = _pg.pg_dsn, _pg.clean_pg, _pg.env  # fixtures


def test_a_token_count_beyond_bigint_fails_alone(env: Env) -> None:
    assert env.logger.record_thought("warm-up", 0.1, 10)
    assert env.cap.telemetry.force_flush(30_000)
    for i in range(200):
        assert env.logger.record_thought(f"model-{i % 3}", 0.01 * (i + 1), 10**30 if i == 77 else 10 + i)
    env.cap.telemetry.force_flush(30_000)
    stats = next(s for s in env.cap.telemetry.sink_stats() if s.sink == "postgres")
    assert env.raw_count() == 1 + 199
    assert stats.reconciles
    assert (stats.failed, stats.queued) == (1, 0)
