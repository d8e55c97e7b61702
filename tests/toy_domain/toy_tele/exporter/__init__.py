"""The ``toy`` sink: ``toy.ping`` log records into the SQLite table ``toy_pings``.

It follows otel-tele's sink contract (:class:`otel_tele.Sink`): one transaction per batch, so a batch is
wholly stored or not at all; a ping without its sequence number is rejected (booked failed), never
stored as 0; every other record is booked ``not_routed``. The database is created on the first ping
kept.

Example::

    import otel_tele
    otel_tele.setup(service_name="pinger", sinks=["toy"])      # → $OTEL_TELE_DATA_DIR/toy.db
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from otel_tele import Sink, Written
from otel_tele.settings import Settings

from ..semconv import LATENCY_MS, NOTE, OK, PING, SEQ
from .options import TOY_DB_NAME
from .schema import DDL, INSERT

__all__ = ["ToySink"]


def _row(record: Any) -> tuple[Any, ...] | None:
    """The table row of one ``toy.ping`` log record, or None if it lacks its sequence number."""
    attributes = record.attributes or {}
    seq = attributes.get(SEQ)
    if type(seq) is not int:
        return None
    resource = getattr(record, "resource", None)
    service = resource.attributes.get("service.name") if resource is not None else None
    ok = attributes.get(OK)
    return (
        record.timestamp or record.observed_timestamp or 0,
        seq,
        attributes.get(LATENCY_MS),
        attributes.get(NOTE),
        None if ok is None else int(bool(ok)),
        service,
    )


class ToySink(Sink):
    """``toy.ping`` events into ``toy_pings`` (one short-lived connection per batch: nothing is held
    open, so a forked child has nothing of its parent's to forget)."""

    name = "toy"
    signals = frozenset({"logs"})
    transient_errors = (sqlite3.OperationalError,)  # "database is locked": retried by the contract

    def __init__(self, db_path: str | Path) -> None:
        super().__init__()
        self.db_path = Path(db_path)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(Path(settings.data_dir) / settings.get(TOY_DB_NAME))

    def write_logs(self, records: Sequence[Any]) -> Written:
        rows: list[tuple[Any, ...]] = []
        failed = 0
        for item in records:
            record = getattr(item, "log_record", item)
            if record.event_name != PING:
                continue
            row = _row(record)
            if row is None:
                failed += 1
            else:
                rows.append(row)
        if rows:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.db_path, timeout=5.0)
            try:
                with conn:  # one transaction: committed, or rolled back and raised (retried/failed)
                    conn.execute(DDL)
                    conn.executemany(INSERT, rows)
            finally:
                conn.close()
        return Written(failed=failed, not_routed=len(records) - len(rows) - failed)

    def location(self) -> str:
        return str(self.db_path)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"location": self.location(), "folder": str(self.db_path.parent)}
        if self.db_path.exists():
            info["reachable"] = os.access(self.db_path, os.W_OK)
            info["size_bytes"] = self.db_path.stat().st_size
        else:
            parent = next((p for p in self.db_path.absolute().parents if p.exists()), None)
            info["reachable"] = parent is not None and os.access(parent, os.W_OK)
            info["note"] = "created on the first toy.ping"
        return info
