"""The robot database's sidecar of pre-aggregated counts and latency histograms (``telemetry.digest.db``).

Why a sidecar: spec 004 fixes ``telemetry.db`` at six tables and their indexes, yet exact percentiles
read every latency and a windowed ``count(*)`` walks an index range. The sink keeps, beside the
database and in the same write transaction as the rows (it is ``ATTACH``ed), per time unit:

- ``counts``: rows of ``dds_commands``, ``dds_feedback``, ``system_events`` and of error events, per
  16 s unit (a week is ~38k small rows per series; one upsert per table and batch);
- ``latency_stats`` / ``latency_bins``: per endpoint, the count, sum and max of ``response_ms`` and a
  log-bucket histogram (relative error :data:`ALPHA`), at levels 0..16 of units of ``16·2^k`` s, so a
  window is a few aligned units plus raw rows at its two ends.

Unit widths are powers of two so ``floor(ts / 16)`` is exact and a row's unit agrees with the readers'
``ts`` range tests. Rows with ``ts`` outside ``[0, TS_END)`` (or non-finite) are in no unit: readers
take them raw. ``watermark`` says what the sidecar reflects of each table (highest ``id``, lowest ``ts``):
WAL commits of attached databases are atomic per file only, so after a crash between the two a reader
takes rows above the watermark raw, and anything else inconsistent is rebuilt by the sink on open.

Readers (:mod:`otel_tele._robot_digest`) only read; everything here is the writer's.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

_log = logging.getLogger("otel_tele")

DIGEST_VERSION = 1
SCHEMA = "digest"  # the ATTACH name
UNIT_S = 16.0  # a power of two: ts / UNIT_S is exact
LEVELS = 17  # level k units span UNIT_S * 2**k seconds (level 16: ~12 days)
TS_END = UNIT_S * 2.0**42  # rows at or beyond this (or before 0) are in no unit
#: Relative error of every percentile taken from the histograms (DDSketch-style log buckets).
ALPHA = 0.02
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LN_GAMMA = math.log(GAMMA)
_OFFSET = 100_000  # bins of positive values are OFFSET + ceil(log_gamma(v)); |log_gamma| < 40,000
_INF_BIN = 200_000

#: series → (table, extra condition): the windowed counts the session summary needs.
COUNT_SERIES: dict[str, tuple[str, str]] = {
    "dds_commands": ("dds_commands", ""),
    "dds_feedback": ("dds_feedback", ""),
    "system_events": ("system_events", ""),
    "error_events": ("system_events", " AND level = 'error'"),
}
#: The tables the digest follows (a watermark each).
COVERED = ("dds_commands", "dds_feedback", "system_events", "web_requests")

_DDL = (
    "CREATE TABLE IF NOT EXISTS {s}.watermark (tbl TEXT PRIMARY KEY, max_id INTEGER NOT NULL, min_ts REAL)",
    "CREATE TABLE IF NOT EXISTS {s}.counts (series TEXT NOT NULL, unit INTEGER NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (series, unit)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS {s}.latency_stats (level INTEGER NOT NULL, unit INTEGER NOT NULL, "
    "endpoint TEXT NOT NULL, n INTEGER NOT NULL, total REAL, max REAL, "
    "PRIMARY KEY (level, unit, endpoint)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS {s}.latency_bins (level INTEGER NOT NULL, unit INTEGER NOT NULL, "
    "endpoint TEXT NOT NULL, bin INTEGER NOT NULL, n INTEGER NOT NULL, "
    "PRIMARY KEY (level, unit, endpoint, bin)) WITHOUT ROWID",
)

_UNIT_SQL = f"CAST(floor(ts / {UNIT_S!r}) AS INTEGER)"
# ``+ts``: rows are found by id (a batch, a retention pass), never by walking the whole ts index.
_IN_UNITS = f"+ts >= 0 AND +ts < {TS_END!r}"
_BIN_SQL = (
    "CASE WHEN response_ms = 0 THEN 0 "
    f"WHEN response_ms = 1e999 THEN {_INF_BIN} WHEN response_ms = -1e999 THEN -{_INF_BIN} "
    f"WHEN response_ms > 0 THEN {_OFFSET} + CAST(ceil(ln(response_ms) / {_LN_GAMMA!r}) AS INTEGER) "
    f"ELSE -({_OFFSET} + CAST(ceil(ln(-response_ms) / {_LN_GAMMA!r}) AS INTEGER)) END"
)
_LEVELS_CTE = f"WITH RECURSIVE lv(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM lv WHERE k < {LEVELS - 1})"


def digest_path(db_path: str | Path) -> Path:
    """``telemetry.db`` → ``telemetry.digest.db`` (same folder)."""
    path = Path(db_path)
    return path.with_name(f"{path.stem}.digest{path.suffix or '.db'}")


def bin_value(bin_: int) -> float:
    """The value a histogram bin stands for: within :data:`ALPHA` (relative) of every value in it."""
    if bin_ == 0:
        return 0.0
    if abs(bin_) == _INF_BIN:
        return math.copysign(math.inf, bin_)
    magnitude = 2 * GAMMA ** (abs(bin_) - _OFFSET) / (GAMMA + 1)
    return math.copysign(magnitude, bin_)


def _rows_sql(table: str, source: str) -> str:
    """The main table's rows ``source`` selects (a condition on ``id``), inside the unit range."""
    return f"FROM main.{table} WHERE {source} AND {_IN_UNITS}"


def main_mark(conn: sqlite3.Connection | sqlite3.Cursor, table: str) -> tuple[int, float | None]:
    """(highest id, lowest ts) of a main table: two index seeks (one aggregate per statement keeps
    SQLite's min/max shortcut)."""
    top = conn.execute(f"SELECT coalesce(max(id), 0) FROM main.{table}").fetchone()[0]
    return int(top), conn.execute(f"SELECT min(ts) FROM main.{table}").fetchone()[0]


class Digest:
    """The writer's side: attach, verify or rebuild, and keep up with inserts and retention.

    Every method runs on the sink's connection inside the caller's transaction, except
    :meth:`attach`, which may rebuild in its own.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.path = digest_path(db_path)
        self.attached = False
        self.rebuilds = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def attach(self, conn: sqlite3.Connection) -> None:
        """Attach the sidecar; rebuild it if missing, of another version, corrupt or not in step."""
        try:
            self._attach(conn)
            if conn.execute(f"PRAGMA {SCHEMA}.user_version").fetchone()[0] == DIGEST_VERSION:
                self._catch_up(conn)  # rows other writers (or a crash) left above the watermarks
            if not self._consistent(conn):
                self.rebuild(conn)
        except sqlite3.DatabaseError as exc:
            _log.warning("robot digest %s unusable (%s); recreating it", self.path, exc)
            self.detach(conn)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            try:
                self._attach(conn)
                self.rebuild(conn)
            except sqlite3.Error as again:  # queries fall back to the exact path
                _log.warning("robot digest disabled: %s", again)
                self.detach(conn)

    def _attach(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"ATTACH DATABASE ? AS {SCHEMA}", (str(self.path),))
        self.attached = True
        conn.execute(f"PRAGMA {SCHEMA}.journal_mode = WAL")
        conn.execute(f"PRAGMA {SCHEMA}.synchronous = NORMAL")
        version = conn.execute(f"PRAGMA {SCHEMA}.user_version").fetchone()[0]
        if version not in (0, DIGEST_VERSION):
            raise sqlite3.DatabaseError(f"digest version {version}, expected {DIGEST_VERSION}")
        for ddl in _DDL:
            conn.execute(ddl.format(s=SCHEMA))

    def detach(self, conn: sqlite3.Connection) -> None:
        if self.attached:
            self.attached = False
            try:
                conn.execute(f"DETACH DATABASE {SCHEMA}")
            except sqlite3.Error as exc:
                _log.warning("robot digest: detach failed: %s", exc)

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.after_insert(conn, COVERED)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _consistent(self, conn: sqlite3.Connection) -> bool:
        """Full check (start-up only): version, watermarks, and every total against ``count(*)``."""
        if conn.execute(f"PRAGMA {SCHEMA}.user_version").fetchone()[0] != DIGEST_VERSION:
            return False
        marks = {
            row[0]: (row[1], row[2])
            for row in conn.execute(f"SELECT tbl, max_id, min_ts FROM {SCHEMA}.watermark")
        }
        for table in COVERED:
            if marks.get(table) != main_mark(conn, table):
                return False
        for series, (table, condition) in COUNT_SERIES.items():
            kept = conn.execute(
                f"SELECT coalesce(sum(n), 0) FROM {SCHEMA}.counts WHERE series = ?", (series,)
            ).fetchone()[0]
            if kept != conn.execute(f"SELECT count(*) {_rows_sql(table, '1' + condition)}").fetchone()[0]:
                return False
        kept = conn.execute(
            f"SELECT coalesce(sum(n), 0) FROM {SCHEMA}.latency_stats WHERE level = 0"
        ).fetchone()
        rows = conn.execute(
            f"SELECT count(*) {_rows_sql('web_requests', 'response_ms IS NOT NULL')}"
        ).fetchone()
        return bool(kept[0] == rows[0])

    def rebuild(self, conn: sqlite3.Connection) -> None:
        """Recompute everything from ``telemetry.db`` in one transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in ("watermark", "counts", "latency_stats", "latency_bins"):
                conn.execute(f"DELETE FROM {SCHEMA}.{table}")
            self._add(conn, COVERED, "1", level_zero_only=True)
            for level in range(1, LEVELS):
                self._roll_up(conn, level)
            for table in COVERED:
                conn.execute(
                    f"INSERT INTO {SCHEMA}.watermark VALUES (?, ?, ?)", (table, *main_mark(conn, table))
                )
            conn.execute(f"PRAGMA {SCHEMA}.user_version = {DIGEST_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.rebuilds += 1
        _log.info("robot digest %s rebuilt from the database", self.path)

    @staticmethod
    def _roll_up(conn: sqlite3.Connection, level: int) -> None:
        conn.execute(
            f"INSERT INTO {SCHEMA}.latency_stats SELECT ?, unit >> 1, endpoint, sum(n), sum(total), max(max) "
            f"FROM {SCHEMA}.latency_stats WHERE level = ? GROUP BY unit >> 1, endpoint",
            (level, level - 1),
        )
        conn.execute(
            f"INSERT INTO {SCHEMA}.latency_bins SELECT ?, unit >> 1, endpoint, bin, sum(n) "
            f"FROM {SCHEMA}.latency_bins WHERE level = ? GROUP BY unit >> 1, endpoint, bin",
            (level, level - 1),
        )

    # -- keeping up (inside the sink's transaction) ---------------------------------------------
    def after_insert(self, conn: sqlite3.Connection, tables: Iterable[str]) -> None:
        """Fold every row above each written table's watermark in (whoever wrote it)."""
        for table in tables:
            if table not in COVERED:
                continue
            row = conn.execute(
                f"SELECT max_id, min_ts FROM {SCHEMA}.watermark WHERE tbl = ?", (table,)
            ).fetchone()
            mark, min_ts = (row[0], row[1]) if row else (0, None)
            new = conn.execute(f"SELECT max(id), min(ts) FROM main.{table} WHERE id > ?", (mark,)).fetchone()
            if new[0] is None:
                continue
            self._add(conn, (table,), f"id > {int(mark)}")
            lowest = new[1] if min_ts is None else min(min_ts, new[1])
            conn.execute(
                f"INSERT OR REPLACE INTO {SCHEMA}.watermark VALUES (?, ?, ?)", (table, new[0], lowest)
            )

    def before_delete(self, conn: sqlite3.Connection, table: str, ids: Sequence[int]) -> None:
        """Take rows about to be deleted (retention) out of the aggregates."""
        if table not in COVERED or not ids:
            return
        batch = json.dumps([int(i) for i in ids])
        self._add(conn, (table,), "id IN (SELECT value FROM json_each(?))", sign=-1, params=(batch,))
        if table == "web_requests":
            self._recompute_max(conn, batch)

    def after_delete(self, conn: sqlite3.Connection, table: str) -> None:
        if table not in COVERED:
            return
        for name in ("counts", "latency_stats", "latency_bins"):
            conn.execute(f"DELETE FROM {SCHEMA}.{name} WHERE n <= 0")
        conn.execute(
            f"UPDATE {SCHEMA}.watermark SET min_ts = (SELECT min(ts) FROM main.{table}) WHERE tbl = ?",
            (table,),
        )

    def _add(
        self,
        conn: sqlite3.Connection,
        tables: Iterable[str],
        source: str,
        *,
        sign: int = 1,
        params: tuple[object, ...] = (),
        level_zero_only: bool = False,
    ) -> None:
        for table in tables:
            for series, (series_table, condition) in COUNT_SERIES.items():
                if series_table == table:
                    conn.execute(
                        f"INSERT INTO {SCHEMA}.counts (series, unit, n) "
                        f"SELECT ?, {_UNIT_SQL}, {sign} * count(*) "
                        f"{_rows_sql(table, source + condition)} GROUP BY 2 "
                        "ON CONFLICT DO UPDATE SET n = n + excluded.n",
                        (series, *params),
                    )
            if table != "web_requests":
                continue
            levels = "(SELECT 0 AS k)" if level_zero_only else "lv"
            rows = _rows_sql(table, f"{source} AND response_ms IS NOT NULL").replace(
                "FROM main.web_requests", f"FROM {levels}, main.web_requests"
            )
            conn.execute(
                f"{_LEVELS_CTE} INSERT INTO {SCHEMA}.latency_stats (level, unit, endpoint, n, total, max) "
                f"SELECT k, {_UNIT_SQL} >> k, endpoint, {sign} * count(*), {sign} * sum(response_ms), "
                f"max(response_ms) {rows} "
                "GROUP BY 1, 2, 3 ON CONFLICT DO UPDATE SET n = n + excluded.n, "
                "total = total + excluded.total, max = max(max, excluded.max)",
                params,
            )
            conn.execute(
                f"{_LEVELS_CTE} INSERT INTO {SCHEMA}.latency_bins (level, unit, endpoint, bin, n) "
                f"SELECT k, {_UNIT_SQL} >> k, endpoint, {_BIN_SQL}, {sign} * count(*) "
                f"{rows} "
                "GROUP BY 1, 2, 3, 4 ON CONFLICT DO UPDATE SET n = n + excluded.n",
                params,
            )

    @staticmethod
    def _recompute_max(conn: sqlite3.Connection, ids: str) -> None:
        """A unit's max cannot be decremented: recompute it bottom-up for the units losing rows,
        level 0 from the rows that stay, each level above from its two halves."""
        gone = "id IN (SELECT value FROM json_each(?))"
        touched = conn.execute(
            f"SELECT DISTINCT {_UNIT_SQL}, endpoint FROM main.web_requests WHERE {gone} "
            f"AND response_ms IS NOT NULL AND {_IN_UNITS}",
            (ids,),
        ).fetchall()
        for unit, endpoint in touched:
            lo = unit * UNIT_S
            conn.execute(
                f"UPDATE {SCHEMA}.latency_stats SET max = (SELECT max(response_ms) FROM main.web_requests "
                "WHERE endpoint = ?1 AND ts >= ?2 AND ts < ?3 "
                "AND NOT id IN (SELECT value FROM json_each(?5))) "
                "WHERE level = 0 AND unit = ?4 AND endpoint = ?1",
                (endpoint, lo, lo + UNIT_S, unit, ids),
            )
        for level in range(1, LEVELS):
            for unit, endpoint in {(u >> level, e) for u, e in touched}:
                conn.execute(
                    f"UPDATE {SCHEMA}.latency_stats SET max = (SELECT max(max) FROM {SCHEMA}.latency_stats "
                    "WHERE level = ?1 - 1 AND endpoint = ?3 AND unit IN (?2 * 2, ?2 * 2 + 1) AND n > 0) "
                    "WHERE level = ?1 AND unit = ?2 AND endpoint = ?3",
                    (level, unit, endpoint),
                )
