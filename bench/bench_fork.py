"""What fork safety costs the host: ``os.fork()`` latency in the parent, and a child's first stored
record, for a parent without otel-tele, one with an idle SQLite sink, and one busy exporting to it.

Each fork of a parent with an SQLite sink waits (at most 1 s) for a write transaction in progress,
so the child never inherits an open one. Conditions are interleaved round by round, each in a fresh
process; the child emits one robot event, flushes the sqlite sink and exits.

    .venv/bin/python -m bench.bench_fork [--forks 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import Report, percentiles_ns

CONDITIONS = ("bare", "idle_sink", "busy_sink")


def _measure(condition: str, forks: int) -> dict[str, Any]:
    """Runs in a fresh process: fork ``forks`` children one at a time; times in ns."""
    telemetry = None
    stop = threading.Event()
    if condition != "bare":
        import otel_tele

        telemetry = otel_tele.setup(
            local=True,
            sinks=["sqlite"],
            data_dir=tempfile.mkdtemp(prefix="bench-fork-"),
            traces_exporter="none",
            metrics_exporter="none",
            logs_exporter="none",
            blrp_max_export_batch_size=64,
            blrp_schedule_delay_millis=1,
        )
        telemetry.events.emit("robot.system.event", {"robot.system.event_type": "warm"})
        telemetry.flush_sink("sqlite", 10_000)
    if condition == "busy_sink":
        assert telemetry is not None
        events = telemetry.events

        def busy() -> None:
            n = 0
            while not stop.wait(0.0005):
                for _ in range(32):
                    n += 1
                    events.emit("robot.dds.command", {"robot.dds.seq": n, "robot.dds.funcode": 1})

        threading.Thread(target=busy, daemon=True).start()
        time.sleep(0.2)  # let the writer get busy: a warm-up, not a wait on a result
    fork_ns: list[int] = []
    child_ns: list[int] = []
    ok = 0
    for i in range(forks):
        t0 = time.perf_counter_ns()
        pid = os.fork()
        if pid == 0:
            code = 0
            if telemetry is not None:
                telemetry.events.emit("robot.system.event", {"robot.system.event_type": f"child{i}"})
                code = 0 if telemetry.flush_sink("sqlite", 10_000) else 1
            os._exit(code)
        t1 = time.perf_counter_ns()
        _, status = os.waitpid(pid, 0)
        t2 = time.perf_counter_ns()
        fork_ns.append(t1 - t0)
        child_ns.append(t2 - t0)
        ok += os.waitstatus_to_exitcode(status) == 0
    stop.set()
    return {"fork": percentiles_ns(fork_ns), "child": percentiles_ns(child_ns), "ok": ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--forks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=CONDITIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child, args.forks)))
        return
    root = Path(__file__).resolve().parent.parent
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in CONDITIONS}
    for _ in range(args.rounds):
        for condition in CONDITIONS:  # interleaved, each in a fresh process
            out = subprocess.run(
                [sys.executable, "-m", "bench.bench_fork", "--child", condition, "--forks", str(args.forks)],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            )
            results[condition].append(json.loads(out.stdout.strip().splitlines()[-1]))
    report = Report("fork", "parent os.fork() latency and child emit+flush_sink+exit, per condition")
    for condition in CONDITIONS:
        rounds = results[condition]
        median = sorted(rounds, key=lambda r: r["fork"]["p50_ns"])[len(rounds) // 2]
        report.add(
            condition=condition,
            fork_p50_us=median["fork"]["p50_ns"] / 1e3,
            fork_p99_us=median["fork"]["p99_ns"] / 1e3,
            fork_mean_us=median["fork"]["mean_ns"] / 1e3,
            child_p50_ms=median["child"]["p50_ns"] / 1e6,
            child_p99_ms=median["child"]["p99_ns"] / 1e6,
            child_mean_ms=median["child"]["mean_ns"] / 1e6,
            children_ok=f"{sum(r['ok'] for r in rounds)}/{args.forks * len(rounds)}",
            fork_p50_rounds_us=[round(r["fork"]["p50_ns"] / 1e3) for r in rounds],
        )
    report.note(
        f"{args.rounds} interleaved rounds x {args.forks} forks per condition, each round a fresh process; "
        "the row is the round with the median fork p50. busy_sink: a thread emits 32 robot commands "
        "every 0.5 ms into an SQLite sink exporting batches of 64 at once."
    )
    report.finish()


if __name__ == "__main__":
    main()
