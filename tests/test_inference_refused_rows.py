"""A row the database itself refuses (a value it will not store — here a real trigger raising SQLSTATE
22023 on PostgreSQL, RAISE(ABORT) on the embedded store) fails alone: its neighbours in the same
batch are written, the books count exactly one failed, and a retried batch is not written twice."""

from __future__ import annotations

import sqlite3

import psycopg

from . import _pg
from ._pg import Env

pg_dsn, clean_pg, env = _pg.pg_dsn, _pg.clean_pg, _pg.env  # fixtures

REFUSED = "refused-model"


def _refuse_in_the_database(env: Env) -> None:
    if env.dsn:
        with psycopg.connect(env.dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse_row() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.component = '{REFUSED}' THEN "
                "RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22023'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.execute(
                "CREATE TRIGGER refuse_row BEFORE INSERT ON system_telemetry "
                "FOR EACH ROW EXECUTE FUNCTION refuse_row()"
            )
        return
    with sqlite3.connect(env.data_dir / "inference.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse_row BEFORE INSERT ON system_telemetry "
            f"WHEN NEW.component = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )


def test_a_row_the_database_refuses_fails_alone(env: Env) -> None:
    assert env.logger.record_thought("warm-up", 0.1, 10)
    assert env.cap.telemetry.force_flush(30_000)  # the store exists; now the database refuses one name
    _refuse_in_the_database(env)
    for i in range(300):
        assert env.logger.record_thought(REFUSED if i == 137 else f"model-{i % 3}", 0.01 * (i + 1), 10 + i)
    env.cap.telemetry.force_flush(30_000)
    assert env.raw_count() == 1 + 299
    stats = next(s for s in env.cap.telemetry.sink_stats() if s.sink == "postgres")
    assert stats.reconciles
    assert (stats.failed, stats.queued, stats.exported) == (1, 0, stats.emitted - 1 - stats.not_routed)
