"""Benchmark harness: time things, print a table, write ``bench/results/<name>.json``.

Benchmarks compare against the obvious alternative *in the same run* (ratios), since absolute times
on a shared 2-core machine drift. Tests never assert on these numbers.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otel_tele import _accel

RESULTS = Path(__file__).resolve().parent / "results"


def percentiles_ns(samples: list[int]) -> dict[str, float]:
    samples = sorted(samples)
    n = len(samples)

    def at(q: float) -> float:
        return float(samples[min(n - 1, int(q * n))])

    return {"p50_ns": at(0.50), "p90_ns": at(0.90), "p99_ns": at(0.99), "mean_ns": sum(samples) / n}


def per_call_ns(fn: Callable[[int], Any], n: int, *, warmup: int = 1000) -> dict[str, float]:
    """Time ``fn(i)`` call by call (perf_counter_ns around each call) — caller-side latency."""
    for i in range(warmup):
        fn(i)
    samples = [0] * n
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(n):
            t0 = clock()
            fn(i)
            samples[i] = clock() - t0
    finally:
        gc.enable()
    return percentiles_ns(samples)


def median_round(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Of several rounds of the same measurement, the one with the median p50 (and every p50): on a
    shared 2-core machine one round's p50 can be 1.6x another's for the same code."""
    ordered = sorted(rounds, key=lambda r: r["p50_ns"])
    return {**ordered[len(ordered) // 2], "p50_rounds": [r["p50_ns"] for r in rounds]}


def median_ratio(
    ours: list[dict[str, float]], base: list[dict[str, float]], *, key: str = "p50_ns"
) -> dict[str, Any]:
    """``key`` (p50 by default; p99, mean) ratio of interleaved rounds, each taken against the baseline
    measured beside it (the machine's speed drifts between rounds): the median ratio and every one."""
    ratios = sorted(o[key] / b[key] for o, b in zip(ours, base, strict=True))
    return {"ratio": ratios[len(ratios) // 2], "rounds": [round(r, 3) for r in ratios]}


def throughput(run: Callable[[], int]) -> dict[str, float]:
    """``run()`` does the work and returns how many items it processed."""
    t0 = time.perf_counter()
    count = run()
    seconds = time.perf_counter() - t0
    return {"items": count, "seconds": seconds, "per_second": count / seconds if seconds else float("inf")}


def repeated_throughput(run: Callable[[int], int], repeats: int) -> dict[str, Any]:
    """``run(attempt)`` ``repeats`` times (fresh state each attempt): the median and every figure,
    since one figure on a shared 2-core machine can be ±20 % off."""
    figures = sorted(throughput(functools.partial(run, attempt))["per_second"] for attempt in range(repeats))
    return {"per_second": figures[len(figures) // 2], "all_per_second": [round(f) for f in figures]}


def queue_writer(
    write_batch: Callable[[list[Any]], None], batch_size: int
) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """The specs' simple design: the caller puts each row on a ``queue.Queue``; one writer thread
    takes up to ``batch_size`` rows at a time and hands them to ``write_batch`` (one transaction).
    Returns ``(put, close)``; ``close`` returns once the writer has written the last row."""
    rows: queue.Queue[Any] = queue.Queue()

    def writer() -> None:
        done = False
        while not done:
            batch = [rows.get()]
            while len(batch) < batch_size:
                try:
                    batch.append(rows.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is _END:
                batch.pop()
                done = True
            if batch:
                write_batch(batch)

    thread = threading.Thread(target=writer, name="simple-design-writer")
    thread.start()

    def close() -> None:
        rows.put(_END)
        thread.join()

    return rows.put, close


_END = object()


def versus_simple(
    rows: int, runs: list[tuple[float, float]], simple: list[tuple[float, float]] | None
) -> dict[str, Any]:
    """A case's figures from its ``(wall s, CPU s)`` runs: rows/s min/median/max, CPU and wall
    seconds per 1M rows (medians), and — given the simple design's runs, interleaved with these —
    the throughput ratio to it, each run against the one beside it (min/median/max), and our CPU
    over its (median)."""
    per_s = sorted(rows / wall for wall, _ in runs)
    row: dict[str, Any] = {
        "rows": rows,
        "rows_per_s_min": per_s[0],
        "rows_per_s_median": per_s[len(per_s) // 2],
        "rows_per_s_max": per_s[-1],
        "cpu_s_per_1M_rows": sorted(cpu for _, cpu in runs)[len(runs) // 2] * 1e6 / rows,
        "wall_s_per_1M_rows": sorted(wall for wall, _ in runs)[len(runs) // 2] * 1e6 / rows,
    }
    if simple is not None:
        ratios = sorted(s_wall / o_wall for (o_wall, _), (s_wall, _) in zip(runs, simple, strict=True))
        cpu_x = sorted(o_cpu / s_cpu for (_, o_cpu), (_, s_cpu) in zip(runs, simple, strict=True))
        row.update(
            ratio_min=ratios[0],
            ratio_median=ratios[len(ratios) // 2],
            ratio_max=ratios[-1],
            cpu_x_simple=cpu_x[len(cpu_x) // 2],
        )
    return row


def in_fresh_process(module: str, argv: list[str], timeout_s: float = 3600) -> Any:
    """Run ``python -m <module> <argv>`` from the repository root in a new interpreter and return
    the JSON of its last output line: one benchmark case measured in a fresh process, which neither
    reuses memory an earlier case grew (a design that holds every row pays for its pages) nor finds
    caches an earlier case warmed."""
    done = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=RESULTS.parent.parent,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(argv)}: exit {done.returncode}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def reference_loop_ns() -> float:
    """ns for ``sum(range(1000))`` (best of 5): the machine's pure-Python speed when the figures were
    taken. On this shared VM it differs up to ~1.8x between processes minutes apart; absolute
    figures from two reports compare only after scaling by it (ratios need no scaling)."""
    best = min(timeit.repeat("sum(range(1000))", number=2_000, repeat=5)) / 2_000
    return round(best * 1e9, 1)


class Report:
    """Rows of figures for one benchmark script."""

    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(self, **row: Any) -> None:
        self.rows.append(row)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def print_table(self) -> None:
        print(f"\n== {self.name}: {self.description}")
        if not self.rows:
            return
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        cells = [[_fmt(row.get(col)) for col in columns] for row in self.rows]
        widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
        print("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for r in cells:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        for note in self.notes:
            print(f"* {note}")

    def write(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        payload = {
            "name": self.name,
            "description": self.description,
            "rows": self.rows,
            "notes": self.notes,
            "machine": {
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "reference_loop_ns": reference_loop_ns(),
                # Whether the event path's C module ran (OTEL_TELE_SPEEDUPS=0 or no compiler: the
                # pure-Python twins, slower on the FDA and column paths).
                "speedups": _accel.speedups is not None,
            },
        }
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        return path

    def finish(self) -> None:
        self.print_table()
        print(f"-> {self.write()}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)
