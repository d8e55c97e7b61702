"""Robot collector: caller-side cost of emit()/typed methods vs the spec's own queue + writer design.

The baseline is spec 004's internal design, minimal: ``json.dumps`` of the data, a row tuple and
``queue.Queue.put`` to a writer thread doing ``executemany`` into the same schema. Ours also feeds
OTel (log record + metrics) — on the telemetry thread, not the caller's.

    .venv/bin/python bench/bench_robot_emit.py [--calls 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import queue
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from otel_tele.exporters.sqlite import init_db
from otel_tele.exporters.sqlite.schema import INSERTS
from otel_tele.instrumentation.robot import EventType, TelemetryCollector

from bench._harness import Report, median_ratio, median_round, percentiles_ns

CHUNK = 20_000


class SpecBaseline:
    """The spec's design, minimal: queue.Queue + one writer thread + executemany per table."""

    def __init__(self, db: Path, batch_size: int = 50) -> None:
        init_db(db).close()
        self.queue: queue.Queue[tuple[str, tuple[Any, ...]] | None] = queue.Queue()
        self.batch_size = batch_size
        self.thread = threading.Thread(target=self._writer, args=(db,), daemon=True)
        self.thread.start()

    def log_command(
        self,
        seq: int,
        funcode: int,
        joint_id: int | None,
        target_value: float | None,
        data: dict[str, Any] | None,
        correlation_id: str | None = None,
        raw_len: int = 0,
    ) -> None:
        self.queue.put(
            (
                "dds_commands",
                (
                    time.time(),
                    time.monotonic(),
                    seq,
                    funcode,
                    joint_id,
                    target_value,
                    json.dumps(data) if data is not None else None,
                    correlation_id,
                    raw_len,
                ),
            )
        )

    def log_feedback(self, seq: int | None, funcode: int, angles: list[float], status: Any = None) -> None:
        """The spec's feedback row: seven angle columns, no status (as ``ours log_feedback`` is called)."""
        padded = (list(angles[:7]) + [None] * 7)[:7]
        self.queue.put(
            (
                "dds_feedback",
                (time.time(), time.monotonic(), seq, funcode, *padded, None, None, None, None, None),
            )
        )

    def emit(
        self, source: str, event_type: EventType, payload: dict[str, Any], cid: str | None = None
    ) -> None:
        if event_type is EventType.DDS_PUBLISH:
            self.log_command(
                payload.get("seq", 0),
                payload.get("funcode", 0),
                payload.get("joint_id"),
                payload.get("target_value"),
                payload.get("data"),
                cid,
                payload.get("raw_len", 0),
            )

    def _writer(self, db: Path) -> None:
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        while True:
            item = self.queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.batch_size:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.queue.put(None)
                    break
                batch.append(nxt)
            by_table: dict[str, list[tuple[Any, ...]]] = {}
            for table, params in batch:
                by_table.setdefault(table, []).append(params)
            with conn:
                for table, rows in by_table.items():
                    conn.executemany(INSERTS[table], rows)
        conn.close()

    def drain(self) -> None:
        while not self.queue.empty():
            time.sleep(0.01)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def timed(fn: Callable[[int], Any], n: int, drain: Callable[[], Any]) -> dict[str, float]:
    """Per-call ns of ``fn(i)``, in chunks the writer drains in between (so nothing is ever dropped)."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    for start in range(0, n, CHUNK):
        gc.disable()
        try:
            for i in range(start, min(n, start + CHUNK)):
                t0 = clock()
                fn(i)
                samples.append(clock() - t0)
        finally:
            gc.enable()
        drain()
    return percentiles_ns(samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median p50 is kept")
    args = parser.parse_args(argv)
    report = Report(
        "robot_emit", "caller-side ns per call: TelemetryCollector vs the spec's queue+writer design"
    )
    data = {"id": 2, "angle": 45.0, "speed": 30}
    record = {"seq": 0, "funcode": 1, "joint_id": 2, "target_value": 45.0, "data": data}
    angles = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    rounds: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        baseline = SpecBaseline(Path(tmp) / "baseline.db")
        tc = TelemetryCollector(db_path=Path(tmp) / "ours.db")
        tc.enable()
        calls: dict[str, tuple[Callable[[int], Any], Callable[[], Any]]] = {
            "baseline log_command": (
                lambda i: baseline.log_command(i, 1, 2, 45.0, data, "abc123def456", 48),
                baseline.drain,
            ),
            "baseline emit(DDS_PUBLISH)": (
                lambda i: baseline.emit("dds", EventType.DDS_PUBLISH, {**record, "seq": i}, "abc123def456"),
                baseline.drain,
            ),
            "ours log_command": (lambda i: tc.log_command(i, 1, 2, 45.0, data, "abc123def456", 48), tc.flush),
            "ours emit(DDS_PUBLISH)": (
                lambda i: tc.emit("dds", EventType.DDS_PUBLISH, {**record, "seq": i}, "abc123def456"),
                tc.flush,
            ),
            "baseline log_feedback": (lambda i: baseline.log_feedback(i, 1, angles, None), baseline.drain),
            "ours log_feedback": (
                lambda i: tc.log_feedback(i, 1, angles, None),
                tc.flush,
            ),
        }
        for _ in range(args.rounds):  # interleaved, so drift on the machine hits every variant alike
            for name, (fn, drain) in calls.items():
                rounds.setdefault(name, []).append(timed(fn, args.calls, drain))
        baseline.close()
        stats = [s for s in tc.telemetry.sink_stats() if s.sink in ("sqlite", "events")]
        tc.close()
    figures = {name: median_round(found) for name, found in rounds.items()}
    ours = {name.removeprefix("ours "): f for name, f in figures.items() if name.startswith("ours ")}
    for name in ours:  # like with like: each call against the baseline's call of the same name
        base = figures[f"baseline {name}"]
        report.add(
            call=f"baseline {name}",
            p50_ns=base["p50_ns"],
            p99_ns=base["p99_ns"],
            mean_ns=base["mean_ns"],
            p50_rounds=base["p50_rounds"],
        )
    for name, figures in ours.items():
        ratio = median_ratio(rounds[f"ours {name}"], rounds[f"baseline {name}"])
        mean = median_ratio(rounds[f"ours {name}"], rounds[f"baseline {name}"], key="mean_ns")
        p99 = median_ratio(rounds[f"ours {name}"], rounds[f"baseline {name}"], key="p99_ns")
        report.add(
            call=f"ours {name}",
            p50_ns=figures["p50_ns"],
            p99_ns=figures["p99_ns"],
            mean_ns=figures["mean_ns"],
            p50_ratio=ratio["ratio"],
            p99_ratio=p99["ratio"],
            mean_ratio=mean["ratio"],
            p50_ratio_rounds=ratio["rounds"],
            mean_ratio_rounds=mean["rounds"],
            p50_rounds=figures["p50_rounds"],
        )
    report.note(
        f"{args.calls} calls each; dropped={sum(s.dropped for s in stats)} failed="
        f"{sum(s.failed for s in stats)} (must be 0); ratio < 1 means faster than the baseline; "
        "each ours call is compared with the baseline's call of the same name, per round "
        "(median of the per-round ratios)"
    )
    report.finish()


if __name__ == "__main__":
    main()
