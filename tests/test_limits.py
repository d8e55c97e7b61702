"""Limits an attacker cannot drive past (issue 13 §4), through a real ``otel-tele serve`` process:
body limits, JSON depth, 400 for malformed input, ASCII digits, a corrupt database, and the OTLP
receiver's memory budget (RESOURCE_EXHAUSTED so clients retry)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc

from otel_tele import testing
from otel_tele._http_limits import MAX_BODY_BYTES, ascii_int
from otel_tele._receiver import OtlpGrpcReceiver
from otel_tele.http_capture import MAX_CAPTURE_BODY_BYTES

from ._serve import Serve, serve_process
from .sink_samples.capture import fixture_run

RUN = "run_deterministic_72ca609c"
TOKEN = "limits-test-token-0123456789"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    tmp_path = tmp_path_factory.mktemp("serve")
    fixture_run(tmp_path / "data" / "runs", RUN)
    with serve_process(tmp_path, "--otlp-max-message-bytes", "65536", token=TOKEN) as server:
        yield server


def _get(serve: Serve, path: str, **params: str) -> httpx.Response:
    return httpx.get(serve.url + path, params=params, headers=serve.headers, timeout=30)


def _post(serve: Serve, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        serve.url + "/v1/telemetry/captures",
        content=content,
        headers={"content-type": "application/json", **serve.headers, **headers},
        timeout=30,
    )


def test_capture_bodies_over_the_limit_are_413_declared_or_streamed(serve: Serve) -> None:
    big = b'{"source": {"runId": "' + b"x" * (MAX_CAPTURE_BODY_BYTES + 10) + b'"}}'
    declared = _post(serve, big)
    assert declared.status_code == 413 and str(MAX_CAPTURE_BODY_BYTES) in declared.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"source": {"runId": "'
        for _ in range(40):
            yield b"y" * 64 * 1024
        yield b'"}}'

    streamed = httpx.post(
        serve.url + "/v1/telemetry/captures",
        content=chunks(),
        headers={"content-type": "application/json", **serve.headers},
        timeout=30,
    )
    assert streamed.status_code == 413
    assert not (serve.data_dir / "captures").exists() or not any((serve.data_dir / "captures").iterdir())


def test_every_route_caps_its_body(serve: Serve) -> None:
    """A body over serve's 1 MiB cap is 413 on any route, GET ones included."""
    response = httpx.request(
        "GET",
        serve.url + "/telemetry/footprint",
        content=b"z" * (MAX_BODY_BYTES + 1),
        headers=serve.headers,
        timeout=30,
    )
    assert response.status_code == 413


@pytest.mark.parametrize("depth", [33, 100, 200_000])
def test_deeply_nested_json_is_400_not_500(serve: Serve, depth: int) -> None:
    body = b'{"source": {"runId": "' + RUN.encode() + b'"}, "x": ' + b"[" * depth + b"]" * depth + b"}"
    response = _post(serve, body)
    assert response.status_code in (400, 413), response.text
    if len(body) <= MAX_CAPTURE_BODY_BYTES:
        assert response.status_code == 400 and "nests deeper" in response.json()["error"]


@pytest.mark.parametrize(
    "limit", ["\u00b2", "\u0661\u0660", "1e2", "-1", "0", "1001", " 5", "5 ", "0x10", ""]
)
def test_limits_take_ascii_digits_only(serve: Serve, limit: str) -> None:
    response = _get(serve, "/api/debug/query", table="dds_commands", limit=limit)
    assert response.status_code == 400, (limit, response.status_code, response.text)


@pytest.mark.parametrize("hours", ["abc", "\u0661\u0660", "-1", "nan", "1e9"])
def test_malformed_query_parameters_are_400(serve: Serve, hours: str) -> None:
    response = _get(serve, "/telemetry/efficiency", hours=hours)
    assert response.status_code == 400, (hours, response.text)
    assert response.json() == {"detail": "invalid request parameter: hours"}  # the value is not echoed


def test_a_corrupt_database_is_a_clear_error_without_its_path(serve: Serve) -> None:
    serve.data_dir.mkdir(parents=True, exist_ok=True)
    db = serve.data_dir / "telemetry.db"
    assert _get(serve, "/api/debug/query", table="dds_commands").status_code in (
        200,
        404,
    )
    saved = db.read_bytes() if db.exists() else None
    db.write_bytes(b"this is not a database" * 100)
    try:
        response = _get(serve, "/api/debug/query", table="dds_commands", limit="5")
        assert response.status_code == 503, response.text
        assert str(serve.data_dir) not in response.text and "Traceback" not in response.text
    finally:
        if saved is None:
            db.unlink()
        else:
            db.write_bytes(saved)


def test_a_raw_content_length_that_is_not_a_number_is_400(serve: Serve) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", serve.http_port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/telemetry/captures")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Authorization", serve.headers["authorization"])
        connection.putheader("Content-Length", "\u0661\u0660".encode().decode("latin-1"))
        connection.endheaders()
        status = connection.getresponse().status
    finally:
        connection.close()
    assert status == 400


def _logs_request(records: int, size: int) -> logs_service_pb2.ExportLogsServiceRequest:
    request = logs_service_pb2.ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for i in range(records):
        record = scope.log_records.add()
        record.time_unix_nano = i + 1
        record.body.string_value = "b" * size
    return request


def test_an_otlp_request_over_the_message_limit_is_resource_exhausted(serve: Serve) -> None:
    """serve --otlp-max-message-bytes 65536: a larger request is RESOURCE_EXHAUSTED, a small one lands."""
    with grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}") as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Export(_logs_request(100, 1000), metadata=serve.metadata, timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        stub.Export(_logs_request(10, 10), metadata=serve.metadata, timeout=30)


def test_the_receiver_refuses_past_its_inflight_budget_and_accepts_after() -> None:
    """While decoding holds the whole budget, the next request is RESOURCE_EXHAUSTED (retryable);
    once it is given back, the same request is accepted and its records arrive."""
    with testing.capture() as cap:
        receiver = OtlpGrpcReceiver(
            cap.telemetry, "127.0.0.1:0", max_message_bytes=1 << 20, max_inflight_bytes=1 << 20
        )
        try:
            request = _logs_request(50, 100)
            assert receiver.budget.try_take(receiver.budget.limit)  # as if other requests were decoding
            with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
                stub = logs_service_pb2_grpc.LogsServiceStub(channel)
                with pytest.raises(grpc.RpcError) as info:
                    stub.Export(request, timeout=30)
                assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert receiver.budget.refused == 1 and cap.logs() == []
                receiver.budget.give_back(receiver.budget.limit)
                stub.Export(request, timeout=30)
            assert receiver.budget.used == 0
            cap.flush()
            assert len(cap.logs()) == 50
        finally:
            receiver.stop()


def test_ascii_int() -> None:
    assert ascii_int("10", low=1, high=100) == 10
    for raw in ("\u00b2", "\u0661\u0660", "1_0", "+1", "", "1" * 19):
        assert ascii_int(raw, low=0, high=10**20) is None
