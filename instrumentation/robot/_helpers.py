"""Integration helpers of spec 004: a sampling smoother hook and a periodic camera health reporter."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from otel_tele._internal import bad_input_log, describe_error, guard

from ._default import get_collector

_log = logging.getLogger("otel_tele")

States = Iterable[Mapping[str, Any]]


class SmootherSampler:
    """Log the smoother state every ``every_n``-th tick (default 5: 2 Hz at a 100 ms tick).

    ``states`` may be the list itself or a callable producing it, so building the list costs
    nothing on the ticks that are not sampled. Only dirty joints are logged, as the spec says.

    Example::

        sampler = SmootherSampler(get_collector())
        def _tick(self):
            ...  # interpolate
            sampler.tick(lambda: [{"joint_id": j, "target": t, "current": c, "sent": s,
                                   "step_size": step, "dirty": d} for j, (t, c, s, step, d) in ...])
    """

    def __init__(self, collector: Any = None, every_n: int = 5) -> None:
        if not isinstance(every_n, int) or every_n <= 0:
            raise ValueError(f"every_n must be a positive integer, got {every_n!r}")
        self._collector = collector
        self.every_n = every_n
        self.ticks = 0

    def tick(self, states: States | Callable[[], States]) -> bool:
        """Count one smoother tick; on every ``every_n``-th, log the dirty joints. True if logged."""
        self.ticks += 1
        if self.ticks % self.every_n:
            return False
        with guard("SmootherSampler.tick"):
            current = states() if callable(states) else states
            dirty = [s for s in current or () if not isinstance(s, Mapping) or s.get("dirty", True)]
            if dirty:
                self.collector.log_smoother_tick(dirty)
            return True
        return False

    @property
    def collector(self) -> Any:
        if self._collector is None:
            self._collector = get_collector()
        return self._collector


class CameraHealthReporter:
    """Snapshot each camera's health every ``interval_s`` (default 5 s) into ``camera_health``.

    ``cameras`` maps camera id → a ``CameraHealthMonitor`` (anything with a ``stats`` mapping), or a
    stats mapping, or a callable returning such a dict. Run it as a thread (``start()``/``stop()``)
    or call ``poll()`` from a capture loop: it reports only when the interval has passed.

    Example::

        reporter = CameraHealthReporter({"cam0": monitor0, "cam1": monitor1}).start()
        ...
        reporter.stop()
    """

    def __init__(
        self,
        cameras: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        collector: Any = None,
        interval_s: float = 5.0,
    ) -> None:
        if not isinstance(interval_s, int | float) or not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self._cameras = cameras
        self._collector = collector
        self.interval_s = float(interval_s)
        self._next = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.snapshots = 0

    @property
    def collector(self) -> Any:
        if self._collector is None:
            self._collector = get_collector()
        return self._collector

    def report(self) -> int:
        """Snapshot every camera now; returns how many were logged."""
        logged = 0
        items: list[tuple[Any, Any]] = []
        with guard("CameraHealthReporter.report"):
            cameras = self._cameras() if callable(self._cameras) else self._cameras
            items = list(dict(cameras).items())
        for camera_id, monitor in items:
            try:  # one camera whose id or stats cannot be read costs only its own snapshot
                stats = getattr(monitor, "stats", monitor)
                self.collector.log_camera_health(
                    camera_id if isinstance(camera_id, str) else str(camera_id),
                    stats if isinstance(stats, Mapping) else None,
                )
                logged += 1
            except Exception as exc:
                bad_input_log.warning(
                    "CameraHealthReporter", "camera health: a camera skipped (%s)", describe_error(exc)
                )
        self.snapshots += logged
        return logged

    def poll(self, now: float | None = None) -> bool:
        """Report if ``interval_s`` has passed since the last report (cheap to call per frame)."""
        now = time.monotonic() if now is None else now
        if now < self._next:
            return False
        self._next = now + self.interval_s
        self.report()
        return True

    def start(self) -> CameraHealthReporter:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="otel-tele-camera-health", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.report()
            self._stop.wait(self.interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
