"""The SQLite sink's writer: robot telemetry (spec 004) into ``telemetry.db``, through OTel.

The sink maps robot log records (``robot.*`` events) and HTTP server spans of ``/api/`` requests to
the spec's six tables (declared in ``schema``, mapped by ``_mapping``) and writes each export batch in one
``BEGIN IMMEDIATE`` transaction with one multi-row ``INSERT … VALUES (…), (…), …`` per table and
:data:`ROWS_PER_STATEMENT` rows (see ``SqliteSink._insert``), so a batch is either wholly on disk or
not at all — even if the process is killed mid-write. A batch of one table that leaves the digest
to a later batch (a burst on the row path, ``otel_tele._event_rows``) is one such INSERT on its own,
which SQLite commits as its own transaction.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from otel_tele._internal import abandon_inherited, bad_input_log, encodable, quiesce_for_fork
from otel_tele._maintenance import days_text, record_run
from otel_tele._mapping import Rows
from otel_tele._settings import Settings
from otel_tele._sink import Sink, SinkLogExporter, SinkSpanExporter, Written
from otel_tele.domains.robot import SQLITE_RETENTION_DAYS

from .._sqlite_wal import close_checkpointed
from ._db import init_db
from ._digest import Digest
from ._event_columns import BY_EVENT
from ._mapping import MAPPER
from .maintenance import Retention, retention_days_from_env
from .schema import BUSY_TIMEOUT_MS, DB_NAME, INSERTS, SCHEMA_VERSION, bulk_insert, connect_read_only

_log = logging.getLogger("otel_tele")
#: Rows per multi-row INSERT. Its parameters are bound in C from one flat tuple and its rows are
#: inserted in one ``sqlite3_step`` (the GIL is released once, not once per row as ``executemany``
#: does). Measured on the robot table, CPU per row at batch 50 / 2,048: 4.1 / 2.0 µs against 5.5 /
#: 4.1 for ``executemany`` and 8.6 / 7.5 for the JSON bulk insert this replaced (``json_each`` with
#: ``value->>i``: SQLite 3.40 re-parses every row once per column). The statement of each row count
#: is prepared once and kept by the connection's statement cache; preparing one costs ~2 µs a row, so
#: a batch is cut into statements of at most this many rows, and only a batch's last statement has a
#: count of its own.
ROWS_PER_STATEMENT = 256
_VARIABLES = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
_chain = itertools.chain.from_iterable


#: What one row can raise that is about that row (``OperationalError`` is the database's: transient).
_ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    ValueError,  # UnicodeEncodeError among them
    OverflowError,
    TypeError,
)


def _escaped(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with text made encodable: what cannot be UTF-8 is kept visible as a backslash escape."""
    return tuple(encodable(value) if isinstance(value, str) else value for value in row)


class SqliteSink(Sink):
    """Robot rows into one SQLite file (WAL). Storage is created on the first row kept, or by
    :meth:`open` (the standalone collector creates the schema at construction, as the spec says).

    Example::

        sink = SqliteSink("data/telemetry.db")
        telemetry = otel_tele.Pipeline(settings, local=True,
                                        extra_exporters={"logs": [SqliteLogExporter(sink)]})
    """

    name = "sqlite"
    signals = frozenset({"logs", "traces"})
    # "database is locked" / "disk I/O error": retried with backoff by the sink contract.
    transient_errors = (sqlite3.OperationalError,)
    #: Events this sink takes as columns when it is the only log consumer (``otel_tele._event_rows``):
    #: every robot event that fills one table.
    event_rows: ClassVar[frozenset[str]] = frozenset(BY_EVENT)

    def __init__(self, db_path: str | Path, *, retention_days: float | None = None) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.digest = Digest(self.db_path)
        self.retention = Retention(
            retention_days_from_env() if retention_days is None else retention_days, observer=self
        )
        self._conn: sqlite3.Connection | None = None
        self._open_lock = threading.Lock()
        self._transaction_lock = threading.Lock()  # held while a write transaction is open
        # A write may wait its whole busy timeout for SQLite's lock while holding this one: the
        # fork waits that long too, since a child forked mid-transaction could never write the file.
        quiesce_for_fork(self, "_transaction_lock", timeout_s=BUSY_TIMEOUT_MS / 1000 + 1.0)
        self.rows_written = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(Path(settings.data_dir) / DB_NAME, retention_days=settings.get(SQLITE_RETENTION_DAYS))

    # -- storage -------------------------------------------------------------------------------
    def open(self) -> sqlite3.Connection:
        """Create (or migrate) the database now; later writes reuse the connection."""
        with self._open_lock:
            if self._conn is None:
                with self._transaction_lock:  # creating the schema is a write transaction too
                    conn = init_db(self.db_path)
                    self._conn = conn
                    self.digest.attach(conn)
                    if self.retention.due():
                        self._retain(conn)
            return self._conn

    def _retain(self, conn: sqlite3.Connection) -> None:
        try:
            self.digest.catch_up(conn)
            deleted = self.retention.run(conn)
        except sqlite3.Error as exc:  # retention is housekeeping: never fail a write for it
            _log.warning("telemetry retention pass failed: %s", exc)
            return
        record_run(
            self.db_path.parent,
            self.name,
            "prune",
            deleted,
            detail=f"rows older than {days_text(self.retention.days)}",
            next_run=self.retention.next_run_epoch(),
        )

    # -- writes (one at a time: the sink contract holds write_lock) ---------------------------
    def write_logs(self, records: Sequence[Any]) -> Written:
        return self._write(MAPPER.map_logs(records))

    def write_event_rows(self, name: str, timestamps: list[int], columns: dict[str, list[Any]]) -> Written:
        """Robot events handed over as columns (typed and scrubbed; see ``otel_tele._event_rows``):
        the same rows, digest and books as ``write_logs`` of their records."""
        return self._write(BY_EVENT[name].rows(timestamps, columns))

    def event_row_items(
        self, name: str, timestamps: list[int], columns: dict[str, list[Any]]
    ) -> list[tuple[Any, ...]] | None:
        """The rows of robot events handed over as columns, built ahead of their write (on the
        telemetry thread, see ``EventRoute.put``), each led by the event's name; ``None`` if one
        would be rejected."""
        return BY_EVENT[name].built(timestamps, columns)

    def write_event_row_items(self, rows: list[tuple[Any, ...]], *, more_queued: bool = False) -> Written:
        """Rows of one event built by :meth:`event_row_items` (its name first): written as
        ``write_logs`` writes their records' rows (same transaction and books). ``more_queued``:
        more rows wait right behind these (a burst), so the digest may fold them in with a later
        transaction (``Digest.due``)."""
        mapped = Rows()
        mapped.by_table[BY_EVENT[rows[0][0]].table] = rows
        return self._write(mapped, fold=self.digest.due(more_queued), lead=1)

    def settle(self) -> None:
        """Fold in what a burst left above the digest's watermarks (after a flush: the digest then
        reflects every row written; see ``Digest.due``)."""
        conn = self._conn  # closed: the next open folds them in (``Digest.attach``)
        if conn is not None and self.digest.attached and self.digest.unfolded_tables:
            with self._transaction_lock:
                self.digest.catch_up(conn)

    def write_spans(self, spans: Sequence[Any]) -> Written:
        return self._write(MAPPER.map_spans(spans))

    def _write(self, rows: Rows, *, fold: bool = True, lead: int = 0) -> Written:
        """Write ``rows`` (their first ``lead`` values tags, not columns) in one transaction."""
        if rows.problems:
            _log.warning("sqlite sink: %d records rejected, e.g. %s", rows.rejected, rows.problems[0])
        if not rows.count:
            return Written(failed=rows.rejected, not_routed=rows.not_routed)
        conn = self.open()
        rejected = rows.rejected
        with self._transaction_lock:
            if not fold and self._one_statement(conn, rows.by_table, lead):
                pass  # its own transaction
            else:
                by_table = rows.by_table
                if lead:
                    by_table = {table: [row[lead:] for row in values] for table, values in by_table.items()}
                rejected += self._transaction(conn, by_table, fold)
            if fold:
                self.digest.folded()
            else:
                self.digest.unfolded += rows.count
                self.digest.unfolded_tables.update(rows.by_table)
            self.rows_written += rows.count - (rejected - rows.rejected)
            if self.retention.due():
                self._retain(conn)
        return Written(failed=rejected, not_routed=rows.not_routed)

    @staticmethod
    def _one_statement(
        conn: sqlite3.Connection, by_table: dict[str, list[tuple[Any, ...]]], lead: int
    ) -> bool:
        """Rows of one table that fit one multi-row INSERT, written by it alone: outside a
        ``BEGIN`` a statement is its own transaction, all its rows or none, and the worker gives up
        the GIL once instead of three times (with the caller and the telemetry thread busy, each
        time costs it a wait for the GIL). False if they do not fit, or one is refused (the
        statement then changed nothing: the transaction path isolates that row)."""
        if len(by_table) != 1:
            return False
        ((table, values),) = by_table.items()
        width = len(values[0]) if values else 1
        if not values or len(values) > ROWS_PER_STATEMENT or len(values) * width > conn.getlimit(_VARIABLES):
            return False
        try:
            conn.execute(bulk_insert(table, len(values), lead=lead), tuple(_chain(values)))
        except _ROW_ERRORS:
            return False
        return True

    def _transaction(
        self, conn: sqlite3.Connection, by_table: dict[str, list[tuple[Any, ...]]], fold: bool
    ) -> int:
        """Write ``by_table`` in one ``BEGIN IMMEDIATE`` transaction, the digest folded in with
        them if ``fold``; returns the rows refused."""
        rejected = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            whole = {}  # the tables every row of which went in: the digest may count them
            for table, values in by_table.items():
                refused = self._insert(conn, table, values)
                rejected += refused
                if not refused:
                    whole[table] = values
            if fold:  # with the tables rows were left unfolded in by earlier transactions
                tables = [*by_table, *self.digest.unfolded_tables.difference(by_table)]
                self._in_digest(conn, self.digest.after_insert, tables, whole)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return rejected

    # -- the digest sidecar (``_digest``): kept in the same transaction as the rows ---------
    def _in_digest(self, conn: sqlite3.Connection, step: Any, *args: Any) -> None:
        """Run a digest step; if it fails, only the digest is given up (the rows still commit) — it is
        rebuilt when the sink next opens, and readers take the exact path meanwhile."""
        if not self.digest.attached:
            return
        conn.execute("SAVEPOINT digest")
        try:
            step(conn, *args)
            conn.execute("RELEASE digest")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK TO digest")
            conn.execute("RELEASE digest")
            _log.warning("robot digest given up until the sink reopens: %s", exc)
            self.digest.attached = False  # detached on close; stale watermarks steer readers away

    def before_delete(self, conn: sqlite3.Connection, table: str, ids: list[int]) -> None:
        self._in_digest(conn, self.digest.before_delete, table, ids)

    def after_delete(self, conn: sqlite3.Connection, table: str) -> None:
        self._in_digest(conn, self.digest.after_delete, table)

    @staticmethod
    def _insert(conn: sqlite3.Connection, table: str, values: list[tuple[Any, ...]]) -> int:
        width = len(values[0]) if values else 1
        # An SQLite built with a lower limit on parameters (999 before 3.32) takes fewer rows.
        per = max(1, min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
        many = len(values) > per
        if many:  # a failure must undo every statement of the batch, not only its own
            conn.execute("SAVEPOINT bulk")
        try:
            for start in range(0, len(values), per):
                part = values[start : start + per]
                # Bound exactly as executemany binds each row (floats bit for bit, NaN as NULL).
                conn.execute(bulk_insert(table, len(part)), tuple(_chain(part)))
            if many:
                conn.execute("RELEASE bulk")
            return 0
        except _ROW_ERRORS:  # a refused row, a lone surrogate: let the row-by-row path sort it out
            if many:
                conn.execute("ROLLBACK TO bulk")
                conn.execute("RELEASE bulk")
        # A row the schema or the driver refuses must not sink its neighbours: isolate it, inside the
        # same transaction; text that cannot be encoded is escaped first (lone surrogates → \\udXXX).
        sql = INSERTS[table]
        rejected = 0
        for row in values:
            try:
                conn.execute(sql, row)
            except (UnicodeEncodeError, sqlite3.InterfaceError):
                try:
                    conn.execute(sql, _escaped(row))
                except _ROW_ERRORS as exc:
                    rejected += 1
                    bad_input_log.warning("sqlite " + table, "sqlite sink: %s row rejected (%s)", table, exc)
            except _ROW_ERRORS as exc:
                rejected += 1
                bad_input_log.warning("sqlite " + table, "sqlite sink: %s row rejected (%s)", table, exc)
        return rejected

    def after_fork(self) -> None:
        # SQLite forbids carrying a connection across fork(): the child opens its own.
        self._open_lock = threading.Lock()
        abandon_inherited(self._conn)
        self._conn = None

    def close(self) -> None:
        with self._open_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            close_checkpointed(conn)

    def location(self) -> str:
        return str(self.db_path)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "location": self.location(),
            "folder": str(self.db_path.parent),
            "schema_version": SCHEMA_VERSION,
            "retention_days": self.retention.days,
        }
        if self.db_path.exists():
            info["size_bytes"] = self.db_path.stat().st_size
            try:
                conn = connect_read_only(self.db_path)
                try:
                    info["found_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
                finally:
                    conn.close()
                info["reachable"] = True
            except sqlite3.Error as exc:
                info["reachable"], info["error"] = False, str(exc)
        else:
            parent = next((p for p in self.db_path.absolute().parents if p.exists()), None)
            info["reachable"] = parent is not None and os.access(parent, os.W_OK)
            info["note"] = "created on the first robot record"
        return info


class SqliteLogExporter(SinkLogExporter):
    """``OTEL_LOGS_EXPORTER=otel_tele_sqlite``: robot event log records into ``telemetry.db``."""

    sink_class = SqliteSink


class SqliteSpanExporter(SinkSpanExporter):
    """``OTEL_TRACES_EXPORTER=otel_tele_sqlite``: ``/api/`` HTTP server spans into ``web_requests``."""

    sink_class = SqliteSink
