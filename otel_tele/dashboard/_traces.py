"""The traces-and-logs page over the general store: recent traces filtered by service, span name
and time window; a trace as a waterfall with each span's details and the trace's log records.
The URL of a trace is its permalink (``/ui/traces?trace=<32 hex>``).

Reading cheaply at 10M spans: queries run on one shared DuckDB database (footers cached), skip
whole day partitions outside the window (``date``) and row groups by their ``start_time`` range; the
list reads only as far back as its newest 200 traces need (:func:`_reach`), not the whole window."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._duckdb import SharedDatabase
from ..exporters.store.schema import dataset_glob, store_root
from ._page import Page, PageError, esc, table

TRACE_ID = re.compile(r"[0-9a-f]{32}")
MAX_TRACES = 200
MAX_SPANS = 2000
#: Window choices (minutes) for the trace list.
WINDOWS = {"15": 15, "60": 60, "360": 360, "1440": 1440, "10080": 10080}

_LIST_SQL = """
SELECT trace_id,
       arg_min(name, start_time) FILTER (WHERE parent_span_id IS NULL) AS root,
       arg_min(service_name, start_time) AS service,
       min(start_time) AS started,
       (epoch_ns(max(end_time)) - epoch_ns(min(start_time))) / 1e6 AS duration_ms,
       count(*) AS spans,
       count(*) FILTER (WHERE status_code = 'ERROR') AS errors
FROM read_parquet($glob, hive_partitioning = true, union_by_name = true)
WHERE start_time >= now() - to_minutes($minutes)
  AND date >= CAST(timezone('UTC', now() - to_minutes($minutes)) AS DATE)  -- the UTC day a part was written
  AND ($service IS NULL OR service_name = $service)
  AND ($name IS NULL OR contains(name, $name))
GROUP BY trace_id ORDER BY started DESC LIMIT $limit
"""
#: Root spans (matching the filters) started in the last ``$minutes``: does that reach hold the list?
_ROOTS_SQL = """
SELECT count(*) FROM read_parquet($glob, hive_partitioning = true, union_by_name = true)
WHERE start_time >= now() - to_minutes($minutes)
  AND date >= CAST(timezone('UTC', now() - to_minutes($minutes)) AS DATE)  -- the UTC day a part was written
  AND parent_span_id IS NULL
  AND ($service IS NULL OR service_name = $service)
  AND ($name IS NULL OR contains(name, $name))
"""
#: Reaches (minutes) the list tries before the whole window, newest first.
REACHES = (15, 60, 240, 1440)
#: Read this much further back than the reach found, so a listed trace that began a little before
#: its root span's start (clock skew between services) or ran long is still read whole.
MARGIN_MINUTES = 10
_SPANS_SQL = """
SELECT span_id, parent_span_id, name, kind, status_code, status_message, service_name,
       epoch_ns(start_time) AS start_ns, duration_ns, attributes
FROM read_parquet($glob, hive_partitioning = true, union_by_name = true)
WHERE trace_id = $trace ORDER BY start_time LIMIT $limit
"""
_LOGS_SQL = """
SELECT coalesce(time, observed_time) AS time, severity_text, event_name, body, span_id
FROM read_parquet($glob, hive_partitioning = true, union_by_name = true)
WHERE trace_id = $trace ORDER BY coalesce(time, observed_time) LIMIT 500
"""


_DATABASE = SharedDatabase("the traces page (DuckDB)")


def _records(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with _DATABASE.cursor() as cursor:
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _reach(params: dict[str, Any], window: int) -> int:
    """How far back (minutes) the list must read: the shortest reach in :data:`REACHES` holding at
    least as many root spans as the list shows (plus the margin), else the whole window. The newest
    traces by start are then the same as over the whole window, read from a fraction of it."""
    for minutes in REACHES:
        if minutes + MARGIN_MINUTES >= window:
            break
        (row,) = _records(_ROOTS_SQL, {**params, "minutes": minutes})
        if next(iter(row.values())) >= MAX_TRACES:
            return minutes + MARGIN_MINUTES
    return window


def _has_parts(root: Path, dataset: str) -> bool:
    return any((root / dataset).glob("*=*/*.parquet"))


def page(settings: Any) -> Page:
    root = store_root(settings)

    def render(query: Mapping[str, str]) -> str:
        trace = query.get("trace")
        if trace is not None:
            if not TRACE_ID.fullmatch(trace):
                raise PageError("trace must be 32 lowercase hex digits")
            return _trace(root, trace)
        return _list(root, query)

    return Page("traces", "Traces and logs", render, order=3)


def _list(root: Path, query: Mapping[str, str]) -> str:
    window = query.get("window", "60")
    if window not in WINDOWS:
        raise PageError(f"window must be one of {', '.join(WINDOWS)} (minutes)")
    service = query.get("service") or None
    name = query.get("name") or None
    options = "".join(
        f'<option value="{w}"{" selected" if w == window else ""}>last {WINDOWS[w]} min</option>'
        for w in WINDOWS
    )
    form = (
        '<form method="get" class="filters">'
        f'<label>service <input name="service" value="{esc(service or "")}"></label> '
        f'<label>span name contains <input name="name" value="{esc(name or "")}"></label> '
        f'<label><select name="window">{options}</select></label> '
        '<button type="submit">Search</button></form>'
    )
    if not _has_parts(root, "spans"):
        return form + '<p class="note">No spans in the general store yet.</p>'
    params = {"glob": dataset_glob(root, "spans"), "service": service, "name": name}
    minutes = _reach(params, WINDOWS[window])
    rows = _records(_LIST_SQL, {**params, "minutes": minutes, "limit": MAX_TRACES})
    cols = ("trace_id", "root", "service", "started", "duration_ms", "spans", "errors")
    return form + table(
        cols, [tuple(r[c] for c in cols) for r in rows], links=0, link=lambda r: f"/ui/traces?trace={r[0]}"
    )


def _trace(root: Path, trace: str) -> str:
    if not _has_parts(root, "spans"):
        raise KeyError(f"no trace {trace}")
    spans = _records(_SPANS_SQL, {"glob": dataset_glob(root, "spans"), "trace": trace, "limit": MAX_SPANS})
    if not spans:
        raise KeyError(f"no trace {trace}")
    t0 = min(s["start_ns"] for s in spans)
    depth: dict[str, int] = {}
    for s in spans:  # ordered by start: a parent precedes its children
        depth[s["span_id"]] = depth.get(s["parent_span_id"] or "", -1) + 1
    spec = {
        "spans": [
            {
                "label": f"{'  ' * depth[s['span_id']]}{s['name']}",
                "start": (s["start_ns"] - t0) / 1e6,
                "duration": (s["duration_ns"] or 0) / 1e6,
                "error": s["status_code"] == "ERROR",
            }
            for s in spans
        ]
    }
    data = json.dumps(spec, allow_nan=False).replace("</", "<\\/")
    parts = [
        f'<p><a href="/ui/traces">all traces</a> · trace <b>{esc(trace)}</b> · {len(spans)} spans</p>',
        '<figure class="chart" data-waterfall><figcaption>Waterfall (ms from the first span)</figcaption>'
        f'<script type="application/json">{data}</script></figure>',
        "<h2>Spans</h2>",
    ]
    for s in spans:
        head = (
            f"{esc(s['name'])} · {esc(s['kind'])} · {esc(s['status_code'])} · "
            f"{(s['start_ns'] - t0) / 1e6:.3f} ms + {(s['duration_ns'] or 0) / 1e6:.3f} ms · "
            f"{esc(s['service_name'])}"
        )
        attributes = esc(json.dumps(json.loads(s["attributes"] or "{}"), indent=1, ensure_ascii=False))
        parts.append(
            f'<details data-span="{esc(s["span_id"])}"><summary>{head}</summary>'
            f"<pre>{attributes}</pre></details>"
        )
    if _has_parts(root, "logs"):
        logs = _records(_LOGS_SQL, {"glob": dataset_glob(root, "logs"), "trace": trace})
        parts.append("<h2>Logs of this trace</h2>")
        cols = ("time", "severity_text", "event_name", "body", "span_id")
        parts.append(table(cols, [tuple(r[c] for c in cols) for r in logs]))
    return "".join(parts)
