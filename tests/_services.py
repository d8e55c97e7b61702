"""Start and stop the real services tests need (collector, Prometheus) on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

import pytest
import rotel


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Service:
    """A child process we own: started with a log file, stopped by PID (TERM, then KILL)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, *ports: int, timeout_s: float = 30.0) -> None:
        """Block until every port accepts connections (or fail with the service's log)."""
        deadline = time.monotonic() + timeout_s
        while not all(port_open(port) for port in ports):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n{self.log_text()}")
            time.sleep(0.05)  # polling a socket for readiness, not guessing a duration

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()


def rotel_agent() -> str:
    return str(Path(rotel.__file__).parent / "rotel-agent")


def start_rotel(
    log_dir: Path,
    *,
    forward_to: str,
    name: str = "rotel",
    extra: list[str] | None = None,
    protocol: str = "grpc",
) -> tuple[Service, int, int]:
    """A rotel collector receiving OTLP gRPC + HTTP, forwarding everything over OTLP/``protocol``
    (``grpc`` or ``http``: protobuf to ``<forward_to>/v1/<signal>``)."""
    grpc_port, http_port = free_port(), free_port()
    argv = [
        rotel_agent(),
        "start",
        "--otlp-grpc-endpoint",
        f"127.0.0.1:{grpc_port}",
        "--otlp-http-endpoint",
        f"127.0.0.1:{http_port}",
        "--exporter",
        "otlp",
        "--otlp-exporter-endpoint",
        forward_to,
        "--otlp-exporter-protocol",
        protocol,
        "--batch-timeout",
        "50ms",
        *(extra or []),
    ]
    service = Service(name, argv, log_dir)
    service.wait_ready(grpc_port, http_port)
    return service, grpc_port, http_port


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )


NODE_DIR = Path(__file__).resolve().parent / "node"
NODE = shutil.which("node")
NPM = shutil.which("npm")
#: Skip the Node.js clients' tests only where node/npm are missing and CI is not set (.ci/dev check).
needs_node = pytest.mark.skipif(
    (NODE is None or NPM is None) and not os.environ.get("CI"), reason="node/npm not installed"
)


def node_clients() -> Path:
    """``tests/node`` with its npm packages (the OpenTelemetry JS SDK and its OTLP exporters),
    installed from the npm registry (``npm ci``: the versions ``package-lock.json`` pins) on first use,
    or when ``package.json`` names a package the folder lacks; kept there for the next run."""
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    if not all((NODE_DIR / "node_modules" / name).is_dir() for name in wanted):
        subprocess.run(
            [NPM or "npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_DIR
