"""An export batch split per run and table (:func:`split`), and converted to Arrow with a record that
cannot be converted left out alone (:func:`to_arrow_alone`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from otel_tele._internal import bad_input_log, describe_error
from otel_tele._mapping import note_unknown_event
from otel_tele.semconv import fda as v

from . import schema

ARTIFACTS = "artifacts"  # not a table: each record is a file copied into the run (_artifacts)
#: Which records this sink takes, and where each goes: the events feeding each declared table, and
#: artifacts.
TABLE_OF: dict[str, str] = {
    **{event: name for name, table in schema.TABLES.items() for event in table.events},
    v.ARTIFACT: ARTIFACTS,
}


class Batch:
    """One export batch, split per run, order kept."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, list[tuple[int, Mapping[str, Any]]]]] = {}
        self.ends: dict[str, str] = {}
        self.rejected = 0
        self.not_routed = 0


def split(records: Sequence[Any]) -> Batch:
    """One export batch per run and table, order kept; what is not ours, or unreadable, counted."""
    batch = Batch()
    for record in records:
        try:
            lr = record.log_record
            table = TABLE_OF.get(lr.event_name or "")
            if table is None:  # not ours: other sinks take it
                batch.not_routed += 1
                note_unknown_event(lr.event_name or "")
                continue
            attrs = lr.attributes or {}
            if type(attrs) is not dict:  # BoundedAttributes: a plain copy makes column loops ~3x faster
                attrs = dict(attrs)
        except Exception as exc:  # a record that cannot even be read fails alone
            batch.rejected += 1
            bad_input_log.warning("capsule sink", "capsule sink: a record rejected (%s)", describe_error(exc))
            continue
        run_id = attrs.get(v.RUN_ID)
        if not isinstance(run_id, str):
            batch.rejected += 1
            continue
        batch.runs.setdefault(run_id, {}).setdefault(table, []).append(
            (lr.timestamp or lr.observed_timestamp or 0, attrs)
        )
        if table == "events" and attrs.get(v.EVENT) in v.END_EVENTS:
            batch.ends[run_id] = str(attrs.get(v.EVENT))
    return batch


def to_arrow_alone(
    table: str, records: list[tuple[int, Mapping[str, Any]]]
) -> tuple[pa.Table | None, list[tuple[int, Mapping[str, Any]]]]:
    """``records`` as Arrow, and the records it holds: one that cannot be converted is left out alone
    (its neighbours, and the other runs of the batch, are written)."""
    try:
        return schema.to_arrow(table, records), records
    except Exception:
        pass
    kept = []
    for record in records:
        try:
            schema.to_arrow(table, [record])
        except Exception as exc:
            bad_input_log.warning(
                "capsule sink", "capsule sink: a %s row rejected (%s)", table, describe_error(exc)
            )
        else:
            kept.append(record)
    return (schema.to_arrow(table, kept) if kept else None), kept
