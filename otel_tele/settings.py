"""Reading otel-tele's configuration, for a plug-in's sink or CLI: the one option table resolved.

:func:`resolve` reads every option — the core's and each registered domain's (``Domain.options``) —
from explicit arguments, then the environment, then its default; a :class:`Settings` holds the result
and reads one option typed (``settings.get(MY_OPTION)``). ``setup()`` builds a sink from the same
``Settings``; a CLI resolves them itself so it reads what the sink writes. Options are declared with
:class:`otel_tele.plugin.Option`.

Example::

    from otel_tele.plugin import Option, parse_str
    from otel_tele.settings import resolve

    MY_DB_NAME = Option("my_db_name", "OTEL_TELE_MY_DB_NAME", parse_str, "my.db", "the sink's file")
    settings = resolve({})                      # OTEL_TELE_* from the environment, else defaults
    db = settings.data_dir / settings.get(MY_DB_NAME)   # a registered domain's option, typed
"""

from __future__ import annotations

from ._settings import Settings, resolve

__all__ = ["Settings", "resolve"]
