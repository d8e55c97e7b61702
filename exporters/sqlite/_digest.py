"""Writing the robot database's digest sidecar (``telemetry.digest.db``), laid out in :mod:`.schema`.

The sink keeps it in the same write transaction as the rows (it is ``ATTACH``ed; in a burst a
later batch's transaction folds them in, see :meth:`Digest.due`): counts per 16 s
unit and per-endpoint latency histograms at levels of ``16·2^k`` s (why, and the layout: the digest
section of :mod:`.schema`). ``watermark`` says what it reflects of each table; anything inconsistent
is rebuilt when the sink opens.

Readers (:mod:`otel_tele._robot_digest`) only read, through the layout in :mod:`.schema`; everything
here is the writer's.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .schema import (
    BIN_OFFSET,
    COUNT_SERIES,
    COVERED,
    DIGEST_DDL,
    DIGEST_VERSION,
    INF_BIN,
    LEVELS,
    LN_GAMMA,
    TABLES,
    TS_END,
    UNIT_S,
    digest_path,
    main_mark,
)
from .schema import DIGEST_SCHEMA as SCHEMA

_log = logging.getLogger("otel_tele")

#: While rows keep coming, the digest folds them in at least every this many rows or seconds (see
#: ``Digest.due``): the most rows a reader takes raw above the watermark in a burst.
FOLD_ROWS = 4096
FOLD_S = 0.5
_UNIT_SQL = f"CAST(floor(ts / {UNIT_S!r}) AS INTEGER)"
# ``+ts``: rows are found by id (a batch, a retention pass), never by walking the whole ts index.
_IN_UNITS = f"+ts >= 0 AND +ts < {TS_END!r}"
_BIN_SQL = (
    "CASE WHEN response_ms = 0 THEN 0 "
    f"WHEN response_ms = 1e999 THEN {INF_BIN} WHEN response_ms = -1e999 THEN -{INF_BIN} "
    f"WHEN response_ms > 0 THEN {BIN_OFFSET} + CAST(ceil(ln(response_ms) / {LN_GAMMA!r}) AS INTEGER) "
    f"ELSE -({BIN_OFFSET} + CAST(ceil(ln(-response_ms) / {LN_GAMMA!r}) AS INTEGER)) END"
)
_LEVELS_CTE = f"WITH RECURSIVE lv(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM lv WHERE k < {LEVELS - 1})"


def _rows_sql(table: str, source: str) -> str:
    """The main table's rows ``source`` selects (a condition on ``id``), inside the unit range."""
    return f"FROM main.{table} WHERE {source} AND {_IN_UNITS}"


#: Tables whose every count series is unconditional and which keep no latencies: their counts can be
#: taken from the rows written (see ``Digest.after_insert``): table → (position of ``ts`` in its
#: insert columns, its series).
_FROM_ROWS: dict[str, tuple[int, tuple[str, ...]]] = {
    table: (
        TABLES[table].column_names.index("ts"),
        tuple(series for series, (owner, _) in COUNT_SERIES.items() if owner == table),
    )
    for table in COVERED
    if table != "web_requests"
    and all(condition == "" for owner, condition in COUNT_SERIES.values() if owner == table)
}


def _units(rows: Sequence[tuple[Any, ...]], ts_at: int) -> dict[int, int] | None:
    """Rows per unit, as ``_add`` counts them (``CAST(floor(ts / UNIT_S) AS INTEGER)`` of the rows
    with ``0 <= ts < TS_END``; NaN is stored as NULL, in no unit); None for a ``ts`` that is not a
    plain number (then SQL counts)."""
    units: dict[int, int] = {}
    floor = math.floor
    for row in rows:
        ts = row[ts_at]
        kind = type(ts)
        if kind is not float and kind is not int:
            return None
        if 0 <= ts < TS_END:
            unit = floor(ts / UNIT_S)
            units[unit] = units.get(unit, 0) + 1
    return units


class Digest:
    """The writer's side: attach, verify or rebuild, and keep up with inserts and retention.

    Every method runs on the sink's connection inside the caller's transaction, except
    :meth:`attach`, which may rebuild in its own.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.path = digest_path(db_path)
        self.attached = False
        self.rebuilds = 0
        self.folds = 0  # transactions that folded rows in (``after_insert``)
        self.unfolded = 0  # rows this sink committed above the watermark since its last fold
        self.unfolded_tables: set[str] = set()  # ... and their tables (the next fold takes them in)
        self._folded_at = time.monotonic()

    def due(self, more_queued: bool) -> bool:
        """Whether the transaction being written folds its rows (and any left above the watermark)
        in: always unless more rows are queued right behind it — then at most every
        :data:`FOLD_ROWS` rows or :data:`FOLD_S` seconds. Folding costs a write to the sidecar's own
        file in the transaction (at 50 rows a transaction, a fifth of its cost); readers take the
        rows above the watermark raw meanwhile, as they do after a crash."""
        return not more_queued or self.unfolded >= FOLD_ROWS or time.monotonic() - self._folded_at >= FOLD_S

    def folded(self) -> None:
        """The transaction that folded committed."""
        self.folds += 1
        self.unfolded = 0
        self.unfolded_tables.clear()
        self._folded_at = time.monotonic()

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
        self.unfolded, self.unfolded_tables = 0, set()  # caught up or rebuilt next
        conn.execute(f"PRAGMA {SCHEMA}.journal_mode = WAL")
        conn.execute(f"PRAGMA {SCHEMA}.synchronous = NORMAL")
        version = conn.execute(f"PRAGMA {SCHEMA}.user_version").fetchone()[0]
        if version not in (0, DIGEST_VERSION):
            raise sqlite3.DatabaseError(f"digest version {version}, expected {DIGEST_VERSION}")
        for ddl in DIGEST_DDL:
            conn.execute(ddl.format(s=SCHEMA))

    def detach(self, conn: sqlite3.Connection) -> None:
        if self.attached:
            self.attached = False
            try:
                conn.execute(f"DETACH DATABASE {SCHEMA}")
            except sqlite3.Error as exc:
                _log.warning("robot digest: detach failed: %s", exc)

    def catch_up(self, conn: sqlite3.Connection) -> None:
        """Fold what lies above the watermarks in, in a transaction of its own (before a retention
        pass: it takes deleted rows out of the aggregates, so they must be in them)."""
        if self.attached and self.unfolded_tables:
            self._catch_up(conn)
            self.folded()

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
    def after_insert(
        self,
        conn: sqlite3.Connection,
        tables: Iterable[str],
        written: Mapping[str, Sequence[tuple[Any, ...]]] | None = None,
    ) -> None:
        """Fold every row above each written table's watermark in (whoever wrote it).

        ``written``: per table, the rows the caller has just inserted, every one of them (in column
        order). When they are exactly the rows above the watermark, a table whose counts need only
        ``ts`` is counted from them (an upsert of a few units) instead of reading them back
        (measured at batch 50: ~1 µs a row less)."""
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
            plan = _FROM_ROWS.get(table)
            rows = written.get(table) if written is not None and plan is not None else None
            # Our rows took consecutive ids just now: if as many ids as rows lie above the mark, the
            # rows above it are exactly ours.
            units = _units(rows, plan[0]) if rows and plan and new[0] - mark == len(rows) else None
            if units is None or plan is None:
                self._add(conn, (table,), f"id > {int(mark)}")
            elif units:  # a batch mostly falls in one unit: one upsert, bound directly
                conn.executemany(
                    f"INSERT INTO {SCHEMA}.counts (series, unit, n) VALUES (?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET n = n + excluded.n",
                    [(series, unit, n) for series in plan[1] for unit, n in units.items()],
                )
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
