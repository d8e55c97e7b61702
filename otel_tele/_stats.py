"""Per-sink record accounting: emitted == exported + dropped + failed + queued, always.

- *dropped*: refused before export (queue full, after shutdown, lost at a shutdown deadline);
- *failed*: handed to the sink but not persisted (non-transient error, retries exhausted, bad record);
- *queued*: accepted and not yet finished (includes a batch in flight).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class StatsSnapshot:
    """Counts of one sink and signal at one moment (taken under the lock, so they reconcile)."""

    sink: str
    signal: str
    emitted: int
    exported: int
    dropped: int
    failed: int
    queued: int

    @property
    def reconciles(self) -> bool:
        return self.emitted == self.exported + self.dropped + self.failed + self.queued


class SinkStats:
    """Thread-safe counters; every transition moves records between buckets under one lock."""

    def __init__(self, sink: str, signal: str) -> None:
        self.sink = sink
        self.signal = signal
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.emitted = self.exported = self.dropped = self.failed = self.queued = 0

    def reset_after_fork(self) -> None:
        """A forked child starts its own accounting; the parent's records are the parent's."""
        self._lock = threading.Lock()
        self._reset()

    def accepted(self, count: int = 1) -> None:
        with self._lock:
            self.emitted += count
            self.queued += count

    def refused(self, count: int = 1) -> None:
        with self._lock:
            self.emitted += count
            self.dropped += count

    def finished(self, *, exported: int = 0, failed: int = 0, dropped: int = 0) -> None:
        with self._lock:
            self.queued -= exported + failed + dropped
            self.exported += exported
            self.failed += failed
            self.dropped += dropped

    def passed_through(self, *, exported: int = 0, failed: int = 0) -> None:
        """Records exported without our queue (e.g. under the SDK's own batch processor)."""
        with self._lock:
            self.emitted += exported + failed
            self.exported += exported
            self.failed += failed

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                self.sink, self.signal, self.emitted, self.exported, self.dropped, self.failed, self.queued
            )
