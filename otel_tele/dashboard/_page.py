"""What a dashboard page is: a title, a slug and a function from query parameters to HTML.

Pages are server-rendered; a chart is a ``<script type="application/json">`` block (data, not code,
so the strict Content-Security-Policy holds) that ``static/app.js`` draws with uPlot.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Renders a page body from the request's query parameters. Raises :class:`PageError` for a bad
#: parameter (shown as a 400 with the message) or ``KeyError`` for something that does not exist (404).
Render = Callable[[Mapping[str, str]], str]


class PageError(ValueError):
    """A bad query parameter: the message is shown to the user (it must not echo paths)."""


@dataclass(frozen=True)
class Page:
    slug: str  # URL segment under /ui/
    title: str
    render: Render
    order: int = 100


def esc(value: Any) -> str:
    """Text for HTML (``None`` shows as an em dash)."""
    if value is None:
        return "&mdash;"
    if isinstance(value, float):
        return html.escape(f"{value:.6g}") if math.isfinite(value) else html.escape(str(value))
    return html.escape(str(value), quote=True)


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    cls: str = "",
    links: int | None = None,
    link: Callable[[Sequence[Any]], str] | None = None,
) -> str:
    """An HTML table; with ``link``, column ``links`` links to ``link(row)``."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = esc(value)
            if link is not None and i == links:
                text = f'<a href="{esc(link(row))}">{text}</a>'
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(columns)}" class="empty">no data</td></tr>')
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def when(ts: Any) -> str | None:
    """An epoch-seconds timestamp as UTC ISO 8601 to the millisecond (None stays None)."""
    if not isinstance(ts, int | float) or not math.isfinite(ts):
        return None if ts is None else str(ts)
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def records(rows: Sequence[Mapping[str, Any]], *, hide: Iterable[str] = ("id",)) -> str:
    """Rows of dicts as a table of their own columns (``ts`` shown as UTC time)."""
    if not rows:
        return table(("",), [])
    hidden = set(hide)
    columns = [c for c in rows[0] if c not in hidden]
    return table(columns, [[when(r.get(c)) if c == "ts" else r.get(c) for c in columns] for r in rows])


def _finite(values: Iterable[Any]) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        out.append(float(v) if isinstance(v, int | float) and math.isfinite(float(v)) else None)
    return out


def chart(
    chart_id: str,
    title: str,
    x: Sequence[Any],
    series: Mapping[str, Sequence[Any]],
    *,
    x_label: str = "",
    y_label: str = "",
    y_log: bool = False,
    x_time: bool = False,
    bands: Sequence[tuple[float, float, str]] = (),
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """A chart drawn by app.js: x values, named y series (None for gaps), optional shaded x-bands
    (phases) and vertical marks (events)."""
    spec = {
        "title": title,
        "x": _finite(x),
        "series": [{"label": name, "values": _finite(values)} for name, values in series.items()],
        "xLabel": x_label,
        "yLabel": y_label,
        "yLog": y_log,
        "xTime": x_time,
        "bands": [{"from": a, "to": b, "label": label} for a, b, label in bands],
        "marks": [{"at": at, "label": label} for at, label in marks],
    }
    # "</" cannot appear inside the JSON (escaped), so the block cannot be closed early.
    data = json.dumps(spec, allow_nan=False).replace("</", "<\\/")
    return (
        f'<figure class="chart" id="{esc(chart_id)}" data-chart>'
        f'<figcaption>{esc(title)}</figcaption><script type="application/json">{data}</script></figure>'
    )


def stat(label: str, value: Any, *, bad: bool = False) -> str:
    return f'<div class="stat{" bad" if bad else ""}"><span>{esc(label)}</span><b>{esc(value)}</b></div>'
