"""The README's shell blocks run as written (the python blocks: tests/test_doc_examples.py).

Each block is either run here, as printed, from a fresh folder with a newcomer's environment (no
OTEL_* settings; only Prometheus on a free port), or listed in NOT_RUN with the reason. A new block
that is neither fails the inventory test. Blocks that listen on fixed ports are skipped when another
program holds one of them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._services import port_open

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

#: First line of a block → why it is not run here.
NOT_RUN = {
    "bash .ci/dev demo": "`.ci/dev test` is this suite; `.ci/dev demo` runs python -m otel_tele.demo, "
    "which tests/test_demo_run.py runs and checks",
    ".venv/bin/python bench/bench_core.py": "benchmarks run for minutes; their figures are committed "
    "under bench/results/",
    "head -c 32 /dev/urandom | base64 > /etc/otel-tele/token": "a deployment sketch: it writes under /etc "
    "and needs a real certificate; tests/test_serve_security.py runs the same options on loopback",
}


def shell_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)


def block(first_line_prefix: str) -> str:
    found = [b for b in shell_blocks() if b.startswith(first_line_prefix)]
    assert len(found) == 1, f"README has {len(found)} bash blocks starting {first_line_prefix!r}"
    return found[0]


RUN_HERE = (
    "OTEL_SERVICE_NAME=arm-server OTEL_TELE_SINKS=none OTEL_LOGS_EXPORTER=otel_tele_sqlite",
    "otel-tele serve --otlp-grpc 127.0.0.1:4317 --otlp-http 127.0.0.1:4318 --http 127.0.0.1:8000",
    ".venv/bin/python -m pip install rotel",
    'otel-tele sql "SELECT name',
)


def test_every_shell_block_is_run_or_says_why() -> None:
    for text in shell_blocks():
        assert text.startswith(RUN_HERE) or text.startswith(tuple(NOT_RUN)), text


def test_the_sql_block_runs_as_written(tmp_path: Path) -> None:
    """The `otel-tele sql` examples, over an empty data folder: every line exits 0, files written."""
    (tmp_path / "telemetry").mkdir()
    text = block('otel-tele sql "SELECT name')
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", text],
        cwd=tmp_path,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "errors.csv").read_text().startswith('"id","ts","endpoint"')
    assert (tmp_path / "runs.parquet").stat().st_size > 0
    assert "robot_dds_commands" in done.stdout and "spans" in done.stdout


def newcomer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return {**env, "OTEL_EXPORTER_PROMETHEUS_PORT": "0", **extra}


def require_free(*ports: int) -> None:
    busy = [port for port in ports if port_open(port)]
    if busy:
        pytest.skip(f"port(s) {busy} held by another program; the README block uses them as written")


def wait_until(predicate: object, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a socket or file written by another process


@pytest.fixture
def process_group() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started in their own session; their whole group is stopped at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(15)


def test_no_code_change_block(tmp_path: Path) -> None:
    """`opentelemetry-instrument python app.py` with our exporter named: the app's event is a row."""
    (tmp_path / "app.py").write_text(
        textwrap.dedent("""
        import otel_tele  # setup() already ran: opentelemetry-instrument's configurator called it
        otel_tele.get_telemetry().events.emit("robot.system.event", {"robot.system.event_type": "startup"})
        """)
    )
    done = subprocess.run(
        ["bash", "-c", block("OTEL_SERVICE_NAME=arm-server")],
        cwd=tmp_path,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()  # only the local-first notice: no retry noise, no traceback
    assert len(lines) == 1 and lines[0].startswith("INFO otel-tele: no OTLP endpoint configured"), lines
    with sqlite3.connect(tmp_path / "telemetry" / "telemetry.db") as conn:
        assert conn.execute("SELECT event_type FROM system_events").fetchall() == [("startup",)]


def test_serve_block(tmp_path: Path, process_group: list[subprocess.Popen[str]]) -> None:
    require_free(4317, 4318, 8000)
    serve = subprocess.Popen(
        ["bash", "-c", block("otel-tele serve")],
        cwd=tmp_path,
        env=newcomer_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    process_group.append(serve)
    assert serve.stdout is not None
    line = serve.stdout.readline()
    assert line.startswith(
        "otel-tele serve: OTLP/gRPC on 127.0.0.1:4317; OTLP/HTTP on http://127.0.0.1:4318; "
        "HTTP on http://127.0.0.1:8000"
    ), line + (serve.stderr.read() if serve.stderr else "")
    assert httpx.get("http://127.0.0.1:8000/v1/runs", timeout=30).status_code == 200
    curl = re.search(
        r"```text\n\s*(curl -X POST http://127\.0\.0\.1:4318/v1/logs .*?)\n", (ROOT / "README.md").read_text()
    )
    assert curl is not None
    done = subprocess.run(["bash", "-c", curl.group(1) + " -sS --fail"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout) == {}, done
    os.killpg(serve.pid, signal.SIGTERM)
    assert serve.wait(30) == 0


def test_local_collector_block(tmp_path: Path, process_group: list[subprocess.Popen[str]]) -> None:
    """rotel on 4317 forwarding to `otel-tele serve`: a program pointed at 4317 lands rows in
    ./collected/telemetry.db."""
    require_free(4317, 4318, 14317, 9465)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # the block runs from a clone's root
    collector = subprocess.Popen(
        ["bash", "-c", block(".venv/bin/python -m pip install rotel") + "wait\n"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    process_group.append(collector)
    wait_until(lambda: port_open(4317) and port_open(14317), "rotel and otel-tele serve to listen")
    program = (
        "import otel_tele\n"
        "telemetry = otel_tele.setup(service_name='shipped')\n"
        "telemetry.events.emit('robot.system.event', {'robot.system.event_type': 'shipped'})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env=newcomer_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317", OTEL_TELE_SINKS="none"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    db = tmp_path / "collected" / "telemetry.db"

    def landed() -> bool:
        if not db.exists():
            return False
        with sqlite3.connect(db) as conn:
            try:
                return bool(
                    conn.execute("SELECT 1 FROM system_events WHERE event_type = 'shipped'").fetchall()
                )
            except sqlite3.OperationalError:  # the table is created with the first row
                return False

    wait_until(landed, "the event to travel rotel -> otel-tele serve -> collected/telemetry.db")


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    """`python -m otel_tele` is the CLI when .venv/bin is not on PATH."""
    done = subprocess.run(
        [sys.executable, "-m", "otel_tele", "query", "summary", "--db", str(tmp_path / "none.db")],
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stderr.startswith("otel-tele"), done.stderr  # the CLI's own error
    version = subprocess.run([sys.executable, "-m", "otel_tele", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("otel-tele "), version
