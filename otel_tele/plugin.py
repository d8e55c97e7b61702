"""The plug-in interface: what a domain's registry entry (ours or a third party's) is declared with.

A domain is one :class:`Domain` descriptor registered under the entry-point group
:data:`ENTRY_POINT_GROUP` (``otel_tele.domains``). It names its parts by import strings — the
vocabulary, its sinks (:class:`SinkSpec`), the settings they read (:class:`Option`, with the
``parse_*`` value parsers), its CLI commands, HTTP router, dashboard page, demo, and what its events do
when a queue is full (:class:`OverloadPolicy`, :data:`WAIT` or :data:`DROP`). :func:`domains` lists
what is registered; :func:`load` resolves an import string.

A descriptor module imports only this module (it is read while the registry loads, so nothing that
reads the registry); a sink or CLI reads its settings through :mod:`otel_tele.settings`. See
docs/architecture.md, "Adding a domain".

Example (``mydomain/domain.py``, named in the distribution's ``pyproject.toml`` by
``[project.entry-points."otel_tele.domains"] my = "mydomain.domain:DOMAIN"``)::

    from otel_tele.plugin import DROP, Domain, Option, OverloadPolicy, SinkSpec, parse_str

    MY_DB_NAME = Option("my_db_name", "OTEL_TELE_MY_DB_NAME", parse_str, "my.db", "the sink's file")
    OPTIONS = (MY_DB_NAME,)

    DOMAIN = Domain(
        name="my",                                  # its events are named my.*
        title="My domain -> SQLite",
        vocabulary="mydomain.semconv",              # EVENTS (and METRICS)
        sinks=(SinkSpec("my", "mydomain.exporter:MySink", extra="my", default=False),),
        options="mydomain.domain:OPTIONS",
        cli="mydomain.cli",                         # register(subparsers)
        overload=(OverloadPolicy("my", DROP, "a request path never blocks on telemetry"),),
    )
"""

from __future__ import annotations

from ._options import (
    Option,
    parse_bool,
    parse_names,
    parse_path,
    parse_port,
    parse_positive_float,
    parse_positive_int,
    parse_str,
)
from ._registry import DROP, ENTRY_POINT_GROUP, WAIT, Domain, OverloadPolicy, SinkSpec, domains, load

__all__ = [
    "DROP",
    "ENTRY_POINT_GROUP",
    "WAIT",
    "Domain",
    "Option",
    "OverloadPolicy",
    "SinkSpec",
    "domains",
    "load",
    "parse_bool",
    "parse_names",
    "parse_path",
    "parse_port",
    "parse_positive_float",
    "parse_positive_int",
    "parse_str",
]
