"""Issue 10 §3: "exported" means durable, records a sink does not store are not booked exported to
it, and a badly typed required column is never given a made-up value.

The books are ``emitted == exported + dropped + failed + queued + pending + not_routed``.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from otel_tele.exporters.capsule import maintenance, schema
from otel_tele.exporters.capsule._journal import read_journal
from otel_tele.instrumentation import fda

import otel_tele
from otel_tele import StatsSnapshot, Telemetry
from otel_tele._components import SINKS

from .sink_samples.capsule import CORE
from .test_sink_contract import _sample


def pipeline(data_dir: Path, sinks: list[str], **options: Any) -> Telemetry:
    return otel_tele.setup(
        local=True,
        sinks=sinks,
        data_dir=data_dir,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
        **options,
    )


@pytest.fixture
def pipelines() -> Iterator[list[Telemetry]]:
    created: list[Telemetry] = []
    yield created
    for telemetry in created:
        telemetry.shutdown(10_000)


def books(telemetry: Telemetry, sink: str, signal: str = "logs") -> StatsSnapshot:
    snap = next(s for s in telemetry.sink_stats() if s.sink == sink and s.signal == signal)
    assert snap.reconciles, snap
    return snap


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Poll ``condition`` (a background flush is due); the bound only stops a broken test."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def journal_rows(root: Path) -> int:
    tmps = [p for p in (root / "runs").glob(".tmp-*") if p.is_dir()]
    return sum(read_journal(t / f"{table}.arrows", table).num_rows for t in tmps for table in schema.TABLES)


# -- capsule: pending until durable -------------------------------------------------------------
def test_open_production_run_rows_are_pending_until_its_journal_holds_them(
    tmp_path: Path, pipelines: list[Telemetry]
) -> None:
    """Rows in memory are pending, never exported; every exported row is in the run's journal."""
    telemetry = pipeline(tmp_path, ["capsule"], capsule_flush_rows=1_000, capsule_flush_seconds=3_600)
    pipelines.append(telemetry)
    root = tmp_path / "telematry_cfs"
    with fda.run("durable", telemetry=telemetry, units={}, method={}) as run:
        for i in range(500):
            run.iteration(iter=i, **CORE)
        assert telemetry.force_flush(10_000)
        snap = books(telemetry, "capsule")
        assert snap.exported == 0 and snap.pending == snap.emitted > 500  # events + iterations
        for i in range(500, 1_500):
            run.iteration(iter=i, **CORE)
        assert telemetry.force_flush(10_000)
        snap = books(telemetry, "capsule")
        assert snap.exported >= 1_000 and snap.exported + snap.pending == snap.emitted, snap
        assert journal_rows(root) == snap.exported  # exported == what a kill -9 would leave behind
    assert telemetry.force_flush(10_000)
    snap = books(telemetry, "capsule")
    assert (snap.exported, snap.pending, snap.failed) == (snap.emitted, 0, 0)
    (folder,) = (root / "runs").glob("fda_run_*")
    manifest = schema.read_manifest(folder / "manifest.toml")
    assert (manifest["rows"], manifest["rows"] + manifest["events"]) == (1_500, snap.exported)
    published = sorted(p.name for p in folder.iterdir())
    assert published == ["events.parquet", "manifest.toml", "telemetry.parquet"]  # no journal left


def test_a_quiet_run_is_made_durable_within_flush_seconds(tmp_path: Path, pipelines: list[Telemetry]) -> None:
    """A run that records a few rows and goes quiet: its rows reach the journal without more traffic."""
    telemetry = pipeline(tmp_path, ["capsule"], capsule_flush_rows=1_000_000, capsule_flush_seconds=0.2)
    pipelines.append(telemetry)
    with fda.run("quiet", telemetry=telemetry, units={}, method={}) as run:
        for i in range(10):
            run.iteration(iter=i, **CORE)
        assert telemetry.force_flush(10_000)
        assert wait_until(lambda: books(telemetry, "capsule").pending == 0)
        snap = books(telemetry, "capsule")
        assert snap.exported == snap.emitted > 10
        assert journal_rows(tmp_path / "telematry_cfs") == snap.exported


def test_failed_publication_rebooks_the_run_failed_and_keeps_it_recoverable(
    tmp_path: Path, pipelines: list[Telemetry]
) -> None:
    """The run folder cannot be created (the OS refuses the rename): nothing stays booked exported,
    consolidation deletes nothing, and the capsule is published once the way is clear."""
    telemetry = pipeline(tmp_path, ["capsule"], capsule_flush_rows=1_000, capsule_flush_seconds=3_600)
    pipelines.append(telemetry)
    runs = tmp_path / "telematry_cfs" / "runs"
    run_id = "fda_run_blocked"
    blockers = (runs / run_id, runs / f"{run_id}_{os.getpid()}")
    for blocker in blockers:  # non-empty folders: the rename fails with ENOTEMPTY
        blocker.mkdir(parents=True)
        (blocker / "occupied").write_text("x")
    with fda.run("blocked", run_id=run_id, telemetry=telemetry, units={}, method={}) as run:
        for i in range(5_000):
            run.iteration(iter=i, **CORE)
    assert telemetry.force_flush(10_000)
    snap = books(telemetry, "capsule")
    assert (snap.exported, snap.pending, snap.failed) == (0, 0, snap.emitted), snap
    (kept,) = runs.glob(".tmp-*")
    assert "-abandoned-" in kept.name and (kept / "manifest.toml").exists()
    report = maintenance.consolidate(runs.parent)
    assert report["recovered"] == [] and kept.exists()  # still blocked: nothing deleted
    for blocker in blockers:
        (blocker / "occupied").unlink()
        blocker.rmdir()
    assert maintenance.consolidate(runs.parent)["recovered"] == [run_id]
    manifest = schema.read_manifest(runs / run_id / "manifest.toml")
    rows = pq.read_table(runs / run_id / "telemetry.parquet")
    assert rows.num_rows == manifest["rows"] == 5_000
    assert list(runs.glob(".tmp-*")) == []


# -- books match storage, for every sink ---------------------------------------------------------
def _emit_foreign(telemetry: Telemetry) -> None:
    """Records no otel-tele table claims: an unknown event name, a plain span, a plain counter."""
    for i in range(3):
        telemetry.events.emit("app.unclaimed.event", {"i": i})
        with telemetry.tracer("app").start_as_current_span(f"app.work.{i}"):
            pass
    telemetry.meter("app").create_counter("app.unclaimed.counter").add(1)


@pytest.mark.parametrize("name", sorted(SINKS))
def test_records_a_sink_does_not_store_are_not_booked_exported_to_it(
    name: str, tmp_path: Path, pipelines: list[Telemetry]
) -> None:
    sample = _sample(name)
    data_dir = tmp_path / "telemetry"
    telemetry = pipeline(data_dir, [name])
    pipelines.append(telemetry)
    sample.exercise(telemetry, 50)
    assert telemetry.force_flush(30_000)
    before = {(s.sink, s.signal): s for s in telemetry.sink_stats() if s.sink == name}
    _emit_foreign(telemetry)
    assert telemetry.force_flush(30_000)
    stored = sample.stored(data_dir, telemetry)
    assert stored == 50
    foreign = {"logs": 3, "traces": 3}
    for (sink, kind), old in before.items():
        new = books(telemetry, sink, kind)
        assert new.failed == 0 and new.dropped == 0, new
        if getattr(sample, "STORES_EVERYTHING", False):  # the general store: nothing is foreign to it
            assert new.not_routed == old.not_routed and new.exported > old.exported, new
        elif kind in foreign:
            assert new.exported == old.exported, f"{kind}: unstorable records booked exported"
            assert new.not_routed - old.not_routed == foreign[kind], new
        else:  # metrics: the plain counter's points are not flow points
            assert new.not_routed > old.not_routed, new


# -- no fabricated values ------------------------------------------------------------------------
def test_badly_typed_required_column_rejects_the_row_instead_of_inventing_a_value(
    tmp_path: Path, pipelines: list[Telemetry], caplog: pytest.LogCaptureFixture
) -> None:
    """``funcode="not-an-int"`` was stored as funcode 0; now the row is rejected and counted, logged
    once per event name and key. A badly typed nullable column is stored as NULL."""
    telemetry = pipeline(tmp_path, ["sqlite"])
    pipelines.append(telemetry)
    caplog.set_level("WARNING", logger="otel_tele")
    for seq in range(3):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": seq, "robot.dds.funcode": "not-an-int"})
    telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 10, "robot.dds.funcode": 7})
    telemetry.events.emit(
        "robot.dds.command", {"robot.dds.seq": 11, "robot.dds.funcode": 8, "robot.dds.joint_id": "elbow"}
    )
    assert telemetry.force_flush(10_000)
    with sqlite3.connect(tmp_path / "telemetry.db") as conn:
        rows = conn.execute("SELECT seq, funcode, joint_id FROM dds_commands ORDER BY seq").fetchall()
    assert rows == [(10, 7, None), (11, 8, None)]
    snap = books(telemetry, "sqlite")
    assert (snap.exported, snap.failed) == (2, 3)
    logged = [r for r in caplog.records if "robot.dds.funcode" in r.getMessage() and "rejected" in r.message]
    assert len(logged) == 1


def test_unknown_event_names_are_counted_and_logged_once_per_name(
    tmp_path: Path, pipelines: list[Telemetry], caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = pipeline(tmp_path, ["sqlite"])
    pipelines.append(telemetry)
    caplog.set_level("INFO", logger="otel_tele")
    for _ in range(5):
        telemetry.events.emit("robot.dds.comand", {"robot.dds.seq": 1})  # a typo: no table has it
    assert telemetry.force_flush(10_000)
    assert books(telemetry, "sqlite").not_routed == 5
    logged = [r for r in caplog.records if "robot.dds.comand" in r.getMessage()]
    assert len(logged) == 1


def _full_disk_child(data_dir: Path, write_fd: int, limit: int) -> None:
    telemetry = pipeline(data_dir, ["capsule"], capsule_flush_rows=500, capsule_flush_seconds=3_600)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    with fda.run("full_disk", run_id="fda_run_full_disk", telemetry=telemetry, units={}, method={}) as run:
        for i in range(20_000):
            run.iteration(iter=i, **CORE)
    telemetry.force_flush(10_000)
    snap = books(telemetry, "capsule")
    os.write(write_fd, f"{snap.emitted} {snap.exported} {snap.failed} {snap.pending}".encode())


def test_a_full_disk_books_the_run_failed_and_what_reached_the_journal_is_recovered(tmp_path: Path) -> None:
    """Files stop growing mid-run (RLIMIT_FSIZE, the OS's own EFBIG): the books say failed for every row
    of the run, nothing exported; ``runs consolidate`` publishes the journal's rows as interrupted."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            _full_disk_child(tmp_path, write_fd, limit=200_000)
        finally:
            os._exit(0)
    os.close(write_fd)
    report = b""
    while chunk := os.read(read_fd, 1024):
        report += chunk
    os.close(read_fd)
    os.waitpid(pid, 0)
    emitted, exported, failed, pending = map(int, report.split())
    assert (exported, pending, failed) == (0, 0, emitted) and emitted > 20_000
    runs = tmp_path / "telematry_cfs" / "runs"
    assert maintenance.consolidate(runs.parent)["recovered"] == ["fda_run_full_disk"]
    manifest = schema.read_manifest(runs / "fda_run_full_disk" / "manifest.toml")
    rows = pq.read_table(runs / "fda_run_full_disk" / "telemetry.parquet")
    assert manifest["status"] == "interrupted" and 0 < rows.num_rows == manifest["rows"] < 20_000
    assert rows.column("iter").to_pylist() == list(range(rows.num_rows))


def test_capture_points_are_pending_until_a_bundle_holds_them(
    tmp_path: Path, pipelines: list[Telemetry]
) -> None:
    """The capture sink bins points in memory: pending until the window's bundle is written."""
    from otel_tele.instrumentation.flow import FlowMeters

    # Day-long bins: no bin boundary (which checkpoints the window) falls inside the test.
    telemetry = pipeline(tmp_path, ["capture"], capture_bin_size=1, capture_bin_unit="days", capture_bins=2)
    pipelines.append(telemetry)
    FlowMeters(telemetry).node("Pending").arrivals(5)
    # A periodic export that carried the flow point (an earlier one may hold only self-metrics).
    assert wait_until(lambda: (s := books(telemetry, "capture", "metrics")).emitted > s.not_routed)
    snap = books(telemetry, "capture", "metrics")
    assert snap.exported == 0 and snap.pending > 0, snap
    assert not list((tmp_path / "captures").glob("*/manifest.json"))
    assert telemetry.force_flush(10_000)  # writes the open window
    snap = books(telemetry, "capture", "metrics")
    assert snap.pending == 0 and snap.exported > 0, snap
    assert list((tmp_path / "captures").glob("*/manifest.json"))


def test_recovery_leaves_a_run_alone_while_its_writer_holds_the_lock(tmp_path: Path) -> None:
    """A writer in another pid namespace (a container on a shared volume) has a pid this process
    cannot see: its lock, not its pid, keeps recovery off its open run."""
    from otel_tele.exporters.capsule import _flow as flows
    from otel_tele.exporters.capsule._journal import Journal, lock_path
    from otel_tele.exporters.capsule.maintenance import recover_runs

    from .test_fda_capsule import iteration_attrs

    runs = tmp_path / "runs"
    tmp = runs / ".tmp-fda_run_elsewhere-999999999-1"  # no such pid here
    tmp.mkdir(parents=True)
    records = [(time.time_ns(), iteration_attrs("fda_run_elsewhere", "f", "production", i)) for i in range(3)]
    rows = schema.to_arrow("telemetry", records)
    journal = Journal(tmp / "telemetry.arrows", "telemetry")
    journal.append([rows], fsync=False)
    journal.close()
    with flows.locked(lock_path(tmp)):
        assert recover_runs(tmp_path) == [] and tmp.exists()
    assert recover_runs(tmp_path) == ["fda_run_elsewhere"]
    assert pq.read_table(runs / "fda_run_elsewhere" / "telemetry.parquet").num_rows == 3
    assert not lock_path(tmp).exists()
