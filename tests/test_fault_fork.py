"""Fork safety with a parent busy exporting (issue 10 §4), for every registered sink.

A parent emits continuously on a background thread — its sink writer is mid-write, holding the sink's
lock and connection, at any moment — and forks children one after another. Each child emits through
the same sample driver as the sink contract suite, flushes and shuts down: every child's records must
be stored, its books exact, and the parent's storage untouched by the children's exits.
"""

from __future__ import annotations

import concurrent.futures
import faulthandler
import json
import os
import shutil
import signal
import sqlite3
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import otel_tele
from otel_tele._components import SINKS

from . import _pg
from ._services import Service, free_port
from .test_sink_contract import _sample, run_bounded, sink_pipeline

pg_dsn, clean_pg = _pg.pg_dsn, _pg.clean_pg  # fixtures

ROOT = Path(__file__).resolve().parent.parent

CHILDREN = 20
PER_CHILD = 40
PER_ROUND = 25


def _child(telemetry: otel_tele.Telemetry, sample: Any, write_fd: int) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    faulthandler.dump_traceback_later(60, exit=True)  # a hung child shows where it hangs
    try:
        sample.exercise(telemetry, PER_CHILD)
        flushed = telemetry.force_flush(20_000)
        books = [snap.__dict__ for snap in telemetry.sink_stats()]
        shut = telemetry.shutdown(20_000)
        os.write(write_fd, json.dumps({"flushed": flushed, "shutdown": shut, "books": books}).encode())
        code = 0
    finally:
        os._exit(code)


def _wait_children(children: list[tuple[int, int]], limit_s: float) -> list[dict[str, Any]]:
    """Each child's report; a child still running at the deadline is a hang: every child left is
    killed (never left behind) and the test fails naming them."""
    deadline = time.monotonic() + limit_s
    reports: dict[int, dict[str, Any]] = {}
    pending = dict(children)
    while pending and time.monotonic() < deadline:
        for pid, read_fd in list(pending.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
            del pending[pid]
            data = b""
            while chunk := os.read(read_fd, 65_536):
                data += chunk
            os.close(read_fd)
            assert os.waitstatus_to_exitcode(status) == 0 and data, f"child {pid} failed ({status})"
            reports[pid] = json.loads(data)
        time.sleep(0.02)  # polling child processes for exit, bounded by the deadline
    for pid, read_fd in pending.items():
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)
    assert not pending, f"{len(pending)} of {len(children)} children hung: never finished flush and shutdown"
    return [reports[pid] for pid, _fd in children]


@pytest.mark.parametrize("name", sorted(SINKS))
def test_children_of_a_busy_parent_store_every_record(name: str, tmp_path: Path) -> None:
    _fork_from_busy_parent(name, tmp_path / "telemetry")


def test_children_of_a_busy_parent_use_their_own_postgresql_pool(clean_pg: str, tmp_path: Path) -> None:
    """The postgres sink on a real server: each child opens its own pool; none talks on, or closes,
    the parent's connections (the parent keeps writing through the forks and after)."""
    _fork_from_busy_parent("postgres", tmp_path / "telemetry", postgres_dsn=clean_pg)


def _fork_from_busy_parent(name: str, data_dir: Path, **options: Any) -> None:
    sample = _sample(name)
    # Small batches, exported at once: the writer is mid-write most of the time.
    telemetry = sink_pipeline(
        name, data_dir, blrp_max_export_batch_size=16, blrp_schedule_delay_millis=1, **options
    )
    stop = threading.Event()
    rounds = [0]

    def busy_parent() -> None:
        while not stop.wait(0.002):  # a steady stream the sink keeps up with: nothing dropped
            sample.exercise(telemetry, PER_ROUND)
            rounds[0] += 1

    emitter = threading.Thread(target=busy_parent, name="busy-parent", daemon=True)
    emitter.start()
    reports = []
    try:
        children = []
        for _ in range(CHILDREN):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(telemetry, sample, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        reports = _wait_children(children, 120)
    finally:
        stop.set()
        emitter.join(60)
    for report in reports:
        assert report["flushed"] and report["shutdown"], json.dumps(report)
        for books in report["books"]:
            # Everything the child emitted is stored (or, for a record no table of the sink claims,
            # such as the pipeline's own metrics at the capture sink, counted not routed).
            unsettled = books["dropped"] + books["failed"] + books["queued"] + books.get("pending", 0)
            assert unsettled == 0, json.dumps(books)
            assert books["emitted"] == books["exported"] + books.get("not_routed", 0), json.dumps(books)
    assert run_bounded(lambda: telemetry.force_flush(30_000), 60)
    for snap in telemetry.sink_stats():
        assert snap.reconciles and snap.failed == 0 and snap.dropped == 0, snap
    expected = rounds[0] * PER_ROUND + CHILDREN * PER_CHILD
    assert sample.stored(data_dir, telemetry) == expected
    assert run_bounded(lambda: telemetry.shutdown(30_000), 60)


@pytest.mark.skipif(
    shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None, reason="gunicorn not installed"
)
def test_gunicorn_preload_workers_under_load_store_every_request(tmp_path: Path) -> None:
    """setup() and a busy exporting thread in the gunicorn master; 4 workers forked from it serve 400
    concurrent requests, each storing one row; after a graceful stop every request's row is there."""
    data_dir = tmp_path / "telemetry"
    port = free_port()
    env = {
        "OTEL_TELE_SINKS": "sqlite",
        "OTEL_TELE_DATA_DIR": str(data_dir),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_BLRP_SCHEDULE_DELAY": "5",
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "16",
        "PREFORK_BUSY_MASTER": "1",
        "PYTHONPATH": str(ROOT),
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    argv = [gunicorn, "--preload", "--workers", "4", "--bind", f"127.0.0.1:{port}"]
    server = Service("gunicorn", [*argv, "tests._prefork_apps:wsgi_sink_app"], tmp_path, env=env)
    try:
        server.wait_ready(port)

        def request(i: int) -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/?r{i}", timeout=30) as response:
                return str(response.read().decode())

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            pids = set(pool.map(request, range(400)))
        assert len(pids) >= 2, f"requests reached workers {pids}"
    finally:
        server.stop()  # TERM: workers and master exit gracefully, flushing at exit
    with sqlite3.connect(data_dir / "telemetry.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = dict(
            conn.execute("SELECT correlation_id, source FROM system_events WHERE event_type = 'request'")
        )
        masters = conn.execute("SELECT count(*) FROM system_events WHERE event_type = 'master'").fetchone()
    missing = sorted({f"r{i}" for i in range(400)} - set(stored), key=lambda r: int(r[1:]))
    assert not missing, f"{len(missing)} requests not stored, e.g. {missing[:5]}\n{server.log_text()[-3000:]}"
    assert {source.removeprefix("worker-") for source in stored.values()} == pids
    assert masters[0] > 0  # the master kept exporting through the forks


def test_a_child_creates_an_instrument_the_parent_was_half_way_through_creating(tmp_path: Path) -> None:
    """A parent thread forked between registering an instrument's id and storing the instrument (the
    SDK does both under one lock, which the fork cuts) left the child unable ever to create that
    instrument: every create raised KeyError, and every inference record of the child failed."""
    from opentelemetry.sdk.metrics._internal.instrument import _Histogram

    telemetry = sink_pipeline("sqlite", tmp_path / "telemetry")
    meter: Any = telemetry.meter("half-way")
    # The state a fork inside create_histogram leaves: the id registered, no instrument stored.
    meter._register_instrument("half.way.duration", _Histogram, "s", "cut by a fork")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            histogram = meter.create_histogram("half.way.duration", unit="s", description="cut by a fork")
            histogram.record(0.5)
            code = 0
        finally:
            os.write(write_fd, str(code).encode())
            os._exit(code)
    os.close(write_fd)
    try:
        _, status = os.waitpid(pid, 0)
        assert os.read(read_fd, 16) == b"0" and os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(read_fd)
        telemetry.shutdown(10_000)
