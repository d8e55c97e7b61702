"""collector-config/ works with the real binaries: agent -> gateway -> storage over rotel, and the
Prometheus scrape config and alert rules pass promtool (including the alert unit tests)."""

from __future__ import annotations

import os
import shutil
import string
import subprocess
from pathlib import Path

import pytest

import otel_tele

from ._otlp_receiver import OtlpReceiver
from ._services import Service, free_port, rotel_agent

CONFIG = Path(__file__).resolve().parent.parent / "collector-config"


def load_env_file(path: Path, values: dict[str, str]) -> dict[str, str]:
    """KEY=VALUE lines with ${NAME} placeholders filled from ``values`` (missing ones fail)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, raw = line.partition("=")
            env[key] = string.Template(raw).substitute(values)
    return env


def test_agent_and_gateway_configs_carry_telemetry_to_storage(tmp_path: Path) -> None:
    """A service sends to the agent, the agent to the gateway, the gateway to the storage endpoint."""
    storage = OtlpReceiver()
    ports = {name: free_port() for name in ("ag", "ah", "gg", "gh")}
    values = {
        "AGENT_GRPC_ENDPOINT": f"127.0.0.1:{ports['ag']}",
        "AGENT_HTTP_ENDPOINT": f"127.0.0.1:{ports['ah']}",
        "GATEWAY_GRPC_ENDPOINT": f"127.0.0.1:{ports['gg']}",
        "GATEWAY_HTTP_ENDPOINT": f"127.0.0.1:{ports['gh']}",
        "GATEWAY_ENDPOINT": f"http://127.0.0.1:{ports['gg']}",
        "STORAGE_ENDPOINT": f"http://127.0.0.1:{storage.port}",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROTEL_")}
    gateway = Service(
        "gateway",
        [rotel_agent(), "start"],
        tmp_path,
        env={**clean, **load_env_file(CONFIG / "rotel-gateway.env", values)},
    )
    agent = Service(
        "agent",
        [rotel_agent(), "start"],
        tmp_path,
        env={**clean, **load_env_file(CONFIG / "rotel-agent.env", values)},
    )
    try:
        gateway.wait_ready(ports["gg"], ports["gh"])
        agent.wait_ready(ports["ag"], ports["ah"])
        telemetry = otel_tele.setup(
            local=True,
            service_name="through-tiers",
            otlp_endpoint=f"http://127.0.0.1:{ports['ag']}",
            traces_exporter="otlp",
            logs_exporter="otlp",
            metrics_exporter="none",
        )
        with telemetry.tracer("t").start_as_current_span("hop"):
            telemetry.events.emit("robot.system.event", {"robot.system.event_type": "connect"})
        assert telemetry.force_flush(10_000)
        telemetry.shutdown(5_000)
        assert storage.wait_for(lambda: bool(storage.traces and storage.logs), 30), agent.log_text()
    finally:
        agent.stop()
        gateway.stop()
        storage.stop()
    [(resource, span)] = list(storage.spans())
    assert span.name == "hop" and resource["service.name"] == "through-tiers"
    assert resource.get("otel_tele.tier") == "agent"  # the agent's resource attributes were applied
    assert [record.event_name for _r, record in storage.log_records()] == ["robot.system.event"]


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"), reason="promtool (Debian prometheus) missing"
)
@pytest.mark.parametrize(
    "argv",
    [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ],
)
def test_prometheus_config_and_alert_rules(argv: list[str]) -> None:
    """promtool accepts the scrape config and rules, and the alert unit tests pass."""
    done = subprocess.run(
        [PROMTOOL or "promtool", *argv], cwd=CONFIG, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
