"""Per-sink record accounting: emitted == exported + dropped + failed + queued + pending + not_routed.

- *exported*: durable: committed, or in a file that recovery publishes after a crash;
- *dropped*: refused before export (queue full, after shutdown, lost at a shutdown deadline);
- *failed*: handed to the sink but not persisted (non-transient error, retries exhausted, bad record,
  a publication that failed);
- *queued*: accepted and not yet finished (includes a batch in flight);
- *pending*: taken by the sink and held in memory, not yet durable (a capsule run's rows between two
  flushes of its journal): the sink settles them as exported or failed later;
- *not_routed*: handed to the sink, which stores no record of that kind (a span no table selects, an
  event name no table claims): not stored there, by design.

At a shutdown deadline nothing stays *queued*: what was not exported by then is booked *dropped*,
including a batch still in flight on a hung exporter. If that late write still lands afterwards, the
batch is re-booked from *dropped* to *exported* (or *failed*, *pending*, *not_routed*) — the equation
holds at every moment.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import NamedTuple


class Booking(NamedTuple):
    """What became of one exported batch: the buckets its records move to from *queued*."""

    exported: int
    failed: int
    pending: int = 0
    not_routed: int = 0


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
    pending: int = 0
    not_routed: int = 0
    #: The last error that cost records (scrubbed: no secret, no path) and when (epoch seconds).
    last_error: str | None = None
    last_error_at: float | None = None

    @property
    def reconciles(self) -> bool:
        return self.emitted == (
            self.exported + self.dropped + self.failed + self.queued + self.pending + self.not_routed
        )


class SinkStats:
    """Thread-safe counters; every transition moves records between buckets under one lock."""

    def __init__(self, sink: str, signal: str) -> None:
        self.sink = sink
        self.signal = signal
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.emitted = self.exported = self.dropped = self.failed = self.queued = 0
        self.pending = self.not_routed = 0
        #: Exports that stored nothing of their batch (error, timeout, retries exhausted): what makes
        #: ``force_flush()`` report False. Not a record count.
        self.failed_exports = 0
        self.last_error: tuple[float, str] | None = None

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

    def rejected(self, count: int = 1) -> None:
        """Records refused as unusable before they could be queued (a bad call): failed, not dropped."""
        with self._lock:
            self.emitted += count
            self.failed += count

    def finished(
        self, *, exported: int = 0, failed: int = 0, dropped: int = 0, pending: int = 0, not_routed: int = 0
    ) -> None:
        with self._lock:
            self.queued -= exported + failed + dropped + pending + not_routed
            self.exported += exported
            self.failed += failed
            self.dropped += dropped
            self.pending += pending
            self.not_routed += not_routed

    def rebook_dropped(
        self, *, exported: int = 0, failed: int = 0, pending: int = 0, not_routed: int = 0
    ) -> None:
        """A batch booked dropped at a deadline finished after all: move it to where it ended."""
        with self._lock:
            self.dropped -= exported + failed + pending + not_routed
            self.exported += exported
            self.failed += failed
            self.pending += pending
            self.not_routed += not_routed

    def export_failed(self, error: BaseException | str | None = None) -> None:
        """An export stored nothing of its batch; ``error`` (if given) becomes the last error."""
        with self._lock:
            self.failed_exports += 1
        if error is not None:
            self.note_error(error)

    def note_error(self, error: BaseException | str) -> None:
        """Keep ``error`` (an exception or our own words) as the last error, scrubbed, with the time."""
        from ._scrub import error_summary  # the scrubber's rules load with it; books stay light

        text = error_summary(error)
        with self._lock:
            self.last_error = (time.time(), text)

    def passed_through(
        self, *, exported: int = 0, failed: int = 0, pending: int = 0, not_routed: int = 0
    ) -> None:
        """Records exported without our queue (e.g. under the SDK's own batch processor)."""
        with self._lock:
            self.emitted += exported + failed + pending + not_routed
            self.exported += exported
            self.failed += failed
            self.pending += pending
            self.not_routed += not_routed

    def settled(self, *, exported: int = 0, failed: int = 0) -> None:
        """Pending records became durable (``exported``) or were lost (``failed``)."""
        with self._lock:
            self.pending -= exported + failed
            self.exported += exported
            self.failed += failed

    def revoked(self, count: int) -> None:
        """Records booked exported turned out not to be published (a failed publication)."""
        with self._lock:
            self.exported -= count
            self.failed += count

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            at, error = self.last_error if self.last_error is not None else (None, None)
            return StatsSnapshot(
                self.sink,
                self.signal,
                self.emitted,
                self.exported,
                self.dropped,
                self.failed,
                self.queued,
                self.pending,
                self.not_routed,
                error,
                at,
            )
