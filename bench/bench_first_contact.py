"""A newcomer's first minutes, timed in fresh processes: the README's one-line example and the demo.

With no collector running (a laptop), the one line is compared in the same run against the obvious
alternative — the bare OpenTelemetry SDK wired the way its defaults say (OTLP exporters to
localhost:4317 for traces, logs and metrics). Also: otel-tele with a collector configured but down
(the bounded exit), and the whole demo. Each case runs in a fresh interpreter with no OTEL_* settings,
interleaved round by round; the table gives p50/p99/mean/min/max wall seconds and stderr lines.

    .venv/bin/python bench/bench_first_contact.py [--rounds 5] [--demo-rounds 3]
    # before/after: two installations interleaved (e.g. an older checkout's venv and this one):
    .venv/bin/python bench/bench_first_contact.py --python before=OLD/.venv/bin/python \\
        --python after=.venv/bin/python
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import Report

ONE_LINE = """
import otel_tele

telemetry = otel_tele.setup(service_name="arm-server")
telemetry.events.emit("robot.system.event", {"robot.system.event_type": "startup"})
"""

BARE_SDK = """
from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

resource = Resource.create({"service.name": "arm-server"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
_logs.set_logger_provider(logger_provider)
metrics.set_meter_provider(
    MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
)
with trace.get_tracer("arm").start_as_current_span("startup"):
    _logs.get_logger("arm").emit(_logs.LogRecord(body="startup", event_name="robot.system.event"))
"""


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**env, "OTEL_EXPORTER_PROMETHEUS_PORT": "0", **extra}


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> tuple[float, int, int]:
    """Wall seconds, exit status and stderr line count of one fresh process."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    return time.perf_counter() - t0, done.returncode, len(done.stderr.splitlines())


def _row(report: Report, case: str, samples: list[tuple[float, int, int]]) -> None:
    seconds = sorted(s for s, _rc, _lines in samples)
    n = len(seconds)
    report.add(
        case=case,
        runs=n,
        p50_s=round(seconds[n // 2], 2),
        p99_s=round(seconds[min(n - 1, int(0.99 * n))], 2),
        mean_s=round(sum(seconds) / n, 2),
        min_s=round(seconds[0], 2),
        max_s=round(seconds[-1], 2),
        exit_codes=sorted({rc for _s, rc, _l in samples}),
        stderr_lines=sorted({lines for _s, _rc, lines in samples}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--demo-rounds", type=int, default=3)
    parser.add_argument(
        "--python",
        action="append",
        metavar="LABEL=PATH",
        help="installation(s) to time, interleaved round by round (default: this one, as 'this')",
    )
    parser.add_argument("--name", default="first_contact")
    args = parser.parse_args()
    pythons = dict(p.split("=", 1) for p in (args.python or [f"this={sys.executable}"]))
    report = Report(args.name, "newcomer timings in fresh processes, no OTEL_* settings, no collector")
    cases: dict[str, list[tuple[float, int, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, code in (("one_line.py", ONE_LINE), ("bare_sdk.py", BARE_SDK)):
            (root / name).write_text(code)
        dead = f"http://127.0.0.1:{_dead_port()}"
        scripts = (
            ("README one line, no collector", "one_line.py", _env()),
            ("bare SDK with its OTLP defaults, no collector", "bare_sdk.py", _env()),
            (
                "README one line, collector configured but down",
                "one_line.py",
                _env(OTEL_EXPORTER_OTLP_ENDPOINT=dead),
            ),
        )
        for _ in range(args.rounds):  # interleaved: the machine's speed drifts between rounds
            for label, python in pythons.items():
                for case, script, env in scripts:
                    if script == "bare_sdk.py" and label != next(iter(pythons)):
                        continue  # the SDK baseline once per round is enough
                    workdir = Path(tempfile.mkdtemp(dir=root))
                    key = f"{case} [{label}]"
                    cases.setdefault(key, []).append(_run([python, str(root / script)], workdir, env, 120))
        for _ in range(args.demo_rounds):
            for label, python in pythons.items():
                workdir = Path(tempfile.mkdtemp(dir=root))
                cases.setdefault(f"demo, defaults [{label}]", []).append(
                    _run([python, "-m", "otel_tele.demo"], workdir, _env(), 900)
                )
    for case, samples in cases.items():
        _row(report, case, samples)
    for label, python in pythons.items():
        report.note(f"{label}: {python}")
    report.note("wall time includes interpreter start and imports; stderr_lines: distinct counts seen")
    report.note(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    report.finish()


if __name__ == "__main__":
    main()
