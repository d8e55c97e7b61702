"""Real OTLP clients into a real ``otel-tele serve`` (issue 15 §4), each landing in a domain table
(a ``robot.dds.command`` event → a ``dds_commands`` row) and in the general store:

* the Node.js OpenTelemetry SDK over ``@opentelemetry/exporter-*-otlp-http`` (OTLP/JSON) and
  ``@opentelemetry/exporter-*-otlp-proto`` (binary protobuf): a span, an event log record, a counter;
* rotel (the collector from PyPI) exporting OTLP/HTTP into serve, fed by the Python SDK;
* ``curl`` with an OTLP/JSON body.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_tele.exporters.store.schema import with_int_times

from ._robot_helpers import wait_for
from ._serve import Serve, serve_process
from ._services import NODE, needs_node, node_clients, start_rotel


def _commands(data_dir: Path) -> list[tuple[Any, ...]]:
    db = data_dir / "telemetry.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT seq, funcode, joint_id, target_value FROM dds_commands ORDER BY seq"
            ).fetchall()
    except sqlite3.OperationalError:  # the table is created with the first row
        return []


def _store(data_dir: Path, dataset: str, service: str) -> list[dict[str, Any]]:
    table = ds.dataset(data_dir / "store" / dataset, format="parquet", partitioning="hive").to_table()
    return [r for r in with_int_times(table).to_pylist() if r["service_name"] == service]


@needs_node
def test_node_sdk_over_otlp_http_json_and_protobuf(tmp_path: Path) -> None:
    folder = node_clients()
    with serve_process(tmp_path, sinks="sqlite,store") as serve:
        for encoding in ("json", "proto"):
            done = subprocess.run(
                [NODE or "node", "client_http.js", encoding],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": serve.otlp_http_url},
            )
            assert done.returncode == 0, done.stderr
    assert serve.service.process.returncode == 0, serve.service.log_text()
    # JavaScript numbers arrive as doubles in both encodings: the vocabulary types them back.
    assert _commands(serve.data_dir) == [(21, 1, 3, 1.25), (22, 1, 3, 1.25)]
    for encoding in ("json", "proto"):
        service = f"arm-ui-node-{encoding}"
        (span,) = _store(serve.data_dir, "spans", service)
        (log,) = _store(serve.data_dir, "logs", service)
        assert span["name"] == f"ui.click.{encoding}" and len(span["trace_id"]) == 32
        assert (log["event_name"], log["trace_id"], log["span_id"]) == (
            "robot.dds.command",
            span["trace_id"],
            span["span_id"],
        )
        assert log["body_type"] == "kvlist" and json.loads(log["body"]) == {
            "kind": "command",
            "encoding": encoding,
        }
        clicks = [r for r in _store(serve.data_dir, "metrics", service) if r["name"] == "ui.clicks"]
        assert [(r["type"], r["is_monotonic"], r["value_double"], r["unit"]) for r in clicks] == [
            ("sum", True, 2.0, "{click}")
        ]


def test_rotel_exports_otlp_http_into_serve(tmp_path: Path) -> None:
    """A real collector between the SDK and serve, speaking OTLP/HTTP (protobuf) to serve."""
    with serve_process(tmp_path, sinks="sqlite,store") as serve:
        rotel, _grpc_port, http_port = start_rotel(tmp_path, forward_to=serve.otlp_http_url, protocol="http")
        try:
            resource = Resource.create({"service.name": "via-rotel-http"})
            logs = LoggerProvider(resource=resource)
            logs.add_log_record_processor(
                SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/logs"))
            )
            traces = TracerProvider(resource=resource)
            traces.add_span_processor(
                SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces"))
            )
            with traces.get_tracer("rotel-test").start_as_current_span("through.rotel"):
                logs.get_logger("rotel-test").emit(
                    LogRecord(
                        event_name="robot.dds.command",
                        body="forwarded",
                        attributes={"robot.dds.seq": 31, "robot.dds.funcode": 2, "robot.joint.id": 4},
                    )
                )
            logs.shutdown()
            traces.shutdown()
            wait_for(lambda: _commands(serve.data_dir), what="the forwarded command row")
        finally:
            rotel.stop()
    assert _commands(serve.data_dir) == [(31, 2, 4, None)]
    (log,) = _store(serve.data_dir, "logs", "via-rotel-http")
    (span,) = _store(serve.data_dir, "spans", "via-rotel-http")
    assert (log["event_name"], log["body"], log["body_type"]) == ("robot.dds.command", "forwarded", "string")
    assert span["name"] == "through.rotel" and log["trace_id"] == span["trace_id"]


@pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("CI"), reason="curl not installed")
def test_curl_json_lands_in_the_domain_table_and_the_store(tmp_path: Path) -> None:
    # A time within the robot table's retention (7 days by default): an older row is the retention
    # pass's to delete, whenever that pass happens to run.
    sent_ns = time.time_ns() - 60 * 10**9
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "curl"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(sent_ns),
                                "eventName": "robot.dds.command",
                                "body": {
                                    "kvlistValue": {
                                        "values": [{"key": "by", "value": {"stringValue": "hand"}}]
                                    }
                                },
                                "attributes": [
                                    {"key": "robot.dds.seq", "value": {"intValue": "41"}},
                                    {"key": "robot.dds.funcode", "value": {"intValue": 1}},
                                    {"key": "robot.joint.id", "value": {"intValue": "5"}},
                                    {"key": "robot.target_value", "value": {"doubleValue": 0.5}},
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    with serve_process(tmp_path, sinks="sqlite,store") as serve:
        done = _curl(serve, json.dumps(body))
        answer, status = done.stdout.rsplit("\n", 1)
        assert status == "200" and json.loads(answer) == {}
    assert _commands(serve.data_dir) == [(41, 1, 5, 0.5)], serve.service.log_text()
    (log,) = _store(serve.data_dir, "logs", "curl")
    assert (log["body_type"], json.loads(log["body"])) == ("kvlist", {"by": "hand"})
    assert log["time"] == sent_ns


def _curl(serve: Serve, body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json",
         "--data-binary", body, serve.otlp_http_url + "/v1/logs"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
