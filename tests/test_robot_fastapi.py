"""FastAPI instrumentation against a real uvicorn: /api/ requests → web_requests rows, debug endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_tele.instrumentation.robot import TelemetryCollector
from otel_tele.instrumentation.robot.fastapi import (
    current_correlation_id,
    instrument_app,
    scrub,
    uninstrument_app,
)
from pydantic import BaseModel

from otel_tele import Telemetry
from otel_tele._settings import resolve
from otel_tele.http_robot import debug_router

from ._robot_helpers import UvicornThread, count, rows, sqlite_pipeline, wait_rows
from ._services import free_port

COLUMNS = "endpoint, method, params_json, status_code, correlation_id, ok"


class Joint(BaseModel):
    joint: int
    angle: float
    password: str | None = None


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/api/state/{joint}")
    def state(joint: int, verbose: bool = False) -> dict[str, Any]:
        return {"joint": joint, "cid": current_correlation_id()}

    @app.post("/api/command/set-joint")
    def set_joint(body: Joint) -> dict[str, Any]:
        return {"ok": True}

    @app.get("/api/fail")
    def fail() -> None:
        raise HTTPException(503, "arm offline")

    @app.get("/health")
    def health() -> str:
        return "ok"

    return app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Telemetry, Path, InMemoryMetricReader]]:
    """An instrumented app on real uvicorn writing to a private SQLite pipeline."""
    reader = InMemoryMetricReader()
    settings = resolve(
        {
            "sinks": "sqlite",
            "data_dir": tmp_path,
            "traces_exporter": "none",
            "metrics_exporter": "none",
            "logs_exporter": "none",
        }
    )
    telemetry = Telemetry(settings, local=True, extra_exporters={"metrics": [reader]})
    app = make_app()
    instrument_app(app, telemetry=telemetry)
    db = tmp_path / "telemetry.db"
    app.include_router(debug_router(db))
    with UvicornThread(app, free_port()) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client, telemetry, db, reader
    telemetry.shutdown(10_000)


def test_api_requests_become_rows(served: Any) -> None:
    """Each /api/ request is one web_requests row with route template, params, status, cid and ok."""
    client, telemetry, db, _ = served
    got = client.get("/api/state/3", params={"verbose": "true"}, headers={"X-Correlation-ID": "abc123"})
    assert got.headers["x-correlation-id"] == "abc123"
    assert got.json()["cid"] == "abc123"
    posted = client.post("/api/command/set-joint", json={"joint": 2, "angle": 45.5, "password": "hunter2"})
    generated = posted.headers["x-correlation-id"]
    assert len(generated) == 12
    assert client.get("/api/fail").status_code == 503
    assert client.get("/health").status_code == 200
    assert client.get("/api/nowhere").status_code == 404
    assert wait_rows(telemetry, db, "web_requests", 4) == 4
    stored = rows(db, "web_requests", COLUMNS)
    assert [r[:2] for r in stored] == [
        ("/api/state/{joint}", "GET"),
        ("/api/command/set-joint", "POST"),
        ("/api/fail", "GET"),
        ("/api/nowhere", "GET"),
    ]
    assert json.loads(stored[0][2]) == {"verbose": "true"}
    assert json.loads(stored[1][2]) == {"joint": 2, "angle": 45.5, "password": "[REDACTED]"}
    assert [r[3] for r in stored] == [200, 200, 503, 404]
    assert [r[4] for r in stored][:2] == ["abc123", generated]
    assert [r[5] for r in stored] == [1, 1, 0, 0]
    response_ms = rows(db, "web_requests", "response_ms")
    assert all(value[0] > 0 for value in response_ms)


def test_duration_metric_uses_stable_semconv(served: Any) -> None:
    """http.server.request.duration (seconds) is recorded per route template."""
    client, telemetry, _, reader = served
    client.get("/api/state/1")
    wait_rows(telemetry, served[2], "web_requests", 1)
    data = reader.get_metrics_data()
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    duration = metrics["http.server.request.duration"]
    assert duration.unit == "s"
    assert any(p.attributes.get("http.route") == "/api/state/{joint}" for p in duration.data.data_points)


def test_debug_endpoint(served: Any) -> None:
    """Allow-listed tables only, bounded limit, 400 for anything else, SQL fragments included."""
    client, telemetry, db, _ = served
    client.get("/api/state/1")
    wait_rows(telemetry, db, "web_requests", 1)
    ok = client.get("/api/debug/query", params={"table": "web_requests", "limit": "5"})
    assert ok.status_code == 200 and ok.json()["rows"][0]["endpoint"] == "/api/state/{joint}"
    for params in (
        {"table": "sqlite_master"},
        {"table": "web_requests; DROP TABLE web_requests"},
        {"table": "web_requests", "limit": "1; DELETE FROM web_requests"},
        {"table": "web_requests", "limit": "0"},
        {"table": "web_requests", "limit": "100000"},
        {"table": "web_requests", "limit": "-1"},
        {"table": "' OR 1=1 --"},
        {},
    ):
        assert client.get("/api/debug/query", params=params).status_code == 400, params
    telemetry.force_flush(10_000)
    assert count(db, "web_requests") >= 2  # nothing dropped


def test_weird_requests_never_break_the_app(served: Any) -> None:
    """Invalid JSON, huge bodies, bad correlation ids and non-UTF-8 query strings are handled."""
    client, telemetry, db, _ = served
    json_type = {"content-type": "application/json"}
    bad_json = client.post("/api/command/set-joint", content=b"{not json", headers=json_type)
    assert bad_json.status_code == 422
    huge = client.post("/api/command/set-joint", json={"joint": 1, "angle": 1.0, "note": "x" * 200_000})
    assert huge.status_code == 200
    odd = client.get("/api/state/1?q=%ff%fe", headers={"X-Correlation-ID": "bad id with spaces" * 10})
    assert len(odd.headers["x-correlation-id"]) == 12
    wait_rows(telemetry, db, "web_requests", 3)
    params = [json.loads(r[0]) for r in rows(db, "web_requests", "params_json")]
    assert params[0] == {"_body": "[not recorded: invalid JSON]"}
    assert "over" in params[1]["_body"]
    assert params[2]["q"] == "\ufffd\ufffd"


def test_standalone_collector_pipeline_and_uninstrument(tmp_path: Path) -> None:
    """Without setup(), instrument_app uses the collector's pipeline; uninstrument removes everything."""
    app = make_app()
    with TelemetryCollector(db_path=tmp_path / "robot.db") as collector:
        instrument_app(app, telemetry=collector.telemetry)
        instrument_app(app, telemetry=collector.telemetry)  # idempotent
        with UvicornThread(app, free_port()) as server:
            assert httpx.get(server.url + "/api/state/4").status_code == 200
        assert wait_rows(collector.telemetry, tmp_path / "robot.db", "web_requests", 1) == 1
        uninstrument_app(app)
        assert not any(
            getattr(m.cls, "__name__", "") == "RequestTelemetryMiddleware" for m in app.user_middleware
        )
        with UvicornThread(app, free_port()) as server:
            plain = httpx.get(server.url + "/api/state/4")
        assert "x-correlation-id" not in plain.headers
        collector.flush()
        assert count(tmp_path / "robot.db", "web_requests") == 1


def test_scrub_nested_secrets() -> None:
    """Secrets are redacted at any depth, under many spellings."""
    cleaned = scrub(
        {
            "user": "a",
            "Password": "x",
            "nested": [{"api_key": "k", "Authorization": "Bearer t"}],
            "refresh-token": "r",
            "author": "kept",
            "auth": "gone",
        }
    )
    assert cleaned == {
        "user": "a",
        "Password": "[REDACTED]",
        "nested": [{"api_key": "[REDACTED]", "Authorization": "[REDACTED]"}],
        "refresh-token": "[REDACTED]",
        "author": "kept",
        "auth": "[REDACTED]",
    }


def test_global_setup_pipeline_is_used(tmp_path: Path) -> None:
    """After setup(), instrument_app without arguments writes through the global pipeline."""
    telemetry = sqlite_pipeline(tmp_path)
    app = make_app()
    instrument_app(app, telemetry=telemetry)
    with UvicornThread(app, free_port()) as server:
        httpx.get(server.url + "/api/state/2")
    assert wait_rows(telemetry, tmp_path / "telemetry.db", "web_requests", 1) == 1
    telemetry.shutdown(10_000)
