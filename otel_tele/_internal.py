"""Never break the host: one place that decides what an internal error does.

In production an internal error is logged to ``logging.getLogger("otel_tele")`` and swallowed. Tests
switch :func:`raise_internal_errors` on (``otel_tele.testing`` does), so bugs are not hidden.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import importlib
import logging
import os
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from itertools import repeat
from types import ModuleType
from typing import Any, TypeVar

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value

from .semconv._types import encodable as encodable  # text rules live with the vocabulary's types

_log = logging.getLogger("otel_tele")
_raise = False
#: A secret of this process (kept by a forked child: same machine, same user). Records that name a
#: local file carry it, and a sink acts on such a name only when the token is its own process's.
PROCESS_TOKEN = secrets.token_hex(16)


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
        at_fork_in_child(self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # a thread of the parent may have held it at the fork

    def warning(self, key: str, message: str, *args: object) -> None:
        self.log(logging.WARNING, key, message, *args)

    def log(self, level: int, key: str, message: str, *args: object, exc_info: Any = None) -> None:
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
        _log.log(level, message, *args, exc_info=exc_info)


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


_popleft = collections.deque.popleft
T = TypeVar("T")


def take_left(queue: collections.deque[T], most: int) -> list[T]:
    """Up to ``most`` items popped from the left of ``queue``, in order, in a C loop (a Python one
    costs ~50 ns an item). Each pop is atomic: safe beside producers appending without a lock.

    Example::

        batch = take_left(queue, 4096)
    """
    return list(map(_popleft, repeat(queue, min(most, len(queue)))))


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


def at_fork_in_child(method: Callable[[], object]) -> None:
    """Call the bound ``method`` in every process forked from this one, before the child runs any
    other code, for as long as its object lives (it is held weakly).

    Only the forking thread survives a fork: a lock another thread held is held forever in the child,
    a connection is shared with the parent. The hook re-creates such state; it must never block.
    """
    weak = weakref.WeakMethod(method)

    def after_in_child() -> None:
        bound = weak()
        if bound is not None:
            with guard(f"re-initialisation after fork ({bound.__qualname__})"):
                bound()

    os.register_at_fork(after_in_child=after_in_child)


LockT = TypeVar("LockT", threading.Lock, threading.RLock)


def fork_safe(lock: LockT) -> LockT:
    """``lock``, free again in every forked child: the thread that held it at the fork does not
    exist there, and nothing would ever release it. For locks whose state needs no other repair."""
    ref = weakref.ref(lock)

    def after_in_child() -> None:
        held = ref()
        if held is not None:
            held._at_fork_reinit()  # type: ignore[attr-defined]  # what CPython's own modules call

    os.register_at_fork(after_in_child=after_in_child)
    return lock


def quiesce_for_fork(owner: object, attribute: str, timeout_s: float = 1.0) -> None:
    """Let the process fork only between two uses of ``owner.<attribute>`` — a lock held exactly
    while an SQLite transaction is open, or a sink's write (pyarrow) is under way — waiting for the
    one in progress at most ``timeout_s``.

    Why, for SQLite: it keeps each process's file locks in memory, shared by its connections, and a child
    inherits that memory. A transaction open at the fork stays open there forever (the connection is
    abandoned, never closed), and every connection the child opens is locked out. The child gets a
    new, free lock.
    """
    ref = weakref.ref(owner)
    held: list[Any] = []

    def before() -> None:
        obj = ref()
        if obj is None:
            return
        lock = getattr(obj, attribute)
        if lock.acquire(timeout=timeout_s):
            held.append(lock)
        else:
            _log.warning(
                "fork while %s was mid-transaction for %.1fs; the child may not write", obj, timeout_s
            )

    def after_in_parent() -> None:
        while held:
            held.pop().release()

    def after_in_child() -> None:
        held.clear()
        obj = ref()
        if obj is not None:
            setattr(obj, attribute, threading.Lock())

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)


class ForkGate:
    """A section many threads may be inside at once, and the process forks only while none is:
    ``with gate:`` around every call into a C library whose global state a fork must not split.

    Why, for SQLite: besides its file locks, it keeps process-wide mutexes (the VFS's, a file's lock
    state, the allocator's) that any call — ``connect`` and ``close`` above all — holds for a moment
    with the GIL released. A fork in that moment hands the child the mutex held by a thread that does
    not exist there, and the child's first ``connect`` hangs. Before a fork the gate closes: new
    entries wait, and the fork waits at most ``timeout_s`` for the threads inside to leave; it opens
    again in the parent and is new and empty in the child.

    Re-entrant per thread (a thread inside may enter again even while a fork waits), so it never
    deadlocks against itself. A thread inside must not wait for anything a fork hook holds; the
    rule that keeps that true: take the gate before any lock of the same object.

    Example::

        gate = ForkGate(timeout_s=6.0)
        with gate:
            conn = sqlite3.connect(path)
    """

    def __init__(self, timeout_s: float = 1.0, what: str = "") -> None:
        self.timeout_s = timeout_s
        self.what = what
        self._reset()
        weak = weakref.ref(self)

        def call(method: Callable[[ForkGate], None]) -> Callable[[], None]:
            def hook() -> None:
                gate = weak()
                if gate is not None:
                    method(gate)

            return hook

        os.register_at_fork(
            before=call(ForkGate._before_fork),
            after_in_parent=call(ForkGate._open),
            after_in_child=call(ForkGate._reset),
        )

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside: dict[int, int] = {}  # thread id → depth
        self._forking = False

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if me not in self._inside:
                while self._forking:
                    self._cond.wait()
            self._inside[me] = self._inside.get(me, 0) + 1

    def __exit__(self, *exc: object) -> None:
        me = threading.get_ident()
        with self._cond:
            depth = self._inside.pop(me) - 1
            if depth:
                self._inside[me] = depth
            else:
                self._cond.notify_all()

    def _before_fork(self) -> None:
        me = threading.get_ident()
        with self._cond:
            self._forking = True

            def only_me() -> bool:  # the forking thread itself may be inside
                return not (self._inside.keys() - {me})

            if not self._cond.wait_for(only_me, self.timeout_s):
                _log.warning(
                    "fork while %s was busy for %.1fs; the child may hang in it", self.what, self.timeout_s
                )

    def _open(self) -> None:
        with self._cond:
            self._forking = False
            self._cond.notify_all()


#: What a forked child inherited and must neither use nor close (see :func:`abandon_inherited`).
_inherited: list[object] = []


def abandon_inherited(resource: object) -> None:
    """In a forked child: keep a connection, pool or open file of the parent alive and untouched.

    Closing it here — or letting the garbage collector finalise it — would act on the parent's live
    resource: libpq sends *Terminate* on the shared socket, SQLite releases locks and may checkpoint
    the parent's WAL, a Parquet writer appends its footer to the parent's file. The extra reference is
    never released, so not even interpreter shutdown finalises it.
    """
    if resource is None:
        return
    _inherited.append(resource)
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(resource))


class RebuiltAfterFork:
    """A stand-in for the object ``factory`` builds, rebuilt in every forked child: for a client that
    owns a connection (an OTLP exporter's HTTP session or gRPC channel), which a child sending on
    would interleave with the parent's requests. Attributes are the current object's."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self.target = factory()
        at_fork_in_child(self._rebuild)

    def _rebuild(self) -> None:
        abandon_inherited(self.target)
        self.target = self._factory()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


#: The one limiter for bad records and bad calls (a key per API or stage).
bad_input_log = RateLimitedLog()
#: Telemetry threads that died: a cause that kills every new thread too must not flood the log.
thread_death_log = RateLimitedLog()
