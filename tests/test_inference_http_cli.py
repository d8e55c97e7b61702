"""The /telemetry routes on a real uvicorn and the ``otel-tele inference`` commands, on both stores."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

import otel_tele
from otel_tele.cli import main
from otel_tele.cli._doctor import destinations
from otel_tele.http_inference import inference_router

from . import _pg
from ._pg import INJECTION, Env
from ._robot_helpers import UvicornThread
from ._services import free_port

pg_dsn, clean_pg, env = _pg.pg_dsn, _pg.clean_pg, _pg.env  # fixtures


@pytest.fixture
def client(env: Env) -> Iterator[httpx.Client]:
    """The router, over the env's logger, mounted in an app served by uvicorn."""
    app = FastAPI()
    app.include_router(inference_router(env.logger))
    with UvicornThread(app, free_port()) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def _seed(env: Env) -> None:
    for model, seconds, tokens in (("fast", 0.1, 100), ("slow", 2.0, 100), ("fast", 0.3, 100)):
        assert env.logger.record_thought(model, seconds, tokens)
    assert env.logger.record_load("fast", 1.5)


def test_routes_answer_with_the_query_api(env: Env, client: httpx.Client) -> None:
    """GET /telemetry/footprint, /60day, /efficiency return the spec's shapes over the stored data."""
    _seed(env)
    footprint = client.get("/telemetry/footprint").json()
    assert footprint["table_sizes"][0]["table"] == "system_telemetry" and footprint["row_count"] == 4
    trends = client.get("/telemetry/60day").json()["model_trends"]
    assert [t["model"] for t in trends] == ["fast", "slow"]
    only_slow = client.get("/telemetry/60day", params={"component": "slow"}).json()
    assert [t["model"] for t in only_slow["model_trends"]] == ["slow"] and only_slow["component"] == "slow"
    efficiency = client.get("/telemetry/efficiency", params={"hours": 1, "component": "fast"}).json()
    assert efficiency["window_hours"] == 1 and [m["model"] for m in efficiency["models"]] == ["fast"]
    assert efficiency["models"][0]["weighted_efficiency_ms_per_token"] == pytest.approx(2.0)


def test_routes_are_read_only_and_validate_parameters(env: Env, client: httpx.Client) -> None:
    """Only GET; bad hours/component get 422; hostile parameters leave schema and data unchanged."""
    _seed(env)
    client.get("/telemetry/footprint")
    schema, rows = env.schema(), env.raw_count()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert client.request(method, "/telemetry/footprint").status_code == 405
    for params in (
        {"hours": -1},
        {"hours": "abc"},
        {"hours": 10**9},
        {"hours": "nan"},
        {"component": "x" * 300},
    ):
        assert client.get("/telemetry/efficiency", params=params).status_code == 422, params
    for hostile in (INJECTION, "' OR '1'='1", "fast'; DELETE FROM system_telemetry; --", "\x00"):
        response = client.get("/telemetry/efficiency", params={"component": hostile, "hours": "24"})
        assert response.status_code == 200 and response.json()["models"] == []
    response = client.get("/telemetry/efficiency", params={"hours": "1; DROP TABLE system_telemetry"})
    assert response.status_code == 422
    assert env.schema() == schema and env.raw_count() == rows


def test_cli_stats_footprint_prune(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """otel-tele inference stats|footprint|prune print tables and JSON from the same store."""
    _seed(env)
    env.cap.flush()
    store = ["--dsn", env.dsn] if env.dsn else ["--data-dir", str(env.data_dir)]
    monkeypatch.delenv("OTEL_TELE_POSTGRES_DSN", raising=False)
    assert main(["inference", "stats", *store]) == 0
    out = capsys.readouterr().out
    assert "Efficiency ranking" in out and out.index(" fast ") < out.index(" slow ")
    assert main(["inference", "stats", "--format", "json", "--component", "slow", *store]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["model"] for m in data["efficiency"]["models"]] == ["slow"]
    # --component filters the 60-day table too (it used to list every model).
    assert [t["model"] for t in data["statistics"]["model_trends"]] == ["slow"]
    assert main(["inference", "stats", "--format", "json", *store]) == 0
    assert [t["model"] for t in json.loads(capsys.readouterr().out)["statistics"]["model_trends"]] == [
        "fast",
        "slow",
    ]
    assert main(["inference", "footprint", *store]) == 0
    assert "system_telemetry" in capsys.readouterr().out
    assert main(["inference", "footprint", "--format", "json", *store]) == 0
    assert json.loads(capsys.readouterr().out)["row_count"] == 4
    assert main(["inference", "prune", "--format", "json", *store]) == 0
    assert json.loads(capsys.readouterr().out)["deleted_rows"] == 0
    assert main(["inference", "stats", "--hours", "-5", *store]) == 2
    assert "hours must be" in capsys.readouterr().err
    assert main(["inference", "stats", "--component", INJECTION, "--format", "json", *store]) == 0
    assert json.loads(capsys.readouterr().out)["efficiency"]["models"] == []
    assert env.raw_count() == 4


def test_dsn_password_never_shown(
    pg_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """doctor, describe(), CLI errors and logs show the DSN with its password redacted."""
    secret = "s3cr3t-Pa55"
    good = pg_dsn.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    if good == pg_dsn:
        good = f"{pg_dsn} password={secret}"
    bad = f"postgresql://postgres:{secret}@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"
    monkeypatch.setenv("OTEL_TELE_POSTGRES_DSN", good)
    monkeypatch.setenv("OTEL_TELE_SINKS", "postgres")
    with caplog.at_level(logging.DEBUG):
        rows = destinations(otel_tele._settings.resolve({}))
        assert main(["doctor"]) == 0
        assert main(["inference", "footprint", "--dsn", bad]) == 1
        failed = _pg.log_into_unreachable_store(bad)
    out = capsys.readouterr()
    postgres_row = next(r for r in rows if r["exporter"] == "sink:postgres")
    assert postgres_row["reachable"] is True and "***" in postgres_row["destination"]
    assert failed.failed == 1 and failed.reconciles
    for text in (out.out, out.err, caplog.text, json.dumps(rows)):
        assert secret not in text
    assert "***" in out.out and "***" in out.err
