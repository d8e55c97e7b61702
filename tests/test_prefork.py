"""Pre-fork servers: every worker exports (gunicorn --preload forks after setup(); uvicorn --workers)."""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from pathlib import Path

import pytest

from ._otlp_receiver import OtlpReceiver
from ._services import Service, free_port, start_rotel

ROOT = Path(__file__).resolve().parent.parent


def _server_env(http_port: int) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{http_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "PYTHONPATH": str(ROOT),
    }


def _worker_pids(port: int, wanted: int = 2, attempts: int = 400) -> set[str]:
    pids: set[str] = set()
    for _ in range(attempts):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            pids.add(response.read().decode())
        if len(pids) >= wanted:
            break
    return pids


def _exercise(argv: list[str], tmp_path: Path, port: int) -> None:
    receiver = OtlpReceiver()
    rotel, _grpc, http_port = start_rotel(tmp_path, forward_to=f"http://127.0.0.1:{receiver.port}")
    server = Service("server", argv, tmp_path, env=_server_env(http_port))
    try:
        server.wait_ready(port)
        pids = _worker_pids(port)
        assert len(pids) == 2, f"requests reached workers {pids}"

        def exported_from_every_worker() -> bool:
            span_pids = {str(res["process.pid"]) for res, _span in receiver.spans()}
            log_pids = {str(res["process.pid"]) for res, _rec in receiver.log_records()}
            return pids <= span_pids and pids <= log_pids

        assert receiver.wait_for(exported_from_every_worker, 60), server.log_text()[-3000:]
        for resource, span in receiver.spans():
            worker_pid = next(kv.value.int_value for kv in span.attributes if kv.key == "worker.pid")
            assert str(worker_pid) == str(resource["process.pid"])  # the resource follows the fork
            assert resource["service.name"] == "prefork-demo"
    finally:
        server.stop()
        rotel.stop()
        receiver.stop()


@pytest.mark.skipif(
    shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None, reason="gunicorn not installed"
)
def test_gunicorn_preload_workers_all_export(tmp_path: Path) -> None:
    """setup() runs in the gunicorn master; both forked workers re-initialise and export."""
    port = free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    _exercise(
        [
            gunicorn,
            "--preload",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "tests._prefork_apps:wsgi_app",
        ],
        tmp_path,
        port,
    )


def test_uvicorn_workers_all_export(tmp_path: Path) -> None:
    """uvicorn --workers 2: each worker sets up at import and exports."""
    port = free_port()
    _exercise(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--workers",
            "2",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "tests._prefork_apps:asgi_app",
        ],
        tmp_path,
        port,
    )


def test_fork_child_has_its_own_working_pipeline(tmp_path: Path) -> None:
    """After os.fork() the child's event path and batch processors run again (threads do not fork)."""
    import otel_tele

    from ._fake_sinks import RecordingSink
    from .test_sink_contract import pipeline_with

    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 1})
    assert telemetry.force_flush(5_000)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 2})
            ok = telemetry.force_flush(5_000) and [
                r.log_record.attributes["robot.dds.seq"] for r in sink.records
            ] == [1, 2]
            snap = next(s for s in telemetry.sink_stats() if s.sink == "recording")
            os.write(write_fd, f"{ok} {snap.exported}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    assert os.read(read_fd, 100).decode() == "True 1"  # the child counts only its own record
    telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 3})
    assert telemetry.force_flush(5_000)
    assert [r.log_record.attributes["robot.dds.seq"] for r in sink.records] == [1, 3]
    telemetry.shutdown(5_000)
    assert otel_tele.get_telemetry() is None
