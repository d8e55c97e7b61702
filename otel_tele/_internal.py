"""Never break the host: one place that decides what an internal error does.

In production an internal error is logged to ``logging.getLogger("otel_tele")`` and swallowed. Tests
switch :func:`raise_internal_errors` on (``otel_tele.testing`` does), so bugs are not hidden.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
import time
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


def encodable(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate, which no store or wire format takes, is kept visible
    as its ``\\udXXX`` escape (the rest unchanged); already valid text is returned as it is."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def safe_str(value: object, limit: int = 200) -> str:
    """``str(value)`` cut to ``limit`` characters, or ``<unprintable T>`` when its ``__str__`` fails:
    for messages about values the host handed us, which must not fail on those values."""
    try:
        text = value if type(value) is str else str(value)
        return text[:limit] if len(text) <= limit else f"{text[:limit]}…"
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def safe_repr(value: object, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters, or ``<unprintable T>`` when its ``__repr__`` fails."""
    try:
        return safe_str(repr(value), limit)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def describe_error(exc: BaseException) -> str:
    """An error's type only: a bad record is logged without echoing its value (it may be huge,
    hostile, or private), so the message of an exception about it is left out too."""
    return type(exc).__name__


class RateLimitedLog:
    """Warn about bad input at most once per key per ``interval_s``, saying how many were suppressed.

    Keys are chosen by us (an API name, a reason), never taken from the record; the table is bounded
    anyway, so a caller cycling through keys cannot grow it.
    """

    def __init__(self, interval_s: float = 60.0, max_keys: int = 1_000) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._next: dict[str, tuple[float, int]] = {}  # key → (next allowed time, suppressed since)

    def warning(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            due, suppressed = self._next.get(key, (0.0, 0))
            if now < due:
                self._next[key] = (due, suppressed + 1)
                return
            if len(self._next) >= self.max_keys and key not in self._next:
                self._next.clear()
            self._next[key] = (now + self.interval_s, 0)
        if suppressed:
            message += " (%d more like it since the last report)"
            args = (*args, suppressed)
        _log.warning(message, *args)


#: The one limiter for bad records and bad calls (a key per API or stage).
bad_input_log = RateLimitedLog()


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


def run_with_deadline(fn: Callable[[], Any], timeout_s: float, what: str, *, quiet: bool = False) -> bool:
    """Run ``fn`` on a daemon thread and wait at most ``timeout_s``; False if it did not finish or failed.

    ``quiet``: the caller reports an incomplete run itself (one summary line), so only log it at DEBUG.
    """
    outcome: list[bool] = []
    level = logging.DEBUG if quiet else logging.WARNING

    def target() -> None:
        try:
            fn()
            outcome.append(True)
        except Incomplete as exc:
            _log.log(level, "%s %s", what, exc)
            outcome.append(False)
        except Exception:
            _log.exception("%s failed", what)
            outcome.append(False)

    thread = threading.Thread(target=target, name=f"otel-tele-{what}", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout_s))
    if thread.is_alive():
        _log.log(level, "%s did not finish within %.1fs; continuing without it", what, timeout_s)
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


def notice(message: str) -> None:
    """An INFO line the user should see even when their program never configured logging.

    With logging configured, it goes to the ``otel_tele`` logger at INFO (and obeys its level);
    without any handler, Python would drop an INFO record, so it is written to stderr instead.
    """
    if _log.hasHandlers():
        _log.info(message)
    else:
        print(f"INFO {message}", file=sys.stderr, flush=True)
