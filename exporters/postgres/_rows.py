"""Inference log records → ``system_telemetry`` rows and the rollup increments they add.

Both stores take what :func:`prepare` returns, so what a row *means* (which value is an efficiency
score, what weighs it, what counts as a failure) is decided here once. Text PostgreSQL would reject is
made valid, never dropped: NaN/±inf inside metadata become the strings ``"NaN"``/``"Infinity"``/
``"-Infinity"``, NUL characters become the visible text ``\\u0000``, and an over-long
event_type/component/status is cut to :data:`MAX_KEY_CHARS` with the full text kept in metadata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_tele._event_columns import EventColumns, supported
from otel_tele._internal import bad_input_log, describe_error
from otel_tele._mapping import RowMapper

from ._clean import TRUNCATED, clean_metadata, valid_as_is
from ._rollup import RollupKey, coarsen, minute_rollup, rollup_rows
from .schema import (
    MAX_KEY_CHARS,
    ROLLUP_HOUR,
    ROLLUP_MINUTE,
    ROLLUPS,
    ROW_EVENTS,
    ROW_TABLE,
    clean_text,
)

#: (event_type, component, value, metadata JSON text, status, timestamp epoch s, trace_id, span_id)
Row = tuple[str, str | None, float | None, str, str | None, float, str | None, str | None]


#: The row mapping, generated from :data:`~.schema.ROW_TABLE`: one entry per row event, each with
#: the event type its records stand for.
MAPPER = RowMapper(
    ROW_TABLE.mapping(event, defaults={"event_type": default}) for event, default in ROW_EVENTS.items()
)


@dataclass
class Batch:
    """Rows ready to write and the rollup increments per rollup table."""

    rows: list[Row] = field(default_factory=list)
    rollups: dict[str, dict[RollupKey, list[float]]] = field(default_factory=dict)
    rejected: int = 0
    not_routed: int = 0  # records of events no inference table takes


def prepare(rows: Iterable[Sequence[Any]], rejected: int = 0, *, metas: Sequence[Any] | None = None) -> Batch:
    """Sanitize mapped rows and compute what they add to each rollup table. ``metas``: per row, the
    dict its metadata text was encoded from, if known (``None`` where not): the rollups read those
    rather than parse the texts back when that cannot change a figure (``clean_metadata``)."""
    batch = Batch(rejected=rejected)
    raw = rows if isinstance(rows, list) else list(rows)
    batch.rows, parsed, batch.rejected = _sanitized(raw, rejected, metas)
    minute = minute_rollup(batch.rows, parsed)
    batch.rollups[ROLLUP_MINUTE.table] = minute
    for rollup in ROLLUPS:
        if rollup is not ROLLUP_MINUTE:
            batch.rollups[rollup.table] = coarsen(minute, rollup.seconds)
    return batch


def _sanitized(
    raw: list[Sequence[Any]], rejected: int, sources: Sequence[Any] | None = None
) -> tuple[list[Row], list[dict[str, Any]], int]:
    """The rows as stored, their parsed metadata, and ``rejected`` plus the rows that fail alone.
    Rows :func:`~._clean.clean_metadata` vouches for are kept as they came (what :func:`sanitize_row`
    would return); the others go through :func:`sanitize_row`."""
    metas = clean_metadata(raw, _TS_RANGE, sources)
    if None not in metas:
        return raw, metas, rejected  # type: ignore[return-value]  # checked: 8-tuples, typed as Row
    rows: list[Row] = []
    kept: list[dict[str, Any]] = []
    for raw_row, meta in zip(raw, metas, strict=True):
        if meta is not None:
            rows.append(raw_row)  # type: ignore[arg-type]
            kept.append(meta)
            continue
        try:
            row, meta = sanitize_row(raw_row)
        except Exception as exc:  # metadata nested too deep to parse, a hostile value: fails alone
            rejected += 1
            bad_input_log.warning("postgres sink", "inference sink: a row rejected (%s)", describe_error(exc))
            continue
        rows.append(row)
        kept.append(meta)
    return rows, kept, rejected


#: The inference events the sink takes as columns when it is the only log consumer
#: (``otel_tele._event_rows``), and how each becomes its ``system_telemetry`` rows. Only untraced
#: batches reach it (``PostgresSink.keeps_trace_context``): an event emitted inside a span is
#: handed over as its record, whose trace and span ids the row keeps.
BY_EVENT: Mapping[str, EventColumns] = {
    event: EventColumns(table, event)
    for event, table in MAPPER.typed_tables.items()
    if supported(table, untraced=True)
}


# -- sanitizing -----------------------------------------------------------------------------------
def clean_json(value: Any) -> Any:
    """A JSON value PostgreSQL's jsonb accepts (NaN/inf → strings, NUL → visible escape)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def parse_metadata(text: Any) -> dict[str, Any]:
    if isinstance(text, Mapping):
        parsed: Any = text
    else:
        try:
            parsed = json.loads(text)
        except (TypeError, ValueError):
            parsed = {"_raw": str(text)}  # not JSON (e.g. a record from another SDK): keep it as text
    if not isinstance(parsed, Mapping):
        parsed = {"_value": parsed}
    cleaned: dict[str, Any] = clean_json(parsed)
    return cleaned


def _loads_dict(text: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _key_text(value: Any, name: str, meta: dict[str, Any]) -> str | None:
    if value is None:
        return None
    text = clean_text(str(value))
    if len(text) > MAX_KEY_CHARS:
        meta.setdefault(TRUNCATED, {})[name] = text
        text = text[:MAX_KEY_CHARS]
    return text


#: Epoch seconds both stores can hold (Python's datetime: years 1 to 9999).
_TS_RANGE = (-62_135_596_800.0, 253_402_300_799.0)


def sanitize_row(raw: Sequence[Any]) -> tuple[Row, dict[str, Any]]:
    event_type, component, value, metadata, status, ts, trace_id, span_id = raw
    if not _TS_RANGE[0] <= float(ts) <= _TS_RANGE[1]:  # NaN too: the row fails alone
        raise ValueError("timestamp out of range")
    fast = valid_as_is(metadata)
    meta = _loads_dict(metadata) if fast else None
    if meta is None:
        fast, meta = False, parse_metadata(metadata)
    event_type = _key_text(event_type, "event_type", meta) or ""
    component = _key_text(component, "component", meta)
    status = _key_text(status, "status", meta)
    if fast and TRUNCATED not in meta:
        text = metadata  # the common case: the JSON text from the pipeline is stored as it came
    else:
        text = json.dumps(meta, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
    return (event_type, component, value, text, status, float(ts), trace_id, span_id), meta


__all__ = [
    "BY_EVENT",
    "MAPPER",
    "ROLLUP_HOUR",
    "Batch",
    "RollupKey",
    "Row",
    "prepare",
    "rollup_rows",
]
