"""Who may talk to ``otel-tele serve`` (issue 13 §2), through real serve processes: bearer tokens for
HTTP and OTLP/gRPC, loopback-only without a token, TLS with a certificate generated here, the Host
allow-list, JSON-only writes, no CORS, and responses that carry no path, DSN part or stack trace."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from psycopg.conninfo import conninfo_to_dict

import otel_tele
from otel_tele._http_guard import Access, AccessError, access_for, load_token

from . import _pg
from ._robot_helpers import wait_for
from ._serve import Serve, serve_process
from ._services import free_port
from .sink_samples.capture import fixture_run

pg_dsn = _pg.pg_dsn  # fixture

RUN = "run_deterministic_72ca609c"
TOKEN = "t0ken-for-tests-0123456789abcdef"
JSON = {"content-type": "application/json"}
QUERIES: tuple[dict[str, str], ...] = (
    {},
    {"table": "dds_commands", "limit": "5"},
    {"limit": "x"},
    {"hours": "-1"},
    {"hours": "24", "component": "m"},
)


def _capture_body(run_id: str = RUN, **output: Any) -> bytes:
    return json.dumps({"source": {"type": "run", "runId": run_id}, "output": output}).encode()


def _otlp_logs(n: int = 3) -> logs_service_pb2.ExportLogsServiceRequest:
    request = logs_service_pb2.ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for i in range(n):
        record = scope.log_records.add()
        record.time_unix_nano = i + 1
        record.body.string_value = f"hello {i}"
    return request


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture(scope="module")
def with_token(tmp_path_factory: pytest.TempPathFactory, token_file: Path) -> Iterator[Serve]:
    tmp_path = tmp_path_factory.mktemp("serve-token")
    fixture_run(tmp_path / "data" / "runs", RUN)
    with serve_process(tmp_path, "--token-file", str(token_file)) as server:
        yield server


@pytest.fixture(scope="module")
def open_loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    tmp_path = tmp_path_factory.mktemp("serve-open")
    fixture_run(tmp_path / "data" / "runs", RUN)
    with serve_process(tmp_path) as server:
        yield server


def test_every_http_route_needs_the_token(with_token: Serve) -> None:
    """No token, a wrong one or another scheme: 401 on every route (docs and schema included)."""
    for path in (
        "/telemetry/footprint",
        "/v1/runs",
        f"/v1/runs/{RUN}",
        "/api/debug/query",
        "/docs",
        "/openapi.json",
    ):
        for header in (
            {},
            {"authorization": "Bearer wrong-token-wrong-token"},
            {"authorization": f"Basic {TOKEN}"},
        ):
            response = httpx.get(with_token.url + path, headers=header)
            assert response.status_code == 401, (path, header, response.status_code)
            assert response.headers["www-authenticate"] == "Bearer"
    good = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.get(with_token.url + "/v1/runs", headers=good).status_code == 200
    assert httpx.get(with_token.url + "/openapi.json", headers=good).status_code == 200
    created = httpx.post(with_token.url + "/v1/telemetry/captures", content=_capture_body(captureKey="ok"),
                         headers={**good, **JSON})  # fmt: skip
    assert created.status_code == 200, created.text


def test_otlp_needs_the_token_in_grpc_metadata(with_token: Serve) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{with_token.grpc_port}") as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        for metadata in ((), (("authorization", "Bearer nope-nope-nope-nope"),)):
            with pytest.raises(grpc.RpcError) as info:
                stub.Export(_otlp_logs(), metadata=metadata, timeout=30)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(_otlp_logs(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30)


def test_writes_must_be_json_and_hosts_must_be_allowed(with_token: Serve) -> None:
    """A text/plain POST (what a cross-site form sends without preflight) is 415 and generates
    nothing; a rebinding Host is 421; an attacker's Origin gets no CORS headers."""
    good = {"authorization": f"Bearer {TOKEN}"}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""):
        response = httpx.post(
            with_token.url + "/v1/telemetry/captures",
            content=_capture_body(captureKey="plain", overwrite=True),
            headers={**good, "content-type": content_type},
        )
        assert response.status_code == 415, (content_type, response.status_code)
    assert not (with_token.data_dir / "captures" / "plain").exists()
    for host in ("attacker.example", "attacker.example:80", "127.0.0.1.nip.io", ""):
        response = httpx.get(with_token.url + "/v1/runs", headers={**good, "host": host})
        assert response.status_code in (400, 421), (host, response.status_code)
    for allowed in (f"127.0.0.1:{with_token.http_port}", f"localhost:{with_token.http_port}"):
        assert httpx.get(with_token.url + "/v1/runs", headers={**good, "host": allowed}).status_code == 200
    response = httpx.get(with_token.url + "/v1/runs", headers={**good, "origin": "http://attacker.example"})
    assert response.status_code == 200
    assert not any(k.lower().startswith("access-control-") for k in response.headers)


def test_without_a_token_reads_stay_open_on_loopback_and_writes_do_not(open_loopback: Serve) -> None:
    assert httpx.get(open_loopback.url + "/v1/runs").status_code == 200
    refused = httpx.post(open_loopback.url + "/v1/telemetry/captures", content=_capture_body(captureKey="x"),
                         headers=JSON)  # fmt: skip
    assert refused.status_code == 401 and "token" in refused.json()["detail"]
    assert httpx.get(open_loopback.url + "/v1/runs", headers={"host": "evil.example"}).status_code == 421
    with grpc.insecure_channel(f"127.0.0.1:{open_loopback.grpc_port}") as channel:
        logs_service_pb2_grpc.LogsServiceStub(channel).Export(_otlp_logs(), timeout=30)


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.0.2.7"])
def test_serve_refuses_a_non_loopback_address_without_a_token(tmp_path: Path, bind: str) -> None:
    cli = str(Path(sys.executable).parent / "otel-tele")
    address = f"[{bind}]:{free_port()}" if ":" in bind else f"{bind}:{free_port()}"
    result = subprocess.run(
        [cli, "serve", "--otlp-grpc", "127.0.0.1:0", "--http", address],
        capture_output=True,
        text=True,
        timeout=60,
        env={"OTEL_TELE_DATA_DIR": str(tmp_path / "d"), "OTEL_TELE_SINKS": "none", "PATH": ""},
    )
    assert result.returncode == 2, result
    assert "without a token" in result.stderr and "OTEL_TELE_SERVE_TOKEN" in result.stderr
    with pytest.raises(AccessError):
        access_for([f"{bind}:1"], token=None)
    assert access_for([f"{bind}:1"], token=TOKEN).token == TOKEN


def test_tokens_come_from_a_file_or_the_environment_and_are_checked(tmp_path: Path) -> None:
    assert load_token(None, {"OTEL_TELE_SERVE_TOKEN": TOKEN}) == TOKEN
    assert load_token(None, {}) is None
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(AccessError):
        load_token(str(short), {})
    with pytest.raises(AccessError):
        load_token(str(tmp_path / "missing"), {})
    access = Access(token=TOKEN)
    assert access.authorized(f"Bearer {TOKEN}") and access.authorized(f"bearer {TOKEN}")
    for header in (None, "", TOKEN, f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer \u00e9\u00e9"):
        assert not access.authorized(header)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_for_http_and_otlp_with_a_generated_certificate(
    tmp_path: Path, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    with serve_process(
        tmp_path, "--token-file", str(token_file), "--tls-cert", str(cert), "--tls-key", str(key)
    ) as server:
        good = {"authorization": f"Bearer {TOKEN}"}
        https = f"https://127.0.0.1:{server.http_port}"
        assert (
            httpx.get(
                https + "/v1/runs", headers=good, verify=ssl.create_default_context(cafile=str(cert))
            ).status_code
            == 200
        )
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/v1/runs", headers=good, timeout=5)  # plain HTTP is not served
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{server.grpc_port}", credentials) as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            stub.Export(_otlp_logs(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30)
        plain = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        with plain, pytest.raises(grpc.RpcError):
            logs_service_pb2_grpc.LogsServiceStub(plain).Export(_otlp_logs(), timeout=5)
        # OTLP/HTTP: the same certificate and token.
        otlp_https = f"https://127.0.0.1:{server.otlp_http_port}/v1/logs"
        verify = ssl.create_default_context(cafile=str(cert))
        body, protobuf = _otlp_logs().SerializeToString(), {"content-type": "application/x-protobuf"}
        assert (
            httpx.post(otlp_https, content=body, headers={**protobuf, **good}, verify=verify).status_code
            == 200
        )
        assert httpx.post(otlp_https, content=body, headers=protobuf, verify=verify).status_code == 401
        with pytest.raises(httpx.HTTPError):
            httpx.post(
                server.otlp_http_url + "/v1/logs", content=body, headers={**protobuf, **good}, timeout=5
            )

        # Our own exporter, configured only with the standard variables, lands rows through TLS.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(cert))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{TOKEN}")
        client = otel_tele.setup(
            local=True,
            sinks="none",
            otlp_endpoint=f"https://127.0.0.1:{server.grpc_port}",
            traces_exporter="none",
            logs_exporter="otlp",
            metrics_exporter="none",
        )
        for seq in range(5):
            client.events.emit("robot.dds.command", {"robot.dds.seq": seq, "robot.dds.funcode": 1})
        assert client.force_flush(15_000)
        client.shutdown(5_000)

        def stored() -> int:
            query = {"table": "dds_commands", "limit": "100"}
            response = httpx.get(
                https + "/api/debug/query",
                params=query,
                headers=good,
                verify=ssl.create_default_context(cafile=str(cert)),
            )
            return int(response.json().get("count", 0)) if response.status_code == 200 else 0

        assert wait_for(lambda: stored() == 5, what="rows through TLS")


def test_no_response_of_any_route_carries_a_path_a_dsn_part_or_a_stack_trace(
    tmp_path: Path, token_file: Path, pg_dsn: str
) -> None:
    """Every route of the OpenAPI schema, with good, missing and malformed input, and failures."""
    runs = tmp_path / "data" / "runs"
    fixture_run(runs, RUN)
    broken = fixture_run(runs, "run_broken")
    (broken / "spec.yaml").unlink()
    (broken / "model" / "model.yaml").unlink()
    dsn = conninfo_to_dict(pg_dsn)
    env = {"OTEL_TELE_POSTGRES_DSN": pg_dsn}
    with serve_process(tmp_path, "--token-file", str(token_file), env=env, sinks="sqlite,postgres") as server:
        client = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=60)
        schema = client.get("/openapi.json").json()
        responses: list[httpx.Response] = []
        for path, methods in schema["paths"].items():
            for method in methods:
                for run_id in (RUN, "run_missing", "run_broken", "..", "\u00b2"):
                    url = path.replace("{run_id}", run_id)
                    if method == "get":
                        for params in QUERIES:
                            responses.append(client.get(url, params=params))
                    else:
                        bodies = (
                            _capture_body(run_id, captureKey="walk", overwrite=True),
                            b"{",
                            b"[" * 100 + b"]" * 100,
                            _capture_body(run_id, directory="/etc"),
                        )
                        for body in bodies:
                            responses.append(client.post(url, content=body, headers=JSON))
        responses.append(client.get("/docs"))
        client.close()
    statuses = {r.status_code for r in responses}
    assert {200, 400, 404, 500} <= statuses, statuses  # the walk reached successes and failures
    forbidden = [str(tmp_path), str(tmp_path.resolve()), "Traceback", 'File "', '.db"', "telemetry.db"]
    forbidden += [str(dsn.get(k)) for k in ("dbname", "port") if dsn.get(k)]
    absolute = re.compile(r"(?<![\w.])/(?:tmp|home|root|var|etc|usr)/[\w.-]")
    for response in responses:
        text = response.text
        for needle in forbidden:
            assert needle not in text, (str(response.request.url), needle, text[:300])
        assert not absolute.search(text), (str(response.request.url), text[:300])
