"""Never break the host: one place that decides what an internal error does.

In production an internal error is logged to ``logging.getLogger("otel_tele")`` and swallowed. Tests
switch :func:`raise_internal_errors` on (``otel_tele.testing`` does), so bugs are not hidden.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value

_log = logging.getLogger("otel_tele")
_raise = False


def raise_internal_errors(enabled: bool) -> None:
    """Re-raise internal errors instead of logging them (for test suites)."""
    global _raise
    _raise = enabled


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Log (or, under tests, re-raise) any exception raised inside."""
    try:
        yield
    except Exception:
        if _raise:
            raise
        _log.exception("otel-tele internal error in %s (ignored)", what)


@contextlib.contextmanager
def suppress_instrumentation() -> Iterator[None]:
    """Our own I/O (HTTP to a collector, database drivers) must not produce telemetry about itself."""
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        detach(token)


class Incomplete(Exception):
    """A lifecycle step that ran out of time or had parts fail (already logged per part)."""


def run_with_deadline(fn: Callable[[], Any], timeout_s: float, what: str) -> bool:
    """Run ``fn`` on a daemon thread and wait at most ``timeout_s``; False if it did not finish or failed."""
    outcome: list[bool] = []

    def target() -> None:
        try:
            fn()
            outcome.append(True)
        except Incomplete as exc:
            _log.warning("%s %s", what, exc)
            outcome.append(False)
        except Exception:
            _log.exception("%s failed", what)
            outcome.append(False)

    thread = threading.Thread(target=target, name=f"otel-tele-{what}", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout_s))
    if thread.is_alive():
        _log.warning("%s did not finish within %.1fs; continuing without it", what, timeout_s)
        return False
    return outcome == [True]


def optional_module(name: str) -> ModuleType | None:
    """Import ``name`` if this build has it; a missing *dependency* of it still raises."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None
