"""The capsule sink's books: rows taken and lost during one write (:class:`Ledger`), and the truth an
end event tells about them (:func:`with_row_books`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from otel_tele.semconv import fda as v
from otel_tele.semconv import to_json

from ._writers import FlowWriter, ProductionWriter

_log = logging.getLogger("otel_tele")
Writer = ProductionWriter | FlowWriter


class Ledger:
    """Rows taken by writers and rows lost with a failed run, during one write or flush."""

    def __init__(self) -> None:
        self.accepted = 0
        self.lost = 0


def rows_written(writer: Writer) -> int:
    return writer.telemetry.rows if isinstance(writer, ProductionWriter) else writer.rows["telemetry"]


def with_row_books(item: tuple[int, Mapping[str, Any]], rows: int) -> tuple[int, Mapping[str, Any]]:
    """An end event whose payload tells the truth: ``rows_recorded`` is what the file holds,
    ``rows_dropped`` what the recorder handed over and never arrived, and a run that lost rows is
    never ``completed``. The record's own attributes are left alone (other sinks share them)."""
    timestamp, attrs = item
    if attrs.get(v.EVENT) not in v.END_EVENTS:
        return item
    summary = payload(attrs)
    emitted = summary.get("rows_emitted")
    dropped = max(0, emitted - rows) if type(emitted) is int else 0
    summary["rows_recorded"] = rows
    summary["rows_dropped"] = dropped
    if dropped and summary.get("status") == "completed":
        summary["status"] = v.COMPLETED_WITH_LOSS
    if dropped:
        _log.warning(
            "capsule sink: run %s lost %d of %d rows under overload (status %s)",
            str(attrs.get(v.RUN_ID))[:80],
            dropped,
            emitted,
            summary.get("status"),
        )
    return timestamp, {**attrs, v.PAYLOAD: to_json(summary)}


def payload(attrs: Mapping[str, Any]) -> dict[str, Any]:
    raw = attrs.get(v.PAYLOAD)
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
