"""The pipeline-health page: the books of every sink and signal now and over time, each one's last
error, collector reachability, each sink's retention state, storage footprint — and a red banner as
soon as anything was dropped or failed."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._maintenance import StorageState
from .._registry import load, sink_specs
from .._scrub import error_summary
from ._page import Page, chart, esc, stat, table, when

_log = logging.getLogger("otel_tele")
#: How long the page waits for a sink's retention state (a database that does not answer).
STATE_TIMEOUT_S = 2.0

#: Book columns in the order the equation adds them up.
BUCKETS = ("emitted", "exported", "dropped", "failed", "queued", "pending", "not_routed")


class BooksHistory:
    """Samples ``telemetry.sink_stats()`` every ``interval_s`` on a daemon thread, keeping the last
    ``size`` samples, so the page can draw the books over time without storing anything."""

    def __init__(self, telemetry: Any, *, interval_s: float = 2.0, size: int = 900) -> None:
        self.telemetry = telemetry
        self.interval_s = interval_s
        self.samples: deque[tuple[float, dict[str, dict[str, int]]]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> dict[str, dict[str, int]]:
        books: dict[str, dict[str, int]] = {}
        for snap in self.telemetry.sink_stats():
            books[f"{snap.sink}/{snap.signal}"] = {bucket: int(getattr(snap, bucket)) for bucket in BUCKETS}
        with self._lock:
            self.samples.append((time.time(), books))
        return books

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="otel-tele-ui-books", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a pipeline shutting down: keep the last samples, stop sampling
                return

    def series(self) -> tuple[list[float], dict[str, list[int | None]]]:
        with self._lock:
            samples = list(self.samples)
        keys = sorted({key for _, books in samples for key in books})
        x = [ts for ts, _ in samples]
        out: dict[str, list[int | None]] = {}
        for key in keys:
            for bucket in ("exported", "dropped", "failed"):
                out[f"{key} {bucket}"] = [books.get(key, {}).get(bucket) for _, books in samples]
        return x, out


def footprint(data_dir: Path) -> list[tuple[str, int, int]]:
    """(name, files, bytes) of each top-level entry of the data directory; names only, no paths.
    Symlinks are not followed (a link out of the data directory is not ours to measure)."""
    rows: list[tuple[str, int, int]] = []
    if not data_dir.is_dir():
        return rows
    for entry in sorted(data_dir.iterdir(), key=lambda p: p.name):
        files = size = 0
        if entry.is_symlink():
            continue
        if entry.is_file():
            files, size = 1, entry.stat().st_size
        else:
            for root, _dirs, names in os.walk(entry):
                for name in names:
                    path = Path(root, name)
                    if not path.is_symlink():
                        files += 1
                        size += path.stat().st_size
        rows.append((entry.name, files, size))
    return rows


def storage_states(settings: Any, timeout_s: float = STATE_TIMEOUT_S) -> list[tuple[str, Any]]:
    """(sink, :class:`StorageState` or a short reason it could not be read) for every registered
    sink that reports one (``SinkSpec.state``), read side by side on daemon threads (a database
    that never answers holds neither the page past ``timeout_s`` nor the process at exit)."""
    specs = [spec for spec in sink_specs().values() if spec.state]
    results: dict[str, Any] = {}

    def read(name: str, target: str) -> None:
        try:
            results[name] = _state_of(target, settings)
        except Exception as exc:  # a store that cannot be read: say so in its row
            _log.info("otel-tele ui: retention state of %s: %s", name, type(exc).__name__)
            results[name] = f"not read: {error_summary(exc)}"

    threads = [
        threading.Thread(target=read, args=(spec.name, spec.state), name="otel-tele-ui-state", daemon=True)
        for spec in specs
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [(spec.name, results.get(spec.name, f"not read within {timeout_s:g} s")) for spec in specs]


def _state_of(target: str, settings: Any) -> Any:
    return load(target)(settings)


def _state_row(sink: str, state: Any) -> tuple[Any, ...]:
    if not isinstance(state, StorageState):
        return (sink, state, None, None, None, None, None)
    run = state.last_run
    last = f"{run.what} at {when(run.at)}" if run is not None else "none recorded"
    detail = "; ".join(part for part in (run.detail if run is not None else "", state.note) if part)
    return (
        sink,
        state.retention,
        when(state.oldest),
        last,
        run.removed if run is not None else None,
        when(state.next_run),
        detail or None,
    )


def health_page(telemetry: Any, data_dir: Path, history: BooksHistory | None, settings: Any = None) -> Page:
    def render(_query: Mapping[str, str]) -> str:
        parts = []
        if telemetry is None:
            parts.append(
                '<p class="note">This dashboard reads stored telemetry only (no pipeline runs in this '
                "process): start <code>otel-tele serve --http</code> to see the live books.</p>"
            )
        else:
            books = history.sample() if history is not None else {}
            lost = {k: v for k, v in books.items() if v["dropped"] or v["failed"]}
            if lost:
                what = ", ".join(
                    f"{k}: {v['dropped']} dropped, {v['failed']} failed" for k, v in lost.items()
                )
                parts.append(f'<div class="banner bad" role="alert">Records were lost — {esc(what)}</div>')
            else:
                parts.append(
                    '<div class="banner ok">Every record is stored or queued: none dropped or failed.</div>'
                )
            totals = {b: sum(v[b] for v in books.values()) for b in BUCKETS}
            parts.append(
                '<div class="stats">'
                + "".join(
                    stat(b, totals[b], bad=b in ("dropped", "failed") and totals[b] > 0) for b in BUCKETS
                )
                + "</div>"
            )
            rows = [
                (
                    key,
                    *(v[b] for b in BUCKETS),
                    "yes" if sum(v[b] for b in BUCKETS[1:]) == v["emitted"] else "NO",
                )
                for key, v in sorted(books.items())
            ]
            parts.append("<h2>Books per sink and signal</h2>")
            parts.append(table(("sink/signal", *BUCKETS, "balanced"), rows, cls="books"))
            snaps = sorted(telemetry.sink_stats(), key=lambda s: (s.sink, s.signal))
            parts.append("<h2>Last error per sink and signal</h2>")
            parts.append(
                table(
                    ("sink/signal", "last error", "at"),
                    [(f"{s.sink}/{s.signal}", s.last_error or "none", when(s.last_error_at)) for s in snaps],
                    cls="errors",
                )
            )
            health = telemetry.export_health() if hasattr(telemetry, "export_health") else []
            parts.append("<h2>Collectors</h2>")
            parts.append(
                table(
                    ("exporter", "endpoint", "reachable", "not delivered while down"),
                    [
                        (h["what"], h["where"], "no" if h["down"] else "yes", h["lost_while_down"])
                        for h in health
                    ],
                )
            )
            if history is not None:
                x, series = history.series()
                if len(x) > 1:
                    parts.append(chart("books", "Books over time (cumulative)", x, series, x_time=True))
        if settings is not None:
            parts.append("<h2>Storage retention</h2>")
            parts.append(
                table(
                    ("sink", "retention", "oldest kept", "last pass", "rows removed", "next pass", "detail"),
                    [_state_row(sink, state) for sink, state in storage_states(settings)],
                    cls="retention",
                )
            )
        parts.append("<h2>Storage footprint</h2>")
        rows = [(name, files, size) for name, files, size in footprint(data_dir)]
        parts.append(table(("store", "files", "bytes"), rows, cls="footprint"))
        return "".join(parts)

    return Page("health", "Pipeline health", render, order=0)
