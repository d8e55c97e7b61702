"""The PostgreSQL store's write (one statement over binary arrays, ``_arrays``) stores exactly what a
text ``COPY`` of the same rows stores:
awkward values included (integers in the float column, NaN and infinities, no value, non-ASCII and
astral text, nested JSON, timestamps on half microseconds, no trace context)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from otel_tele.exporters.postgres._rows import prepare
from otel_tele.exporters.postgres.schema import ROW_COLUMNS

from . import _pg
from ._pg import Env

pg_dsn, clean_pg = _pg.pg_dsn, _pg.clean_pg  # fixtures

NESTED = '{"nested": {"deep": [1, 2.5, "x"]}, "t": "é😀"}'
ROWS = [
    ("model_load", "m", 3, '{"a": 1}', "ok", 1_700_000_000.0000005, None, None),
    ("model_load", "m", 2.5, NESTED, None, 1_700_000_000.0000015, "ab" * 16, "cd" * 8),
    ("latency", "ünïcödé 😀", math.nan, "{}", "failed", 1_700_000_123.999999, None, None),
    ("latency", None, math.inf, "{}", None, 1_700_000_123.9999995, None, None),
    ("latency", "c", -math.inf, "[]", None, 1.5, None, None),
    ("latency", "c", None, '{"q": "it\'s \\"quoted\\"\\n\\t"}', "s", 2_000_000_000.25, None, None),
    ("vram", "gpu0", -0.0, "{}", None, 1_600_000_000.0, None, None),
]


def test_binary_copy_stores_what_text_copy_stores(clean_pg: str, tmp_path: Path) -> None:
    env = Env("postgresql", clean_pg, tmp_path / "telemetry")
    try:
        batch = prepare(ROWS)
        assert len(batch.rows) == len(ROWS)
        env.sink.store.write(batch, "binary-copy-test")  # ours: binary arrays, one statement
        columns = ", ".join(ROW_COLUMNS)
        with psycopg.connect(clean_pg) as conn:
            conn.execute(
                "CREATE TABLE text_copy (LIKE system_telemetry INCLUDING DEFAULTS INCLUDING IDENTITY)"
            )
            with conn.cursor() as cur, cur.copy(f"COPY text_copy ({columns}) FROM STDIN") as copy:
                for row in batch.rows:
                    copy.write_row((*row[:5], datetime.fromtimestamp(row[5], UTC), row[6], row[7]))
            query = f"SELECT {columns}, metadata::text FROM {{}} ORDER BY timestamp, event_type"
            ours = conn.execute(query.format("system_telemetry")).fetchall()
            text = conn.execute(query.format("text_copy")).fetchall()
        assert len(ours) == len(ROWS)
        assert repr(ours) == repr(text)  # repr: NaN == NaN, -0.0 vs 0.0 told apart
    finally:
        env.logger.close()
        env.cap.close()
