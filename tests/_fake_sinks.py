"""Misbehaving sinks for the contract suite: raising, hanging, slow, flaky — and one that records."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from otel_tele import Sink
from otel_tele._settings import Settings


class TransientFault(Exception):
    """Stands for 'database is restarting'."""


class RecordingSink(Sink):
    """Keeps what it is given and notices any concurrent write."""

    name = "recording"
    signals: ClassVar[frozenset[str]] = frozenset({"logs", "traces"})
    transient_errors = (TransientFault,)

    def __init__(self, *, delay_s: float = 0.0) -> None:
        super().__init__()
        self.records: list[Any] = []
        self.delay_s = delay_s
        self.active = 0
        self.max_active = 0
        self._count_lock = threading.Lock()
        self.closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordingSink:
        return cls()

    def _enter(self) -> None:
        with self._count_lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def _leave(self) -> None:
        with self._count_lock:
            self.active -= 1

    def _write(self, batch: Sequence[Any]) -> int | None:
        self._enter()
        try:
            if self.delay_s:
                time.sleep(self.delay_s)  # a slow disk, not a test wait
            self.records.extend(batch)
            return 0
        finally:
            self._leave()

    def write_logs(self, records: Sequence[Any]) -> int | None:
        return self._write(records)

    def write_spans(self, spans: Sequence[Any]) -> int | None:
        return self._write(spans)

    def close(self) -> None:
        self.closed = True


class RaisingSink(RecordingSink):
    """Every write fails with a non-transient error."""

    name = "raising"

    def _write(self, batch: Sequence[Any]) -> int | None:
        raise RuntimeError("disk on fire")


class FlakySink(RecordingSink):
    """The first ``failures`` writes fail transiently, then writes succeed."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0

    def _write(self, batch: Sequence[Any]) -> int | None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise TransientFault("restarting")
        return super()._write(batch)


class HangingSink(RecordingSink):
    """Writes block until ``release`` is set (a dead NFS mount, a stuck lock)."""

    name = "hanging"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def _write(self, batch: Sequence[Any]) -> int | None:
        self.entered.set()
        self.release.wait()
        return super()._write(batch)


class RejectingSink(RecordingSink):
    """Keeps every other record and reports the rest as unusable."""

    name = "rejecting"

    def _write(self, batch: Sequence[Any]) -> int | None:
        super()._write(batch[::2])
        return len(batch) // 2
