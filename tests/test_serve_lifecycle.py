"""``otel-tele serve`` behaves like a server (issue 11 §2): clear one-line errors for busy or malformed
addresses, a prompt stop on SIGTERM/SIGINT, its own telemetry kept local, every address announced,
no empty bundles while idle. Through the real console script in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._otlp_receiver import OtlpReceiver
from ._services import port_open

CLI = str(Path(sys.executable).parent / "otel-tele")
START = re.compile(
    r"^otel-tele serve: OTLP/gRPC on 127\.0\.0\.1:(\d+); HTTP on http://127\.0\.0\.1:(\d+); "
    r"Prometheus on http://127\.0\.0\.1:(\d+)/metrics; sinks: (.*)$"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {
        **env,
        "OTEL_TELE_DATA_DIR": str(tmp_path / "data"),
        "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
        **extra,
    }


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another socket is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--otlp-grpc", "nonsense"], "--otlp-grpc 'nonsense': expected HOST:PORT"),
        (["--otlp-grpc", "127.0.0.1:0", "--http", "nonsense"], "--http 'nonsense': expected HOST:PORT"),
        (["--otlp-grpc", "127.0.0.1:99999"], "--otlp-grpc '127.0.0.1:99999': expected HOST:PORT"),
        (["--otlp-grpc", "127.0.0.1:BUSY"], "--otlp-grpc 127.0.0.1:BUSY: cannot listen"),
        (["--otlp-grpc", "127.0.0.1:0", "--http", "127.0.0.1:BUSY"], "--http 127.0.0.1:BUSY: cannot listen"),
    ],
)
def test_bad_or_busy_address_is_one_line_and_exit_1(
    tmp_path: Path, busy_port: int, argv: list[str], message: str
) -> None:
    argv = [arg.replace("BUSY", str(busy_port)) for arg in argv]
    done = subprocess.run(
        [CLI, "serve", *argv], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("otel-tele serve: "), done.stderr
    assert message.replace("BUSY", str(busy_port)) in lines[0]


def _start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], re.Match[str]]:
    process = subprocess.Popen(
        [CLI, "serve", "--otlp-grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        env=_env(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().rstrip("\n")
    match = START.match(line)
    if match is None:
        process.kill()
        pytest.fail(f"unexpected start line {line!r}: {process.communicate(timeout=30)}")
    return process, match


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_start_line_lists_every_address_and_a_signal_stops_it_promptly(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """Every announced address answers; the server's own metrics are on its /metrics (not sent over
    OTLP to anyone); the signal ends it with exit 0 and nothing on stderr."""
    process, match = _start(tmp_path)
    grpc_port, http_port, prometheus_port = (int(match.group(i)) for i in (1, 2, 3))
    try:
        assert port_open(grpc_port) and port_open(http_port)
        assert httpx.get(f"http://127.0.0.1:{http_port}/v1/runs", timeout=30).status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=30).text
        assert "otel_tele_sink_exported_total" in metrics
    finally:
        started = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        stopped_s = time.monotonic() - started
    assert process.returncode == 0, err
    assert err == "" and out == "", (out, err)
    # Measured, not a timing test: reported so a regression to a multi-second stop is visible.
    print(f"serve stopped {stopped_s:.2f}s after {signum.name}")
    assert stopped_s < 5.0, f"{signum.name} took {stopped_s:.2f}s"


def test_self_telemetry_goes_over_otlp_only_when_asked(tmp_path: Path) -> None:
    """An OTLP endpoint in the environment (set for other programs) does not make serve export its own
    metrics there; naming ``otlp`` in OTEL_METRICS_EXPORTER does."""
    collector = OtlpReceiver()
    endpoint = f"http://127.0.0.1:{collector.port}"
    try:
        for asked in (False, True):
            extra = {"OTEL_METRICS_EXPORTER": "otlp,prometheus"} if asked else {}
            process, _match = _start(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **extra)
            process.send_signal(signal.SIGTERM)  # shutdown pushes a final collection to every reader
            _out, err = process.communicate(timeout=30)
            assert process.returncode == 0 and err == "", err
            assert bool(collector.metrics) is asked
    finally:
        collector.stop()


def test_an_idle_serve_writes_no_capture_bundle(tmp_path: Path) -> None:
    """Idle through capture collections (one-minute bins): no bundle directories."""
    process, match = _start(tmp_path, OTEL_TELE_CAPTURE_BIN_SIZE="1", OTEL_TELE_CAPTURE_BIN_UNIT="minutes")
    prometheus_port = int(match.group(3))
    # Wait on the server's own books, not on a clock: the capture sink has seen (and not routed) its
    # self-metrics, so windows were open for bundles.
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "the capture sink never saw a collection"
        text = httpx.get(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=30).text
        if re.search(r'otel_tele_sink_not_routed_total\{[^}]*otel_tele_sink="capture"[^}]*\} [1-9]', text):
            break
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0
    assert not list((tmp_path / "data").rglob("manifest.json"))
