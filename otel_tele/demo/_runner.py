"""Run the demo: service + traffic + domain simulations, then show where everything landed."""

from __future__ import annotations

import argparse
import os
import random
import re
import shlex
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import otel_tele
from otel_tele._internal import optional_module
from otel_tele._registry import domains

from ._commands import command, program, shown


def simulations() -> tuple[tuple[str, str], ...]:
    """One simulated workload per registered domain that has one: module, title. A module missing
    from this build is skipped."""
    return tuple((d.demo, d.title) for d in domains() if d.demo)


def _serve(app: Any, port: int) -> tuple[Any, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="demo-uvicorn", daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)  # uvicorn exposes no readiness event
    return server, thread


def _drive_traffic(port: int, requests: int) -> dict[int, int]:
    import httpx

    statuses: dict[int, int] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(requests):
            roll = random.random()
            if roll < 0.5:
                response = client.post(
                    "/api/command/set-joint", json={"joint": i % 8, "angle": i * 1.5, "token": "s3cret"}
                )
            elif roll < 0.8:
                response = client.get(f"/api/joints/{i % 9}")
            else:
                response = client.get("/api/health")
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


def _instrument(app: Any, telemetry: otel_tele.Pipeline) -> str:
    try:
        from otel_tele.instrumentation.robot.fastapi import instrument_app
    except ImportError:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        return "opentelemetry-instrumentation-fastapi"
    instrument_app(app)
    return "otel_tele.instrumentation.robot.fastapi.instrument_app"


def _metrics_excerpt(telemetry: otel_tele.Pipeline) -> list[str]:
    if telemetry.prometheus_address is None:
        return ["(Prometheus endpoint not running)"]
    host, port = telemetry.prometheus_address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = (
        "http_server_request_duration_seconds_count",
        *(f"{domain.name}_" for domain in domains()),
        "otel_tele_sink_exported_total",
        "otel_tele_sink_dropped_total",
    )
    lines = [line for line in text.splitlines() if line.startswith(wanted) and "_bucket{" not in line]
    return [_shorten(line) for line in lines[:40]] + (
        [f"... {len(lines) - 40} more"] if len(lines) > 40 else []
    )


def _shorten(line: str) -> str:
    """Drop the scope labels every series carries; they say nothing here."""
    return re.sub(r'otel_scope_(name|schema_url|version)="[^"]*",?', "", line).replace(",}", "}")


def _landed(data_dir: Path) -> list[str]:
    """One line per top-level entry of the data dir (file count and bytes), then one per bundle."""
    lines = []
    for entry in sorted(data_dir.iterdir()):
        if entry.name == MARKER:
            continue
        files = [p for p in entry.rglob("*") if p.is_file()] if entry.is_dir() else [entry]
        size = sum(p.stat().st_size for p in files)
        what = f"{len(files)} files, " if entry.is_dir() else ""
        lines.append(f"{entry.name + ('/' if entry.is_dir() else ''):<28} {what}{size:,} bytes")
    for manifest in sorted(data_dir.glob("captures/*/manifest.json")):
        bundle = manifest.parent
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        lines.append(f"  capture bundle {shown(bundle)}  ({size:,} bytes)")
    return lines


#: The file that marks a folder as the demo's own output, which a later run may clear.
MARKER = ".otel-tele-demo"


def _fresh_data_dir(data_dir: Path) -> str | None:
    """Make ``data_dir`` empty and ours; say what was done. A non-empty folder the demo did not
    create is refused (it may hold someone's data)."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise SystemExit(
                f"demo: {shown(data_dir)} is not empty and was not written by the demo; "
                "pass --data-dir with a new or empty folder"
            )
        shutil.rmtree(data_dir)
        cleared = f"Cleared the previous demo run in {shown(data_dir)}"
    else:
        cleared = None
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("written by python -m otel_tele.demo; a re-run clears this folder\n")
    return cleared


def _next_steps(data_dir: Path) -> list[str]:
    python = shown(sys.executable) if program() != "otel-tele" else "python"
    lines = [
        command("query", "summary", "--db", data_dir / "telemetry.db"),
        command("runs", "list", "--root", data_dir / "telematry_cfs"),
        command("inference", "stats", "--data-dir", data_dir),
    ]
    bundles = sorted(data_dir.glob("captures/*/manifest.json"))
    if bundles:
        path = shown(bundles[0].parent)
        lines.append(
            "$ "
            + shlex.join(
                [
                    python,
                    "-c",
                    f'from otel_tele.bundles import read_bundle; b = read_bundle("{path}"); '
                    'print(b.manifest["grid"], len(b.series), "series")',
                ]
            )
        )
    lines += [
        f"browse every query route: OTEL_TELE_DATA_DIR={shlex.quote(shown(data_dir))} "
        f"{program()} serve --http 127.0.0.1:8000, then http://127.0.0.1:8000/docs",
        "instrument your own code: README.md, 'One line'; ship to a collector: set "
        "OTEL_EXPORTER_OTLP_ENDPOINT (README.md, 'Collectors and Prometheus' runs one locally)",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otel_tele.demo", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each simulation runs")
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests to drive")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("demo-output"), help="output folder, cleared on each run"
    )
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    cleared = _fresh_data_dir(data_dir)
    if cleared:
        print(cleared)
    os.environ.setdefault("OTEL_EXPORTER_PROMETHEUS_PORT", "0")  # any free port

    telemetry = otel_tele.setup(service_name="otel-tele-demo", data_dir=data_dir)  # the one line
    from .app import create_app

    app = create_app()
    how = _instrument(app, telemetry)
    port = _free_port()
    server, thread = _serve(app, port)
    print(f"Demo service on http://127.0.0.1:{port} (instrumented by {how})")
    statuses = _drive_traffic(port, args.requests)
    print(f"Drove {args.requests} requests: status counts {dict(sorted(statuses.items()))}")
    for module_name, title in simulations():
        module = optional_module(module_name)
        if module is None:
            continue
        print(f"\n== {title}")
        for line in module.run(telemetry, data_dir, seconds=args.seconds):
            print(f"  {line}")
    telemetry.force_flush(30_000)
    print("\n== Where the telemetry went")
    for signal, name, where in telemetry.destinations:
        print(f"  {signal:<8} {name:<22} {where}")
    print("\n== /metrics (excerpt)")
    for line in _metrics_excerpt(telemetry):
        print(f"  {line}")
    server.should_exit = True
    thread.join(10)
    telemetry.shutdown(10_000)  # closes every sink: the files below are final
    print(
        "\n== Sink accounting after shutdown "
        "(emitted = exported + dropped + failed + queued + pending + not_routed)"
    )
    for snap in telemetry.sink_stats():
        print(
            f"  {snap.sink:<14} {snap.signal:<8} emitted={snap.emitted} exported={snap.exported} "
            f"dropped={snap.dropped} failed={snap.failed} queued={snap.queued} "
            f"pending={snap.pending} not_routed={snap.not_routed}"
        )
    print(f"\n== Files under {shown(data_dir)} after shutdown")
    for line in _landed(data_dir):
        print(f"  {line}")
    print("\n== Next steps")
    for line in _next_steps(data_dir):
        print(f"  {line}")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
