"""The event path's hot loops: the C versions from ``otel_tele._speedups`` when that module was
built (it is, wherever a C compiler was at install time), else their pure-Python twins here, which
give the same results.

``OTEL_TELE_SPEEDUPS=0`` in the environment (read at import) makes the package use the pure-Python
twins even where the C module exists: the way to tell whether a difference is the C module's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import repeat
from types import ModuleType
from typing import Any

from ._internal import optional_module

__all__ = ["SPEEDUPS_ENV", "gather", "gather_py", "speedups", "untrack_plain"]

SPEEDUPS_ENV = "OTEL_TELE_SPEEDUPS"


def _load() -> ModuleType | None:
    if os.environ.get(SPEEDUPS_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:  # None where it was built without a compiler: the twins below
        return optional_module(f"{__package__}._speedups")
    except ImportError:  # built, but not loadable here (another Python's build): the twins too
        return None


#: The C module, or ``None`` where it was not built (or is switched off).
speedups: ModuleType | None = _load()


class _Absent:
    """A key a row lacks (``None`` may be a value the caller passed)."""


_ABSENT = _Absent()
_NONE = type(None)


#: What :func:`gather` returns: columns, kinds, nones, absents, total.
Gathered = tuple[list[list[Any]], list[Any], list[int], list[int], int]


def gather_py(rows: list[dict[Any, Any]], keys: tuple[str, ...]) -> Gathered:
    """``rows``' values under each of ``keys`` as columns, in one call: ``(columns, kinds, nones,
    absents, total)``. ``columns[i]``: the values under ``keys[i]`` (``None`` where a row lacks
    it); ``kinds[i]``: the one type of its values other than ``None``, ``None`` when there is none,
    ``False`` when they are of several types; ``nones[i]`` / ``absents[i]``: how many values are
    ``None`` / missing; ``total``: how many keys the rows hold together. Raises ``TypeError`` for a
    row that is not a dict.

    Example::

        gather([{"a": 1}, {"a": None, "b": "x"}], ("a", "b"))
        # ([[1, None], [None, "x"]], [int, str], [1, 0], [0, 1], 3)
    """
    if not set(map(type, rows)) <= {dict}:
        raise TypeError("gather: rows must be dicts")
    columns: list[list[Any]] = []
    kinds: list[Any] = []
    nones: list[int] = []
    absents: list[int] = []
    for key in keys:
        column: list[Any] = list(map(dict.get, rows, repeat(key), repeat(_ABSENT)))
        types = set(map(type, column))
        absent = none = 0
        if _Absent in types:
            types.discard(_Absent)
            absent = sum(1 for value in column if value is _ABSENT)
            column = [None if value is _ABSENT else value for value in column]
        if _NONE in types:
            types.discard(_NONE)
            none = sum(1 for value in column if value is None) - absent
        columns.append(column)
        kinds.append(False if len(types) > 1 else types.pop() if types else None)
        nones.append(none)
        absents.append(absent)
    return columns, kinds, nones, absents, sum(map(len, rows))


gather = speedups.gather if speedups is not None else gather_py

#: ``untrack_plain(d)``: stop the garbage collector tracking a dict none of whose keys and values is
#: tracked (see ``_speedups.c``); ``None`` without the C module (Python cannot untrack).
untrack_plain: Callable[[dict[Any, Any]], bool] | None = (
    speedups.untrack_plain if speedups is not None else None
)
