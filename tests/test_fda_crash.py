"""kill -9 at random points: run folders appear whole or not at all; flow files stay readable and exact."""

from __future__ import annotations

import os
import random
import select
import signal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from otel_tele.exporters.capsule import maintenance, schema
from otel_tele.instrumentation import fda

import otel_tele

from ._fork import forked
from .sink_samples.capsule import CORE

KILLS = 20
pytestmark = pytest.mark.slow


def _pipeline(data_dir: Path, **options: Any) -> otel_tele.Telemetry:
    return otel_tele.setup(
        local=True,
        sinks=["capsule"],
        data_dir=data_dir,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
        blrp_schedule_delay_millis=20,
        **options,
    )


def _child(data_dir: Path, mode: str, write_fd: int, seed: int) -> None:
    """Record runs forever (dev: with consolidations in between), reporting each finished run id."""
    rng = random.Random(seed)
    telemetry = _pipeline(data_dir)
    for k in range(10_000):
        n = rng.randint(50, 900)  # below sample_first: every dev iteration is recorded
        with fda.run("crashy", mode=mode, telemetry=telemetry, units={}, method={}) as run:
            for i in range(n):
                run.iteration(iter=i, **CORE, notes=str(n))
        os.write(write_fd, f"{run.run_id} {n}\n".encode())
        if mode == "dev" and k % 3 == 2:
            maintenance.consolidate(data_dir / "telematry_cfs", grace_seconds=0)


def _run_and_kill(data_dir: Path, mode: str, seed: int) -> dict[str, int]:
    """Fork a recorder, wait for its first finished run, kill -9 it at a random moment; committed runs."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            _child(data_dir, mode, write_fd, seed)
        finally:
            os._exit(1)
    os.close(write_fd)
    committed: dict[str, int] = {}
    buffer = b""
    rng = random.Random(seed)
    delay = rng.uniform(0.0, 0.4)
    while not committed:  # the child reports a finished run: now kill it somewhere after that
        ready, _, _ = select.select([read_fd], [], [], 60)
        assert ready, "child made no progress"
        buffer += os.read(read_fd, 65536)
        committed.update(_parse(buffer))
    select.select([read_fd], [], [], delay)  # a random kill point, not a wait for a result
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    while chunk := os.read(read_fd, 65536):
        buffer += chunk
    os.close(read_fd)
    return _parse(buffer)


def _parse(buffer: bytes) -> dict[str, int]:
    lines = buffer.decode().splitlines()
    if not buffer.endswith(b"\n"):
        lines = lines[:-1]
    return {rid: int(n) for rid, n in (line.split() for line in lines)}


def test_kill_9_during_production_runs_leaves_only_whole_run_folders(tmp_path: Path) -> None:
    """20 kills: every visible run folder is complete and matches its manifest; DuckDB reads them all."""
    root = tmp_path / "telematry_cfs"
    committed: dict[str, int] = {}
    for seed in range(KILLS):
        committed.update(_run_and_kill(tmp_path, "production", seed))
        folders = sorted((root / "runs").glob("fda_run_*"))
        total = 0
        for folder in folders:
            manifest = schema.read_manifest(folder / "manifest.toml")
            rows = pq.read_table(folder / "telemetry.parquet").num_rows
            assert rows == manifest["rows"] == committed.get(folder.name, rows)
            assert pq.read_table(folder / "events.parquet").num_rows == manifest["events"]
            total += rows
        assert set(committed) <= {f.name for f in folders}
        duck = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/runs/fda_run_*/telemetry.parquet')")
        assert duck.fetchall() == [(total,)]
    maintenance.consolidate(root)  # the dead writers' temp folders are cleaned up
    assert list((root / "runs").glob(".tmp-*")) == []


def test_kill_9_during_dev_appends_and_consolidation_keeps_flow_files_exact(tmp_path: Path) -> None:
    """20 kills: the flow file stays readable by pyarrow and DuckDB and holds whole runs, each once."""
    root = tmp_path / "telematry_cfs"
    link = root / "flows" / "crashy" / "dev_telemetry.parquet"
    committed: dict[str, int] = {}
    for seed in range(KILLS):
        committed.update(_run_and_kill(tmp_path, "dev", 1000 + seed))
        table = pq.read_table(link, columns=["run_id", "notes"])
        counts = duckdb.sql(
            f"SELECT run_id, count(*), any_value(notes) FROM read_parquet('{link}/*.parquet') GROUP BY 1"
        ).fetchall()
        assert sum(c for _, c, _ in counts) == table.num_rows
        for run_id, count, n in counts:
            assert count == int(n), f"{run_id}: partial run ({count} of {n} rows)"
        assert set(committed) <= {run_id for run_id, _, _ in counts}
    maintenance.consolidate(root, grace_seconds=0)
    assert pq.read_table(link).num_rows == sum(int(n) for _, _, n in counts)


def _open_run_child(data_dir: Path, write_fd: int) -> None:
    """One production run that never ends; reports what the books say is exported as it goes."""
    telemetry = _pipeline(data_dir, capsule_flush_rows=500, capsule_flush_seconds=0.05)
    with fda.run("open_run", telemetry=telemetry, units={}, method={}) as run:
        for i in range(10**9):
            run.iteration(iter=i, **CORE)
            if i % 100 == 0:
                snap = next(s for s in telemetry.sink_stats() if s.sink == "capsule")
                os.write(write_fd, f"{snap.exported}\n".encode())


def test_kill_9_during_an_open_production_run_loses_nothing_booked_exported(tmp_path: Path) -> None:
    """Kill a recorder in the middle of a run: the next consolidation publishes it as ``interrupted``
    with at least every row the books had called exported, iterations contiguous from 0."""
    root = tmp_path / "telematry_cfs"
    for seed in range(5):
        pid, read_fd = forked(_open_run_child, tmp_path)
        buffer, exported = b"", 0
        rng = random.Random(seed)
        target = rng.randint(1_000, 5_000)
        while exported < target:
            ready, _, _ = select.select([read_fd], [], [], 60)
            assert ready, "child made no progress"
            buffer += os.read(read_fd, 65536)
            exported = max([exported, *(int(x) for x in buffer.split(b"\n")[:-1])])
        select.select([read_fd], [], [], rng.uniform(0.0, 0.2))  # a random kill point
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while chunk := os.read(read_fd, 65536):
            buffer += chunk
        os.close(read_fd)
        lines = buffer.split(b"\n")[:-1]  # a line cut by the kill is not a report
        exported = max(int(x) for x in lines)
        (recovered,) = maintenance.consolidate(root)["recovered"]
        manifest = schema.read_manifest(root / "runs" / recovered / "manifest.toml")
        telemetry = pq.read_table(root / "runs" / recovered / "telemetry.parquet")
        assert manifest["status"] == "interrupted"
        assert manifest["rows"] == telemetry.num_rows
        assert telemetry.num_rows + manifest["events"] >= exported, (telemetry.num_rows, exported)
        assert telemetry.column("iter").to_pylist() == list(range(telemetry.num_rows))
        assert list((root / "runs").glob(".tmp-*")) == []


def test_a_manifest_cut_off_by_a_kill_is_not_published(tmp_path: Path) -> None:
    """A writer killed while writing its manifest (before the temp file's rename) leaves the temp
    file in its folder: recovery publishes the run from its journals without it."""
    root = tmp_path / "telematry_cfs"
    pid, read_fd = forked(_open_run_child, tmp_path)
    buffer = b""
    while not any(int(x) >= 100 for x in buffer.split(b"\n")[:-1]):  # rows in the journal
        ready, _, _ = select.select([read_fd], [], [], 60)
        assert ready, "child made no progress"
        buffer += os.read(read_fd, 65536)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read_fd)
    (folder,) = (root / "runs").glob(".tmp-fda_run_*[0-9]")
    (folder / f".tmp-manifest.toml-{pid}").write_bytes(b'schema_version = 3\nrun_id = "fda_run_')
    (recovered,) = maintenance.consolidate(root)["recovered"]
    names = {p.name for p in (root / "runs" / recovered).iterdir()}
    assert names == {"manifest.toml", "telemetry.parquet", "events.parquet"}
