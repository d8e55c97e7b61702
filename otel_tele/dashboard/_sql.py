"""The SQL console: one read-only DuckDB query over every store (:mod:`otel_tele.sql`), in the browser.

A plain form (``GET /ui/sql?q=…``, so a query is a permalink like every other page and needs no
script), the first :data:`MAX_ROWS` rows as a table with a note when more were left out, and the
whole result as CSV or Parquet from ``/ui/sql/download``. Always read-only: the UI has no way to pass
``allow_writes``. Being reads only, it sits behind the same Host allow-list and token as every
other page.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from .. import sql
from ._page import Page, PageError, esc, table

#: Rows shown on the page (the downloads carry the whole result).
MAX_ROWS = 1_000
#: A query still running after this long is stopped (the page and the downloads alike).
TIMEOUT_S = 60.0
#: Longest query text taken (a URL carries it).
MAX_QUERY_CHARS = 20_000
EXAMPLE = (
    "SELECT name, count(*) AS spans, avg(duration_ns) / 1e6 AS mean_ms\n"
    "FROM spans GROUP BY name ORDER BY spans DESC"
)
DOWNLOADS = {
    "csv": ("text/csv; charset=utf-8", sql.to_csv),
    "parquet": ("application/vnd.apache.parquet", sql.to_parquet),
}


def query_text(params: Any) -> str:
    text = str(params.get("q", "") or "")
    if len(text) > MAX_QUERY_CHARS:
        raise PageError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    return text


def _form(text: str) -> str:
    return (
        '<form method="get" action="/ui/sql" class="sql">'
        '<textarea name="q" rows="6" spellcheck="false" aria-label="SQL query" required>'
        f"{esc(text or EXAMPLE)}</textarea>"
        '<div><button type="submit">Run</button> '
        '<span class="note">read-only: one SELECT over the views listed below</span></div></form>'
    )


def _catalog(views: tuple[sql.ViewInfo, ...]) -> str:
    rows = [(v.name, v.domain, ", ".join(c for c, _ in v.columns), v.reader) for v in views]
    listed = table(("view", "domain", "columns", "read by"), rows)
    return f"<details><summary>Views ({len(views)})</summary>{listed}</details>"


def _cell(value: Any) -> Any:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else value


def sql_page(settings: Any) -> Page:
    """The SQL page over the stores ``settings`` points at."""

    def render(params: Any) -> str:
        text = query_text(params)
        with sql.open_catalog(settings=settings) as catalog:
            parts = [_form(text)]
            if text.strip():
                try:
                    result = catalog.query_limited(text, MAX_ROWS, timeout_s=TIMEOUT_S)
                except sql.SqlError as exc:
                    parts.append(f'<p class="error" data-sql-error>{esc(exc)}</p>')
                else:
                    rows = sql.to_rows(result.table)
                    columns = result.table.column_names
                    link = urlencode({"q": text})
                    shown = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
                    note = (
                        f' <b class="bad" data-truncated>truncated: the first {MAX_ROWS} rows are shown; '
                        "the downloads hold them all</b>"
                        if result.truncated
                        else ""
                    )
                    parts.append(
                        f'<p data-sql-rows="{len(rows)}">{shown}{note} · '
                        f'<a href="/ui/sql/download?format=csv&amp;{esc(link)}" download>CSV</a> · '
                        f'<a href="/ui/sql/download?format=parquet&amp;{esc(link)}" download>Parquet</a></p>'
                    )
                    parts.append(
                        table(columns, [[_cell(row[c]) for c in columns] for row in rows], cls="sql-result")
                    )
            parts.append(_catalog(catalog.views()))
        return "".join(parts)

    return Page("sql", "SQL", render, order=50)


def download(settings: Any, params: Any) -> tuple[bytes, str, str]:
    """(body, media type, file name) of the whole result in ``params['format']`` (csv, parquet).
    Raises :class:`PageError` for a bad format and :class:`otel_tele.sql.SqlError` for a bad query."""
    fmt = str(params.get("format", ""))
    if fmt not in DOWNLOADS:
        raise PageError(f"format must be one of {', '.join(DOWNLOADS)}")
    text = query_text(params)
    if not text.strip():
        raise PageError("a query is required (q=)")
    media_type, encode = DOWNLOADS[fmt]
    with sql.open_catalog(settings=settings) as catalog:
        result = catalog.query_limited(text, None, timeout_s=TIMEOUT_S).table
    return encode(result), media_type, f"query.{fmt}"
