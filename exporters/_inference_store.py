"""What an inference store does, and the SQL both backends share.

:class:`InferenceStore` is implemented by the PostgreSQL store (``_inference_pg``) and the embedded
SQLite store (``_inference_sqlite``); the query API (:mod:`otel_tele.inference_stats`) reads through
it and nothing else. Queries are written once here as templates: ``{t}`` stands for a table identifier
(composed with ``psycopg.sql.Identifier`` for PostgreSQL), ``{p:name}`` for a bound parameter (``%(name)s``
or ``:name``). Every value a caller supplies is a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from ._inference_rows import Batch
from ._inference_schema import KEY_COLUMNS, MEASURES, Rollup

ParamStyle = Literal["pyformat", "named"]


@dataclass(frozen=True)
class PruneResult:
    deleted_rows: int
    deleted_rollup_rows: int
    batches: int
    complete: bool  # False: stopped at max_batches or by a lock timeout; the rest goes next time
    lock_timeouts: int = 0


class InferenceStore(Protocol):
    """The storage primitives behind the sink (writes) and the query API (reads)."""

    dialect: str
    location: str  # printable, password redacted

    def write(self, batch: Batch, batch_id: str) -> None:
        """Rows and rollup increments in one transaction; a batch id already written is skipped."""

    def rollup(
        self,
        rollup: Rollup,
        *,
        since: int,
        until: int | None = None,
        event_types: Sequence[str] | None = None,
        component: str | None = None,
        step: int | None = None,
        by_component: bool = True,
    ) -> list[tuple[Any, ...]]:
        """Rows ``(bucket or None, event_type, component, *MEASURES)`` merged per (``step`` bucket,
        event type, component); ``step=None`` merges the whole window; ``by_component=False`` merges
        all components (component ``""``)."""

    def tables(self) -> list[dict[str, Any]]:
        """Per owned table: ``table``, ``size_bytes``, ``table_bytes``, ``index_bytes``, ``rows_estimate``."""

    def time_span(self) -> tuple[float | None, float | None]:
        """Oldest and newest raw row timestamp (epoch seconds)."""

    def row_count(self) -> int:
        """Exact raw row count (summed from the hourly rollup)."""

    def prune(
        self, cutoff: int, *, batch_rows: int, lock_timeout_ms: int, max_batches: int | None
    ) -> PruneResult:
        """Delete raw rows and rollup buckets older than ``cutoff`` (epoch s, hour aligned)."""

    def schema_version(self) -> int:
        """0 when the store has no tables yet."""

    def reachable(self) -> bool: ...

    def close(self) -> None: ...


def rollup_query(
    style: ParamStyle,
    *,
    has_until: bool,
    n_types: int,
    has_component: bool,
    step: int | None,
    by_component: bool = True,
) -> tuple[str, list[str]]:
    """The rollup SELECT template and the names of its parameters, in order (integer sums cast back
    to bigint: PostgreSQL's SUM(bigint) is numeric, slow to convert in Python)."""
    aggregate = {"sum": "SUM", "min": "MIN", "max": "MAX"}
    bucket = "(bucket / {p:step}) * {p:step}" if step else "NULL"
    where = ["bucket >= {p:since}"]
    if has_until:
        where.append("bucket < {p:until}")
    if n_types:
        where.append("event_type IN (" + ", ".join(f"{{p:type{i}}}" for i in range(n_types)) + ")")
    if has_component:
        where.append("component = {p:component}")
    cast = "::bigint" if style == "pyformat" else ""
    select = ", ".join(
        f"{aggregate[m.merge]}({m.name}){cast if m.integer and m.merge == 'sum' else ''}" for m in MEASURES
    )
    component = "component" if by_component else "''"
    template = (
        f"SELECT {bucket} AS b, event_type, {component} AS c, {select} FROM {{t}} WHERE "
        + " AND ".join(where)
        + " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    return bind(template, style)


def upsert_template(style: ParamStyle, *, least: str, greatest: str) -> str:
    """INSERT … ON CONFLICT merging each measure by its rule (sum, min, max)."""
    columns = (*KEY_COLUMNS, *(m.name for m in MEASURES))
    sets = []
    for m in MEASURES:
        if m.merge == "sum":
            sets.append(f"{m.name} = r.{m.name} + excluded.{m.name}")
        else:
            fn = least if m.merge == "min" else greatest
            sets.append(f"{m.name} = {fn}(r.{m.name}, excluded.{m.name})")
    marker = "%s" if style == "pyformat" else "?"
    return (
        f"INSERT INTO {{t}} AS r ({', '.join(columns)}) VALUES ({', '.join(marker for _ in columns)}) "
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {', '.join(sets)}"
    )


_PARAM = re.compile(r"\{p:(\w+)\}")


def bind(template: str, style: ParamStyle) -> tuple[str, list[str]]:
    """Replace ``{p:name}`` markers by the driver's named placeholders."""
    names: list[str] = []

    def repl(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"%({match.group(1)})s" if style == "pyformat" else f":{match.group(1)}"

    return _PARAM.sub(repl, template), names


def open_store(dsn: str | None, data_dir: Path, **options: Any) -> InferenceStore:
    """PostgreSQL when ``dsn`` is given, else the embedded SQLite database ``<data_dir>/inference.db``."""
    if dsn:
        from ._inference_pg import PgStore

        return PgStore(dsn, **options)
    from ._inference_sqlite import SqliteStore

    return SqliteStore(Path(data_dir) / "inference.db", **options)


def rollup_statement(
    style: ParamStyle,
    *,
    since: int,
    until: int | None,
    event_types: Sequence[str] | None,
    component: str | None,
    step: int | None,
    by_component: bool,
) -> tuple[str, dict[str, Any]]:
    """:func:`rollup_query` with its parameters bound by name: what both stores' ``rollup`` run."""
    types = list(event_types or ())
    template, names = rollup_query(
        style,
        has_until=until is not None,
        n_types=len(types),
        has_component=component is not None,
        step=step,
        by_component=by_component,
    )
    values: dict[str, Any] = {"since": since, "until": until, "component": component, "step": step}
    values.update({f"type{i}": t for i, t in enumerate(types)})
    return template, {name: values[name] for name in names}
