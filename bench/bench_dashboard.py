"""Dashboard page load: server time of every page on the demo's data, on ``--rows`` (default 1M)
rows per robot table and on ``--store-rows`` (default 10M) spans in the general store; targets:
< 300 ms on the demo's data, < 1 s at scale.

Each data set is served by a fresh process (``--serve``) running the real app (``build_http_app``,
the same as ``serve --http``); the parent requests every page ``ROUNDS`` times over loopback and
reads the server's own time from the ``Server-Timing`` header it adds. Beside each page, the same
process times the query-API calls behind it alone (``render`` minus HTML is not separable, so the
baseline is the plain JSON route where one exists), interleaved page by page. Three fresh processes
per data set; min/median/max of their medians.

The spans are written directly as compacted Parquet parts in the layout
:mod:`otel_tele.exporters.store.schema` declares (7 days of UTC day partitions, 10 spans per trace,
8 services, 1 % errors), not through the pipeline: 10M spans through OTLP would take an hour here.

.venv/bin/python -m bench.bench_dashboard [--rows 1000000] [--store-rows 10000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import Report
from bench._store_data import write_spans

#: (name, path) of every page measured; ``{trace}`` is a trace of the data set, where it has one.
PAGES = (
    ("health", "/ui/health"),
    ("robot", "/ui/robot"),
    ("runs", "/ui/runs"),
    ("serving", "/ui/serving"),
    ("flow", "/ui/flow"),
    ("traces", "/ui/traces"),
    ("traces, 7 days", "/ui/traces?window=10080"),
    ("trace", "/ui/traces?trace={trace}"),
)
#: The plain JSON route beside a page, where one reads the same store (the simple alternative).
BASELINES = {"runs": "/v1/fda/runs", "flow": "/v1/runs"}
ROUNDS = 7
TARGETS_MS = {"demo": 300.0, "1M": 1000.0, "10M spans": 1000.0}


def _serve(data_dir: str) -> None:
    """Child: the app over ``data_dir`` on a free port; prints the port, serves until stdin closes."""
    os.environ["OTEL_TELE_DATA_DIR"] = data_dir
    import socket
    import threading

    import uvicorn

    from otel_tele._http_guard import Access
    from otel_tele.cli._serve import build_http_app

    app = build_http_app(Access())

    @app.middleware("http")
    async def timing(request: Any, call_next: Any) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.3f}"
        return response

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    print(sock.getsockname()[1], flush=True)
    sys.stdin.read()


def _measure(data_dir: Path, trace: str | None = None) -> dict[str, dict[str, float]]:
    import httpx

    child = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_dashboard", "--serve", str(data_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        port = int(child.stdout.readline())  # type: ignore[union-attr]
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        samples: dict[str, list[float]] = {}
        pages = [(name, path.format(trace=trace)) for name, path in PAGES if trace or "{trace}" not in path]
        for _name, path in pages:  # warm-up: first imports and connections
            client.get(path)
        for _ in range(ROUNDS):
            for slug, path in pages:
                for name, url in ((slug, path), (f"{slug} (json)", BASELINES.get(slug))):
                    if url is None:
                        continue
                    response = client.get(url)
                    assert response.status_code == 200, (url, response.status_code, response.text[:300])
                    server_ms = float(response.headers["server-timing"].split("dur=")[1])
                    samples.setdefault(name, []).append(server_ms)
        return {
            name: {
                "p50": statistics.median(v),
                "p99": max(v),  # 7 rounds: the max stands for p99
                "mean": statistics.fmean(v),
            }
            for name, v in samples.items()
        }
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(30)


def _demo_data(tmp: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "otel_tele.demo", "--seconds", "1", "--requests", "100"],
        cwd=tmp, capture_output=True, text=True, env={**os.environ, "OTEL_TELE_SINKS": ""},
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return tmp / "demo-output"


def _robot_data(tmp: Path, rows: int) -> Path:
    from otel_tele.exporters.sqlite import SqliteSink

    from bench.bench_robot_query import build

    folder = tmp / "robot-1m"
    folder.mkdir()
    build(folder / "telemetry.db", rows)
    sink = SqliteSink(folder / "telemetry.db", retention_days=0)
    sink.open()  # the sink builds its digest sidecar from the whole database once, at open
    sink.close()
    return folder


def _store_data(tmp: Path, rows: int, *, days: int = 7, part_rows: int = 1_000_000) -> tuple[Path, str]:
    """``rows`` spans over the last ``days`` days as compacted parts of the general store under a
    data folder; returns the folder and the id of a recent trace (the permalink measured)."""
    from otel_tele.exporters.store.schema import DEFAULT_DIR_NAME

    folder = tmp / "store-10m"
    data = write_spans(folder / DEFAULT_DIR_NAME, rows, days=days, part_rows=part_rows, prefix="c")
    return folder, data.recent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--store-rows", type=int, default=10_000_000, help="spans in the general store")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve)
        return
    report = Report(
        "dashboard", f"server ms per page (Server-Timing), {ROUNDS} rounds x {args.repeats} processes"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        store, trace = _store_data(tmp, args.store_rows)
        sets = {
            "demo": (_demo_data(tmp), None),
            "1M": (_robot_data(tmp, args.rows), None),
            "10M spans": (store, trace),
        }
        report.note(
            f"data built in {time.perf_counter() - started:.0f} s; 1M = {args.rows:,} rows per robot table; "
            f"10M spans = {args.store_rows:,} spans in the general store (7 days, 10 per trace)"
        )
        for label, (folder, trace_id) in sets.items():
            runs = [_measure(folder, trace_id) for _ in range(args.repeats)]
            for name in runs[0]:
                p50s = sorted(run[name]["p50"] for run in runs)
                row = {
                    "data": label,
                    "page": name,
                    "p50_min_ms": p50s[0],
                    "p50_median_ms": statistics.median(p50s),
                    "p50_max_ms": p50s[-1],
                    "p99_median_ms": statistics.median(run[name]["p99"] for run in runs),
                    "mean_median_ms": statistics.median(run[name]["mean"] for run in runs),
                }
                if "(json)" not in name:
                    row["target_ms"] = TARGETS_MS[label]
                    row["meets"] = row["p99_median_ms"] < TARGETS_MS[label]
                report.add(**row)
    report.note(json.dumps({"pages": dict(PAGES), "baselines": BASELINES}))
    report.finish()


if __name__ == "__main__":
    main()
