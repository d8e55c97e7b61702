"""The read queries, written once as templates for both dialects, and how identifiers and parameters are
bound into them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._measures import MEASURES

if TYPE_CHECKING:
    from psycopg import sql

#: Queries are written once as templates: ``{t}`` stands for a table identifier (composed with
#: ``psycopg.sql.Identifier`` for PostgreSQL), ``{p:name}`` for a bound parameter (``%(name)s`` or
#: ``:name``). Every value a caller supplies is a bound parameter.
ParamStyle = Literal["pyformat", "named"]


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


_PARAM = re.compile(r"\{p:(\w+)\}")


def bind(template: str, style: ParamStyle) -> tuple[str, list[str]]:
    """Replace ``{p:name}`` markers by the driver's named placeholders."""
    names: list[str] = []

    def repl(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"%({match.group(1)})s" if style == "pyformat" else f":{match.group(1)}"

    return _PARAM.sub(repl, template), names


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
    """:func:`rollup_query` with its parameters bound by name: what both readers' ``rollup`` run."""
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


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_sql(template: str, **names: str) -> str:
    """A template with its ``{placeholders}`` replaced by quoted SQLite identifiers."""
    return template.format(**{key: _q(value) for key, value in names.items()})


def pg_sql(template: str, **names: str) -> sql.Composed:
    """A template with its ``{placeholders}`` composed as PostgreSQL identifiers (never spliced)."""
    from psycopg import sql

    return sql.SQL(template).format(**{key: sql.Identifier(value) for key, value in names.items()})
