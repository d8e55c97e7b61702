"""First contact (issue 11 §1): local first without a collector, a quiet bounded exit with a dead one,
and SQLite files that hold their data alone after close."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import otel_tele
from otel_tele._otlp_health import ExportHealth

from ._otlp_receiver import OtlpReceiver
from ._services import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCAL_NOTICE = re.compile(
    r"^INFO otel-tele: no OTLP endpoint configured, so telemetry stays local .*OTEL_EXPORTER_OTLP_ENDPOINT"
)


def one_line_example() -> str:
    """The README's one-line example, exactly as printed under '## One line'."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## One line", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, "README has no python block under '## One line'"
    return match.group(1)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a newcomer: no OTEL_* settings at all (the test suite sets some)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return {**env, **extra}


def run_script(code: str, cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``code`` as a script; also return how long the process took to exit after the script ended."""
    script = cwd / "example.py"
    script.write_text(code)
    wrapper = (
        "import runpy, sys, time\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
        "print(f'ENDED {time.time()!r}', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    exited = time.time()
    ended = re.search(r"ENDED (\S+)", done.stdout)
    assert ended is not None, done.stdout + done.stderr
    return done, exited - float(ended.group(1))


def wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_readme_one_line_example_is_local_quiet_and_fast(tmp_path: Path) -> None:
    """Default settings, no collector: exit within 2 s of the script's end, stderr holds only our INFO
    line, the event is a row in telemetry.db and no -wal content is left behind."""
    code = one_line_example()
    assert "otel_tele.setup(" in code and "events.emit(" in code
    done, exit_s = run_script(code, tmp_path, clean_env(OTEL_EXPORTER_PROMETHEUS_PORT="0"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and LOCAL_NOTICE.match(lines[0]), done.stderr
    assert exit_s < 2.0, f"exit took {exit_s:.2f}s after the script ended"
    db = tmp_path / "telemetry" / "telemetry.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT event_type FROM system_events").fetchall() == [("startup",)]
    assert wal_bytes(db) == 0


def _destinations(**arguments: object) -> set[tuple[str, str]]:
    telemetry = otel_tele.setup(local=True, sinks="none", prometheus_port=0, **arguments)  # type: ignore[arg-type]
    try:
        return {(signal, name) for signal, name, _where in telemetry.destinations}
    finally:
        telemetry.shutdown(5_000)


@pytest.fixture
def default_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter lists at their defaults, no endpoint anywhere."""
    for name in list(os.environ):
        if name.startswith(("OTEL_EXPORTER_OTLP", "OTEL_TRACES_EXPORTER", "OTEL_LOGS_EXPORTER")) or name in (
            "OTEL_METRICS_EXPORTER",
        ):
            monkeypatch.delenv(name)


def test_no_endpoint_keeps_every_signal_local(default_exporters: None) -> None:
    assert _destinations() == {("metrics", "prometheus")}


def test_an_endpoint_attaches_otlp_for_every_signal(default_exporters: None) -> None:
    found = _destinations(otlp_endpoint=f"http://127.0.0.1:{free_port()}")
    assert {("traces", "otlp"), ("logs", "otlp"), ("metrics", "otlp")} <= found


def test_the_generic_endpoint_variable_attaches_otlp(
    default_exporters: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert {("traces", "otlp"), ("logs", "otlp"), ("metrics", "otlp")} <= _destinations()


def test_a_signal_endpoint_attaches_otlp_for_that_signal_only(
    default_exporters: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert _destinations() == {("traces", "otlp"), ("metrics", "prometheus")}


def test_otlp_named_explicitly_is_attached_without_an_endpoint(
    default_exporters: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "otlp")
    assert _destinations(traces_exporter="otlp") == {
        ("traces", "otlp"),
        ("logs", "otlp"),
        ("metrics", "prometheus"),
    }


def test_opentelemetry_instrument_is_local_first_too(tmp_path: Path) -> None:
    """The distro under opentelemetry-instrument follows the same rule: the INFO line, no OTLP noise,
    the event in telemetry.db."""
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent("""
        import otel_tele
        telemetry = otel_tele.get_telemetry()
        assert telemetry is not None, "the configurator did not run setup()"
        assert not [d for d in telemetry.destinations if d[1] == "otlp"], telemetry.destinations
        telemetry.events.emit("robot.system.event", {"robot.system.event_type": "startup"})
        """)
    )
    done = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(app)],
        env=clean_env(OTEL_SERVICE_NAME="zero-code", OTEL_EXPORTER_PROMETHEUS_PORT="0"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and LOCAL_NOTICE.match(lines[0]), done.stderr  # no retry noise, no traceback
    db = tmp_path / "telemetry" / "telemetry.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM system_events").fetchone() == (1,)
    assert wal_bytes(db) == 0


def test_a_dead_collector_gives_one_summary_line_at_a_bounded_exit(tmp_path: Path) -> None:
    """A configured collector that is down: no retry lines, no traceback; the exit waits at most the
    configured total deadline and says what was not exported where; local rows are complete."""
    code = textwrap.dedent(f"""
        import otel_tele

        telemetry = otel_tele.setup(service_name="arm-server", otlp_endpoint="http://127.0.0.1:{free_port()}")
        with telemetry.tracer("job").start_as_current_span("step"):
            telemetry.events.emit("robot.system.event", {{"robot.system.event_type": "startup"}})
    """)
    env = clean_env(OTEL_TELE_SHUTDOWN_TIMEOUT="1000", OTEL_EXPORTER_PROMETHEUS_PORT="0")
    done, exit_s = run_script(code, tmp_path, env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("otel-tele shutdown stopped at its 1 s deadline"), lines
    assert re.search(r"not exported: .*otlp/traces 1 .*otlp/logs 1", lines[0]), lines
    assert exit_s < 1.0 + 3.0, f"exit took {exit_s:.2f}s with a 1 s deadline"  # + interpreter teardown
    db = tmp_path / "telemetry" / "telemetry.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM system_events").fetchone() == (1,)
    assert wal_bytes(db) == 0


def test_collector_outage_warns_once_per_exporter_and_once_on_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Down: one WARNING for the exporter, however many batches fail, and none of the SDK's retry
    lines; back up: one WARNING saying how many records were not delivered meanwhile."""
    port = free_port()
    telemetry = otel_tele.setup(
        local=True,
        sinks="none",
        traces_exporter="otlp",
        logs_exporter="none",
        metrics_exporter="none",
        otlp_endpoint=f"http://127.0.0.1:{port}",
        otlp_timeout_millis=300,
    )
    tracer = telemetry.tracer("job")
    caplog.set_level(logging.INFO)
    try:
        for _ in range(3):
            tracer.start_span("while-down").end()
            assert not telemetry.force_flush(10_000)  # the export failed: nothing reached a collector
        failed = {(snap.sink, snap.signal): snap.failed for snap in telemetry.sink_stats()}
        assert failed[("otlp", "traces")] == 3  # each batch tried, failed and booked
        receiver = OtlpReceiver(f"127.0.0.1:{port}")
        try:
            tracer.start_span("after-recovery").end()
            assert telemetry.force_flush(10_000)
            assert receiver.wait_for(lambda: bool(receiver.traces))
        finally:
            receiver.stop()
    finally:
        telemetry.shutdown(5_000)
    ours = [r.getMessage() for r in caplog.records if r.name == "otel_tele" and r.levelno >= logging.WARNING]
    assert len(ours) == 2, ours
    assert ours[0].startswith(f"OTLP traces exporter cannot deliver to 127.0.0.1:{port}"), ours
    assert ours[1].startswith(f"OTLP traces exporter delivers to 127.0.0.1:{port} again; 3 records"), ours
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]
    assert "Traceback" not in caplog.text


def test_outage_warnings_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    """A flapping collector: at most one outage warning per interval, and a recovery warning only
    after a warned outage."""
    now = [0.0]
    health = ExportHealth("OTLP logs", "collector:4317", min_interval_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="otel_tele"):
        for _ in range(5):  # five outages within a minute
            health.record(ok=False, count=1)
            health.record(ok=True, count=1)
            now[0] += 1
        now[0] += 60
        health.record(ok=False, count=2)
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" exporter ")[1].split(" ")[0] for m in messages] == ["cannot", "delivers", "cannot"]
    assert "1 records were not delivered" in messages[1]


def test_sqlite_files_are_checkpointed_on_close(tmp_path: Path) -> None:
    """After close, the database file alone holds the rows, though a reader still had it open."""
    from otel_tele.instrumentation.robot import TelemetryCollector

    db = tmp_path / "telemetry.db"
    collector = TelemetryCollector(db_path=str(db))
    for seq in range(200):
        collector.log_command(seq=seq, funcode=1, joint_id=2, target_value=45.0, data=None)
    assert collector.flush()
    reader = sqlite3.connect(db)  # an open reader keeps SQLite from checkpointing on its own
    try:
        collector.close()
        assert wal_bytes(db) == 0
    finally:
        reader.close()
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())  # the main file alone, as a newcomer would copy it
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM dds_commands").fetchone() == (200,)


def test_embedded_inference_database_is_checkpointed_on_shutdown(tmp_path: Path) -> None:
    from otel_tele.instrumentation.inference import TelemetryLogger, thought_timer

    telemetry = otel_tele.setup(
        local=True,
        sinks="postgres",
        data_dir=tmp_path,
        traces_exporter="none",
        logs_exporter="none",
        metrics_exporter="none",
    )
    db = tmp_path / "inference.db"
    with thought_timer("gemma2:27b", logger=TelemetryLogger(telemetry)) as timer:
        timer.tokens(generated=10, prompt=3)
    assert telemetry.force_flush(10_000)
    reader = sqlite3.connect(db)
    try:
        telemetry.shutdown(10_000)
        assert wal_bytes(db) == 0
    finally:
        reader.close()
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM system_telemetry").fetchone() == (1,)


def test_an_idle_capture_sink_writes_no_bundle(tmp_path: Path) -> None:
    """A process that records no flow metric leaves no empty capture bundle behind."""
    telemetry = otel_tele.setup(local=True, sinks="capture", data_dir=tmp_path, service_name="idle")
    telemetry.meter("app").create_counter("app.unrelated").add(1)
    assert telemetry.force_flush(10_000)
    telemetry.shutdown(10_000)
    assert not list(tmp_path.rglob("manifest.json"))


def test_doctor_reports_the_local_first_decision(tmp_path: Path) -> None:
    """doctor says what setup() does: no endpoint, the default otlp rows are 'not attached'; with one,
    they name the endpoint."""
    cli = str(BIN / "otel-tele")

    def otlp_rows(**env: str) -> list[dict[str, object]]:
        done = subprocess.run(
            [cli, "doctor", "--format", "json"],
            cwd=tmp_path,
            env=clean_env(**env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, object]] = json.loads(done.stdout)["destinations"]
        return [row for row in rows if row["exporter"] == "otlp"]

    local = otlp_rows()
    assert sorted(str(row["signal"]) for row in local) == ["logs", "metrics", "traces"]
    assert all(row["reachable"] is None and str(row["note"]).startswith("not attached") for row in local)
    port = free_port()
    shipped = otlp_rows(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")
    assert {str(row["destination"]) for row in shipped} == {f"grpc 127.0.0.1:{port}"}
    assert all(row["reachable"] is False for row in shipped)
