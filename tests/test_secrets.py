"""Secrets never leave the process (issue 13 §3).

One pipeline with every sink (SQLite, Parquet capsules, capture bundles, PostgreSQL) and OTLP to a
real gRPC receiver; a FastAPI app under uvicorn, the robot collector, the inference logger, an FDA
run and flow meters plant 50+ secrets of different kinds. None may appear in any stored file, in
PostgreSQL or in what the OTLP receiver got, while the records themselves do arrive.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI, Request
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.flow import FlowMeters
from otel_tele.instrumentation.inference import TelemetryLogger
from otel_tele.instrumentation.robot import TelemetryCollector
from otel_tele.instrumentation.robot.fastapi import instrument_app

import otel_tele
from otel_tele import testing
from otel_tele._scrub import REDACTED, SANITIZE_HEADERS, Scrubber

from . import _pg
from ._otlp_receiver import OtlpReceiver
from ._pg import log_into_unreachable_store
from ._robot_helpers import UvicornThread
from .conftest import free_port

clean_pg, pg_dsn = _pg.clean_pg, _pg.pg_dsn  # fixtures

SANITIZE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"


def _luhn_card(prefix: str, n: int) -> str:
    """A 16-digit number passing the Luhn check, distinct per ``n``."""
    body = f"{prefix}{n:0{15 - len(prefix)}d}"
    for check in range(10):
        digits = body + str(check)
        total = 0
        for i, ch in enumerate(reversed(digits)):
            v = int(ch)
            if i % 2:
                v = v * 2 - 9 if v > 4 else v * 2
            total += v
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


class Secrets:
    """Unique secret strings; each one planted once and searched for everywhere."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def new(self, kind: str, value: str | None = None) -> str:
        secret = value or f"Sx{len(self.values):02d}{kind.replace('_', '')[:10]}Qz7"
        self.values[f"{kind}#{len(self.values)}"] = secret
        return secret


def _make_app(boom_secret: str) -> FastAPI:
    app = FastAPI()

    @app.get("/api/items")
    def items(q: str = "") -> dict[str, Any]:
        return {"q": q}

    @app.get("/api/reset/{token}")
    def reset(token: str) -> dict[str, Any]:
        return {"ok": True}

    @app.post("/api/login")
    async def login(request: Request) -> dict[str, Any]:
        await request.body()
        return {"ok": True}

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError(f"db failed: password={boom_secret}")

    return app


def _corpus(data_dir: Path, dsn: str, receiver: OtlpReceiver) -> dict[str, str]:
    """Everything stored, as text, per place: files (SQLite dumped, Parquet read), PostgreSQL, OTLP."""
    places: dict[str, str] = {}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("latin-1")
        if path.suffix == ".db":
            with sqlite3.connect(path) as conn:
                text += "\n".join(conn.iterdump())
        elif path.suffix == ".parquet":
            text += json.dumps(pq.read_table(path).to_pylist(), default=str)
        places[str(path.relative_to(data_dir))] = text
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            places[f"postgresql:{table}"] = json.dumps(rows, default=str)
    for signal in ("traces", "logs", "metrics"):
        requests = list(getattr(receiver, signal))
        places[f"otlp:{signal}"] = "".join(r.SerializeToString().decode("latin-1") for r in requests)
    return places


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    try:
        yield server
    finally:
        server.stop()


def test_fifty_planted_secrets_reach_no_store_and_no_otlp_receiver(
    tmp_path: Path, clean_pg: str, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = Secrets()
    s = planted.new
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", ".*")
    monkeypatch.setenv(SANITIZE, "placeholder")
    monkeypatch.delenv(SANITIZE)  # registered for restoring: setup() sets it
    data_dir = tmp_path / "telemetry"
    telemetry = otel_tele.setup(
        local=True,
        service_name="secrets-test",
        data_dir=data_dir,
        sinks=["sqlite", "capsule", "capture", "postgres"],
        postgres_dsn=clean_pg,
        otlp_endpoint=f"http://127.0.0.1:{receiver.port}",
        traces_exporter="otlp",
        logs_exporter="otlp",
        metrics_exporter="otlp",
    )
    assert os.environ[SANITIZE] == SANITIZE_HEADERS

    # -- web: query strings, headers, path segments, JSON/form bodies, exceptions ------------------
    app = _make_app(s("exception_in_handler"))
    instrument_app(app, telemetry=telemetry)
    with UvicornThread(app, free_port()) as server, httpx.Client(base_url=server.url) as client:
        query = {
            "password": s("password"),
            "token": s("token"),
            "api_key": s("api_key"),
            "user_pwd": s("user_pwd"),
            "sid": s("sid"),
            "q": "visible-query-marker",
        }
        assert client.get("/api/items", params=query).status_code == 200
        assert client.get(f"/api/items?dsn=postgresql://app:{s('dsn_in_query')}@db/x").status_code == 200
        headers = {
            "Authorization": f"Bearer {s('bearer_header')}",
            "Cookie": f"session={s('cookie')}",
            "X-Api-Key": s("x_api_key_header"),
            "X-Auth-Token": s("x_auth_token_header"),
        }
        assert client.get("/api/items", headers=headers).status_code == 200
        assert client.get(f"/api/reset/{s('path_token', 'Rt7kP2mX9vQ4wL8nB3cF6hJ1')}").status_code == 200
        body = {
            "new_pass": s("new_pass"),
            "passphrase": s("passphrase"),
            "pin": s("pin"),
            "otp": s("otp"),
            "x-auth": s("x_auth"),
            "auth_code": s("auth_code"),
            "bearer": s("bearer_field"),
            "sessid": s("sessid"),
            "csrf": s("csrf"),
            "sig": s("sig"),
            "refresh": s("refresh"),
            "database_url": f"postgres://u:{s('database_url_pw')}@h/db",
            "connection_string": s("connection_string"),
            "ssn": s("ssn", "078-05-1120"),
            "card_number": s("card_number", _luhn_card("4", 1)),
            "cvv": s("cvv"),
            "note": f"card on file {s('card_in_text', _luhn_card('5', 2))}",
            "nested": {"profile": {"accessToken": s("nested_access_token")}},
            "jwt_anywhere": s("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2FiY2Q"),
            "aws": s("aws_key", "AKIAQWERTYUIOPASDFGH"),
            "user": "visible-body-marker",
        }
        assert client.post("/api/login", json=body).status_code == 200
        assert client.post("/api/login", json=f"password={s('bare_string_body')}").status_code == 200
        form = {"password": s("form_password"), "otp_code": "x", "refresh_token": s("form_refresh")}
        assert client.post("/api/login", data=form).status_code == 200
        assert client.get("/api/boom").status_code == 500

    # -- robot: command data, system events ----------------------------------------------------
    collector = TelemetryCollector(telemetry=telemetry)
    collector.log_command(
        seq=1,
        funcode=1,
        joint_id=2,
        target_value=45.0,
        data={"api_secret": s("robot_api_secret"), "url": f"https://bot:{s('robot_userinfo')}@arm.local/x"},
    )
    collector.log_system_event(
        "connect",
        detail=f"connected with token={s('robot_detail_token')}",
        data={"credentials": {"user": "arm", "pass": s("robot_pass")}},
    )

    # -- inference: metadata ---------------------------------------------------------------------
    inference = TelemetryLogger(telemetry)
    assert inference.record(
        "THOUGHT_LATENCY",
        "gemma2:27b",
        12.5,
        {
            "prompt_secret": s("inference_prompt_secret"),
            "headers": {"Authorization": f"Basic {s('inference_basic')}"},
            "upstream": f"host=db password='{s('dsn_quoted')}\\'tail' user=x",
            "gh": s("github_token", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
            "marker": "visible-inference-marker",
        },
        "success",
    )

    # -- FDA: event payloads, notes, an exception ----------------------------------------------
    with pytest.raises(ValueError), fda.run("deconv_secret_v1", mode="dev", telemetry=telemetry) as run:
        run.iteration(
            iter=0, phase="GREEN", E=1.0, grad_norm=0.1, eta_dd=0.2, gamma=0.3, alpha=0.01,
            phi_residual=1e-3, invariant_drift_max=0.0,
        )  # fmt: skip
        run.event("NOTE", {"note": f"tuned with api_key={s('fda_note_api_key')}", "ok": "visible-fda-marker"})
        run.event("CONFIG", {"storage_dsn": s("fda_dsn"), "private_key": s("fda_private_key")})
        raise ValueError(f"solver diverged; secret={s('fda_exception_secret')}")

    # -- flow: node and class ids (provenance of the bundle) ----------------------------------
    node = FlowMeters(telemetry).node(f"OrderService password={s('flow_node_password')}")
    node.arrivals(5, class_id=f"Bearer {s('flow_class_bearer')}")
    node.served(4)
    meter = telemetry.meter("app")
    meter.create_counter("app.logins").add(1, {"user.api_key": s("metric_attr_api_key"), "route": "/login"})

    # -- plain logs and span exceptions ----------------------------------------------------------
    handler_logger = logging.getLogger("secrets-test-app")
    from opentelemetry.sdk._logs import LoggingHandler

    handler = LoggingHandler(logger_provider=telemetry.logger_provider)
    handler_logger.addHandler(handler)
    try:
        try:
            raise ConnectionError(f"cannot connect to redis://:{s('log_exception_pw')}@cache:6379")
        except ConnectionError:
            handler_logger.exception("login failed for token=%s", s("log_message_token"))
        with telemetry.tracer("app").start_as_current_span("work") as span:
            span.set_attribute("db.connection_string", s("span_conn_str"))
            span.set_attribute("http.request.header.authorization", [f"Bearer {s('span_header')}"])
            span.record_exception(PermissionError(f"denied: Authorization: Bearer {s('span_exc_bearer')}"))
    finally:
        handler_logger.removeHandler(handler)

    assert len(planted.values) >= 50, len(planted.values)
    assert telemetry.force_flush(30_000)
    assert receiver.wait_for(lambda: bool(receiver.traces and receiver.logs and receiver.metrics))
    collector.close()
    inference.close()
    assert telemetry.shutdown(30_000)

    places = _corpus(data_dir, clean_pg, receiver)
    everything = "\n".join(places.values())
    leaks = {
        kind: [place for place, text in places.items() if secret in text]
        for kind, secret in planted.values.items()
        if secret in everything
    }
    assert leaks == {}, leaks
    # The records arrived: markers of every domain are stored and redactions are visible.
    for marker in ("visible-query-marker", "visible-body-marker", "visible-inference-marker"):
        assert marker in places["telemetry.db"] or marker in everything, marker
    assert "visible-query-marker" in places["telemetry.db"]
    assert "visible-inference-marker" in places["postgresql:system_telemetry"]
    assert any("visible-fda-marker" in text for place, text in places.items() if place.endswith(".parquet"))
    assert any(place.startswith("captures") and "OrderService" in text for place, text in places.items())
    assert REDACTED in places["telemetry.db"] and REDACTED in places["otlp:traces"]
    assert "visible-query-marker" in places["otlp:traces"]


def test_the_scrubber_is_configured_once_from_settings() -> None:
    """Extra name stems, allow-listed names and extra value patterns come from setup()'s settings;
    the replacement never echoes what it matched."""
    telemetry = otel_tele.setup(
        local=True,
        sinks="none",
        traces_exporter="none",
        logs_exporter="none",
        metrics_exporter="none",
        scrub_keys=["employee_no"],
        scrub_allow_keys=["session"],
        scrub_patterns=[r"INT-[0-9]{6}"],
    )
    try:
        scrubber = telemetry.scrubber
        assert scrubber.attributes({"employee_no": "E1", "session": "kept", "note": "ref INT-123456"}) == {
            "employee_no": REDACTED,
            "session": "kept",
            "note": f"ref {REDACTED}",
        }
    finally:
        telemetry.shutdown(5_000)
    assert Scrubber().attributes({"session": "x"}) == {"session": REDACTED}


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://app:pw%zz@db/x", "pw%zz"),
        ("host=db password='p\\'tailSECRET' user=x", "tailSECRET"),
        ("host=db passwrd=TYPOSECRET user=x", "TYPOSECRET"),
        ("db failed: password=NESTEDSECRET", "NESTEDSECRET"),
        ("Bearer abcdefghSECRET", "abcdefghSECRET"),
        ('invalid percent-encoded token: "hunter2%zz"', "hunter2"),
        ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEpAIB"),
        ("key AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890"),
    ],
)
def test_value_rules_never_echo_the_match(text: str, secret: str) -> None:
    cleaned = Scrubber().text(text)
    assert secret not in cleaned and REDACTED in cleaned


def test_scrubbing_runs_on_the_exporting_thread_not_the_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records are scrubbed on the exporter's worker thread; what it exports carries no secret."""
    threads: list[str] = []
    original = Scrubber.log_records

    def spy(self: Scrubber, batch: list[Any]) -> None:
        threads.append(threading.current_thread().name)
        original(self, batch)

    monkeypatch.setattr(Scrubber, "log_records", spy)
    with testing.capture() as cap:
        cap.telemetry.events.emit(
            "robot.system.event",
            {"robot.system.event_type": "x", "robot.data_json": {"password": "CALLERSECRET"}},
        )
        cap.flush()
        exported = json.dumps([dict(r.log_record.attributes or {}) for r in cap.logs()], default=str)
    assert threads and threading.main_thread().name not in threads
    assert "CALLERSECRET" not in exported and REDACTED in exported


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("host=db password='pw\\'tailSECRETTAIL' user=x", "SECRETTAIL"),
        ("host=db passwrd=TYPOSECRET user=x dbname=t", "TYPOSECRET"),
        ("postgresql://app:PCTSECRET%zz@db:5432/x?sslmode=require&password=QUERYSECRET", "SECRET"),
        ("host=db 'unterminated TRAILSECRET", "TRAILSECRET"),
    ],
)
def test_dsn_redaction_shows_no_part_that_can_hold_a_secret(dsn: str, secret: str) -> None:
    shown = otel_tele._settings.redact_dsn(dsn)
    assert secret not in shown and "***" in shown
    settings = otel_tele._settings.resolve({"postgres_dsn": dsn}, environ={})
    assert all(secret not in value for _name, value, _source in settings.describe())


def test_bad_percent_encoding_in_a_dsn_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """psycopg's own error quotes the password of a DSN with bad percent-encoding; neither the pool's
    log lines nor ours may carry it."""
    secret = "PctLeakSecret77"
    with caplog.at_level(logging.DEBUG):
        stats = log_into_unreachable_store(
            f"postgresql://app:{secret}%zz@127.0.0.1:{free_port()}/x?connect_timeout=1"
        )
    assert stats.failed == 1 and stats.reconciles
    assert caplog.records, "the failure was logged"
    assert secret not in caplog.text


def test_prometheus_scrapes_are_scrubbed_too() -> None:
    """Metric attributes reach /metrics scrubbed (on the scrape's thread)."""
    telemetry = otel_tele.setup(
        local=True,
        sinks="none",
        traces_exporter="none",
        logs_exporter="none",
        metrics_exporter="prometheus",
        prometheus_port=0,
    )
    try:
        counter = telemetry.meter("app").create_counter("app.logins")
        counter.add(
            1, {"user.api_key": "PromSecretKey123", "url.query": "a=1&token=PromTok987", "route": "/x"}
        )
        assert telemetry.prometheus_address is not None
        host, port = telemetry.prometheus_address
        text = httpx.get(f"http://{host}:{port}/metrics", timeout=30).text
    finally:
        telemetry.shutdown(5_000)
    assert "app_logins" in text and REDACTED in text
    assert "PromSecretKey123" not in text and "PromTok987" not in text


def test_fast_paths_give_the_same_answers_as_the_rules() -> None:
    """The per-key and per-string caches skip work, never a secret: a number under a secret name is
    still redacted, a repeated clean string stays clean, a repeated secret string is redacted every
    time, and a string cached as clean elsewhere is still path-scrubbed under a URL key."""
    scrubber = Scrubber()
    token_path = "/api/reset/9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    for _ in range(3):  # the first pass fills the caches, the later ones use them
        out = scrubber.attributes(
            {
                "pin": 1234,
                "fda.E": 1.5,
                "phase": "GREEN",
                "note": "postgres://app:hunter2@db/x",
                "http.route": token_path,
                "url.path": token_path,
            }
        )
        assert out is not None
        assert out["pin"] == REDACTED and out["fda.E"] == 1.5 and out["phase"] == "GREEN"
        assert "hunter2" not in out["note"]
        assert out["http.route"] == token_path  # not a URL attribute: content rules only
        assert "9f8e7d6c5b4a39281706f5e4d3c2b1a0" not in out["url.path"]
    assert scrubber.attributes({"fda.E": 1.5, "phase": "GREEN"}) is None  # nothing to change: no copy


def test_an_error_shown_beside_the_books_holds_no_secret_and_no_path() -> None:
    """``error_summary``: what the health page shows as a sink's last error."""
    from otel_tele._scrub import error_summary

    dsn = error_summary(Exception("connection failed: postgresql://app:hunter2@db.example:5432/x"))
    assert "hunter2" not in dsn and dsn.startswith("Exception: connection failed: postgresql://")
    assert "hunter2" not in error_summary(Exception("host=db password=hunter2 dbname=x"))
    path = error_summary(FileNotFoundError(2, "No such file", "/srv/private dir/telemetry.db"))
    assert path == "FileNotFoundError: [Errno 2] No such file: '…/telemetry.db'"
    assert error_summary(OSError("disk full at /srv/data/x.parquet")) == "OSError: disk full at …/x.parquet"

    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert error_summary(Hostile()) == "Hostile"
    long = error_summary("x" * 10_000 + "\n\udcff")
    assert len(long) == 300 and "\n" not in long
