"""``opentelemetry-instrument uvicorn app:app`` (no code change) records what ``instrument_app`` records:
the stable HTTP semantic conventions, and ``web_requests`` rows with scrubbed params and the
correlation id (issue 11 §4)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from ._services import free_port, port_open

BIN = Path(sys.executable).parent
APP = textwrap.dedent("""
    from fastapi import FastAPI

    app = FastAPI()


    @app.post("/api/command/set-joint")
    async def set_joint(command: dict) -> dict:
        return {"ok": True}
""")


def test_zero_code_fastapi_matches_instrument_app(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    http_port, prometheus_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        OTEL_SERVICE_NAME="zero-code-api",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(prometheus_port),
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    process = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), "uvicorn", "app:app", "--port", str(http_port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # uvicorn announces readiness on its log
            if "Uvicorn running on" in line:
                break
        assert port_open(http_port) and port_open(prometheus_port)
        response = httpx.post(
            f"http://127.0.0.1:{http_port}/api/command/set-joint",
            json={"joint": 1, "token": "s3cret"},
            headers={"X-Correlation-ID": "corr-42"},
            timeout=30,
        )
        assert response.status_code == 200
        assert response.headers.get("X-Correlation-ID") == "corr-42"
        metrics = httpx.get(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=30).text
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn's own clean stop; the pipeline flushes at exit
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert re.search(
        r'^http_server_request_duration_seconds_count\{.*http_route="/api/command/set-joint"', metrics, re.M
    )
    assert "http_server_duration_milliseconds" not in metrics
    with sqlite3.connect(tmp_path / "telemetry" / "telemetry.db") as conn:
        rows = conn.execute(
            "SELECT endpoint, method, params_json, status_code, correlation_id FROM web_requests"
        ).fetchall()
    assert rows == [("/api/command/set-joint", "POST", '{"joint":1,"token":"[REDACTED]"}', 200, "corr-42")]
