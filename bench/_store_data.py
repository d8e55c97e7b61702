"""Fabricated spans for the general store's benches, written straight as Parquet parts in the layout
:mod:`otel_tele.exporters.store.schema` declares: ``rows`` spans over the last ``days`` UTC days (one
``date=`` partition each), 10 spans per trace, 8 services, 50 span names, 1 % errors. Rows are made a
part at a time (``part_rows``), so memory stays at one part; 10M spans through OTLP would take an hour
here.

``prefix="p"`` writes the parts as the sink flushes them (small, uncompacted: ``maintain`` merges them
as it would the sink's); ``prefix="c"`` as if already compacted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

PER_TRACE = 10
SERVICES = 8
NAMES = 50
DAY_NS = 86_400 * 10**9


@dataclass
class StoreData:
    """Where the spans went, and some of their traces."""

    spans: Path  # the ``spans`` dataset folder
    parts: int = 0
    recent: str = ""  # a trace of the last part written
    #: UTC day (``YYYY-MM-DD``) -> a trace written in that day's partition
    by_day: dict[str, str] = field(default_factory=dict)


def span_name(i: int) -> str:
    return f"GET /api/item/{i}"


def write_spans(
    root: Path,
    rows: int,
    *,
    days: int = 7,
    part_rows: int = 1_000_000,
    prefix: str = "c",
    seed: int = 1,
) -> StoreData:
    """``rows`` spans under the store root ``root`` (``root/spans/date=…/<prefix>-….parquet``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from otel_tele.exporters.store._parts import part_options
    from otel_tele.exporters.store.schema import COMPACTED_ROW_GROUP_ROWS, PARTITION, SCHEMAS, WRITE_OPTIONS

    # Parts as the sink's flush writes them (publish), or plain Parquet "as if compacted".
    options = part_options("spans") if prefix == "p" else dict(WRITE_OPTIONS)

    data = StoreData(root / "spans")
    schema = SCHEMAS["spans"]
    rng = np.random.default_rng(seed)
    first = time.time_ns() - days * DAY_NS
    step = days * DAY_NS / rows
    services = np.array([f"svc-{i}" for i in range(SERVICES)], dtype=object)
    names = np.array([span_name(i) for i in range(NAMES)], dtype=object)
    ts = pa.timestamp("ns", tz="UTC")
    written = 0
    while written < rows:  # a part at a time: memory stays at one part
        count = min(part_rows, rows - written)
        idx = np.arange(written, written + count)
        start = (first + idx * step).astype("int64")
        duration = rng.integers(10_000, 50_000_000, count)
        trace_hex = rng.bytes(16 * -(-count // PER_TRACE)).hex()
        trace_ids = [trace_hex[32 * (i // PER_TRACE) : 32 * (i // PER_TRACE) + 32] for i in range(count)]
        span_hex = rng.bytes(8 * count).hex()
        span_ids = [span_hex[16 * i : 16 * i + 16] for i in range(count)]
        service = services[(idx // PER_TRACE) % len(services)]
        columns = {
            "start_time": pa.array(start, ts),
            "end_time": pa.array(start + duration, ts),
            "duration_ns": pa.array(duration, pa.int64()),
            "trace_id": pa.array(trace_ids, pa.string()),
            "span_id": pa.array(span_ids, pa.string()),
            "parent_span_id": pa.array(
                [None if i % PER_TRACE == 0 else span_ids[i - i % PER_TRACE] for i in range(count)],
                pa.string(),
            ),
            "trace_state": pa.nulls(count, pa.string()),
            "trace_flags": pa.array(np.ones(count, dtype="int32")),
            "name": pa.array(names[idx % len(names)], pa.string()),
            "kind": pa.array(
                np.where(idx % PER_TRACE == 0, "SERVER", "INTERNAL").astype(object), pa.string()
            ),
            "status_code": pa.array(np.where(rng.random(count) < 0.01, "ERROR", "UNSET").astype(object)),
            "status_message": pa.nulls(count, pa.string()),
            "attributes": pa.array([f'{{"http.route": "/api/item", "item.id": {i % 997}}}' for i in idx]),
            "events": pa.array([[]] * count, schema.field("events").type),
            "links": pa.array([[]] * count, schema.field("links").type),
            **{
                f"dropped_{what}_count": pa.array(np.zeros(count, dtype="int64"))
                for what in ("attributes", "events", "links")
            },
            "resource": pa.array([f'{{"service.name": "{name}"}}' for name in service]),
            "service_name": pa.array(service, pa.string()),
            "scope_name": pa.array(["bench"] * count, pa.string()),
            "scope_version": pa.nulls(count, pa.string()),
            "scope_attributes": pa.nulls(count, pa.string()),
        }
        table = pa.table(columns, schema=schema)
        day_of = start // DAY_NS
        for day in np.unique(day_of):  # rows are in time order: one slice per UTC day
            where = np.flatnonzero(day_of == day)
            name = time.strftime("%Y-%m-%d", time.gmtime(int(day) * 86_400))
            folder = data.spans / f"{PARTITION}={name}"
            folder.mkdir(parents=True, exist_ok=True)
            data.parts += 1
            pq.write_table(
                table.slice(int(where[0]), len(where)),
                folder / f"{prefix}-{time.time_ns()}-{os.getpid()}-{data.parts}.parquet",
                row_group_size=COMPACTED_ROW_GROUP_ROWS,
                **options,
            )
            middle = int(where[len(where) // 2])  # a trace of the day's first slice
            data.by_day.setdefault(name, trace_ids[middle - middle % PER_TRACE])
        data.recent = trace_ids[-3 * PER_TRACE]
        written += count
    return data
