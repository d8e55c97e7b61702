"""Run artifacts (spec 000: checkpoints, config snapshots, QA logs): atomic publication, manifest
hashes, name validation, dev/tuner layout with retention and archiving, streaming, kill -9 during an
attach, and download over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import LogRecord
from otel_tele.exporters.capsule import CapsuleSink, maintenance, schema
from otel_tele.exporters.capsule import _artifacts as artifacts
from otel_tele.instrumentation import fda

import otel_tele
from otel_tele.cli._serve import build_http_app
from otel_tele.runs import Runs
from otel_tele.semconv import fda as v

from ._fork import forked
from .sink_samples.capsule import CORE
from .test_fda_capsule import root_of, telemetry
from .test_fda_crash import _pipeline
from .test_flow_http import AppServer

__all__ = ["telemetry"]  # the fixture, shared with the capsule tests


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def capsule_stats(telemetry: otel_tele.Telemetry) -> Any:
    return next(s for s in telemetry.sink_stats() if s.sink == "capsule")


def test_production_artifacts_are_published_with_the_run_and_hashed_in_its_manifest(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "ckpt.pkl"
    checkpoint.write_bytes(os.urandom(3 * artifacts.CHUNK_BYTES + 17))  # several chunks, a ragged end
    with fda.run("flow_a", telemetry=telemetry) as run:
        run.iteration(iter=0, **CORE)
        run.attach("checkpoint_0001.pkl", checkpoint, kind="checkpoint")
        run.attach("qa.log", b"all checks passed\n", kind="qa_log")
        run.config({"lambda": 0.1, "lens": "db4", "nested": {"levels": [1, 2]}})
        telemetry.force_flush(10_000)
        # Stored, but only in the run's temp folder: no run folder is visible before the run ends.
        assert [p.name for p in (root_of(tmp_path) / "runs").iterdir() if not p.name.startswith(".")] == []
    folder = root_of(tmp_path) / "runs" / run.run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint_0001.pkl",
        "config.json",
        "events.parquet",
        "manifest.toml",
        "qa.log",
        "telemetry.parquet",
    ]
    listed = schema.read_manifest(folder / "manifest.toml")["artifacts"]
    assert set(listed) == {"checkpoint_0001.pkl", "config.json", "qa.log"}
    for name, entry in listed.items():
        assert entry["size"] == (folder / name).stat().st_size
        assert entry["sha256"] == sha256(folder / name)
    assert listed["checkpoint_0001.pkl"]["kind"] == "checkpoint" and listed["qa.log"]["kind"] == "qa_log"
    assert (folder / "checkpoint_0001.pkl").read_bytes() == checkpoint.read_bytes()
    assert json.loads((folder / "config.json").read_text()) == {
        "lambda": 0.1,
        "lens": "db4",
        "nested": {"levels": [1, 2]},
    }
    shown = Runs(root_of(tmp_path)).show(run.run_id)
    assert {a["name"]: a["sha256"] for a in shown["artifacts"]} == {n: e["sha256"] for n, e in listed.items()}
    stats = capsule_stats(telemetry)
    assert stats.failed == 0 and stats.exported == stats.emitted


def test_a_watcher_never_sees_a_run_folder_without_its_artifacts(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    """Runs ending while a reader lists runs/: every folder it sees holds its manifest and artifacts."""
    runs_dir = root_of(tmp_path) / "runs"
    runs_dir.mkdir(parents=True)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(8 * artifacts.CHUNK_BYTES))
    seen: list[str] = []
    problems: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for folder in runs_dir.iterdir():
                if folder.name.startswith(".") or folder.name in seen:
                    continue
                names = {p.name for p in folder.iterdir()}
                if not {"manifest.toml", "big.bin", "qa.log"} <= names:
                    problems.append(f"{folder.name}: {sorted(names)}")
                seen.append(folder.name)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(5):
            with fda.run("flow_a", telemetry=telemetry) as run:
                run.iteration(iter=0, **CORE)
                run.attach("big.bin", source, kind="checkpoint")
                run.attach("qa.log", b"ok\n", kind="qa_log")
    finally:
        stop.set()
        watcher.join()
    assert problems == []
    assert len(list(p for p in runs_dir.iterdir() if not p.name.startswith("."))) == 5


BAD_NAMES = [
    "../escape",
    "a/b",
    "/etc/passwd",
    "",
    ".hidden",
    "..",
    "a\x00b",
    "line\nbreak",
    "tab\there",
    "bell\x07",
    "x" * 200,
    "manifest.toml",
    "telemetry.parquet",
    "events.parquet",
    "artifacts.jsonl",
    "telemetry.arrows",
    "caf\u00e9.pkl",
    "name ",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_artifact_names_are_refused_before_anything_is_emitted(
    name: str, telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    with fda.run("flow_a", telemetry=telemetry) as run:
        telemetry.force_flush(10_000)
        emitted = capsule_stats(telemetry).emitted
        with pytest.raises(ValueError):
            run.attach(name, b"x")
        with pytest.raises(ValueError):
            run.config({"a": 1}, name=name)
        telemetry.force_flush(10_000)
        assert capsule_stats(telemetry).emitted == emitted
    assert schema.read_manifest(root_of(tmp_path) / "runs" / run.run_id / "manifest.toml")["artifacts"] == {}
    assert not (tmp_path / "escape").exists()


def test_bad_sources_are_refused_at_attach(telemetry: otel_tele.Telemetry, tmp_path: Path) -> None:
    target = tmp_path / "secret.txt"
    target.write_text("secret")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with fda.run("flow_a", telemetry=telemetry) as run:
        for source in (link, tmp_path, tmp_path / "missing.bin"):
            with pytest.raises(ValueError):
                run.attach("x.bin", source)
        with pytest.raises(ValueError, match="write it to a file"):
            run.attach("big.bin", b"\0" * (v.MAX_INLINE_ARTIFACT_BYTES + 1))
        with pytest.raises(ValueError):
            run.attach("x.bin", b"x", kind="weights")
    with pytest.raises(ValueError, match="has ended"):
        run.attach("late.bin", b"x")
    assert schema.read_manifest(root_of(tmp_path) / "runs" / run.run_id / "manifest.toml")["artifacts"] == {}


def test_a_source_swapped_or_changed_after_attach_fails_alone(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    """The sink opens sources without following symlinks and checks the size announced at attach;
    the artifact that fails is counted, the run and its other artifacts are stored."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    swapped, grown = tmp_path / "swapped.bin", tmp_path / "grown.bin"
    swapped.write_bytes(b"a")
    grown.write_bytes(b"b")
    with fda.run("flow_a", telemetry=telemetry) as run:
        run.iteration(iter=0, **CORE)
        run.attach("swapped.bin", swapped)
        run.attach("grown.bin", grown)
        run.attach("kept.log", b"kept\n")
        swapped.unlink()
        swapped.symlink_to(secret)
        grown.write_bytes(b"bbbb")
    folder = root_of(tmp_path) / "runs" / run.run_id
    assert set(schema.read_manifest(folder / "manifest.toml")["artifacts"]) == {"kept.log"}
    assert sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".log")) == ["kept.log"]
    assert not any(p.name.startswith(artifacts.PART_PREFIX) for p in folder.iterdir())
    assert capsule_stats(telemetry).failed == 2


def _artifact_record(run_id: str, **attrs: Any) -> Any:
    from opentelemetry.sdk._logs import ReadWriteLogRecord

    base = {v.RUN_ID: run_id, v.FLOW_NAME: "flow_a", v.MODE: "production"}
    return ReadWriteLogRecord(LogRecord(event_name=v.ARTIFACT, attributes={**base, **attrs}))


def test_records_from_other_processes_cannot_name_local_files(tmp_path: Path) -> None:
    """A record received over OTLP names a path without this process's token: never read. Hostile
    names fail alone; inline content from anyone is stored."""
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    sink = CapsuleSink(tmp_path / "cfs", fsync=False)
    run_id = "fda_run_remote_1"
    records = [
        _artifact_record(run_id, **{v.ARTIFACT_NAME: "stolen.txt", v.ARTIFACT_SOURCE: str(secret)}),
        _artifact_record(
            run_id,
            **{v.ARTIFACT_NAME: "forged.txt", v.ARTIFACT_SOURCE: str(secret), v.ARTIFACT_ORIGIN: "guess"},
        ),
        _artifact_record(run_id, **{v.ARTIFACT_NAME: "../x.txt", v.ARTIFACT_CONTENT: "eA=="}),
        _artifact_record(run_id, **{v.ARTIFACT_NAME: "bad.b64", v.ARTIFACT_CONTENT: "%%%"}),
        _artifact_record(
            run_id, **{v.ARTIFACT_NAME: "qa.log", v.ARTIFACT_CONTENT: base64.b64encode(b"ok").decode()}
        ),
    ]
    written = sink.write_logs(records)
    assert written.failed == 4
    sink.close()
    folder = tmp_path / "cfs" / "runs" / run_id
    assert set(schema.read_manifest(folder / "manifest.toml")["artifacts"]) == {"qa.log"}
    assert (folder / "qa.log").read_bytes() == b"ok"
    assert not (folder / "stolen.txt").exists() and not (tmp_path / "cfs" / "runs" / "x.txt").exists()


def test_dev_artifacts_live_per_run_under_the_flow_and_follow_archiving_and_retention(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    root = root_of(tmp_path)
    run_ids = []
    for k in range(3):
        with fda.run("flow_d", mode="dev", telemetry=telemetry) as run:
            run.iteration(iter=0, **CORE)
            run.attach("qa.log", f"run {k}\n".encode(), kind="qa_log")
            run.config({"k": k})
        run_ids.append(run.run_id)
    base = root / "flows" / "flow_d" / "artifacts"
    assert sorted(p.name for p in base.iterdir()) == sorted(run_ids)  # one folder per run, nothing else
    shown = Runs(root).show(run_ids[1])
    assert {a["name"] for a in shown["artifacts"]} == {"qa.log", "config.json"}
    path, entry = Runs(root).artifact(run_ids[1], "qa.log")
    assert path.read_bytes() == b"run 1\n" and entry["sha256"] == sha256(path)
    # Archiving moves each dev run, its artifacts included, into its own run folder.
    maintenance.consolidate(root, archive=["flow_d"], grace_seconds=0)
    for k, run_id in enumerate(run_ids):
        folder = root / "runs" / run_id
        listed = schema.read_manifest(folder / "manifest.toml")["artifacts"]
        assert set(listed) == {"qa.log", "config.json"}
        assert (folder / "qa.log").read_bytes() == f"run {k}\n".encode()
        assert listed["qa.log"]["sha256"] == sha256(folder / "qa.log")
        assert not (folder / artifacts.INDEX).exists()
    assert list(base.iterdir()) == []
    # Retention removes a dev run's artifacts with its rows.
    with fda.run("flow_d", mode="dev", telemetry=telemetry) as run:
        run.iteration(iter=0, **CORE)
        run.attach("qa.log", b"later\n")
    assert (base / run.run_id / "qa.log").exists()
    (base / run.run_id / f"{artifacts.PART_PREFIX}cut.bin").write_bytes(b"a copy a kill cut off")
    maintenance.consolidate(root, retention_days=1, grace_seconds=0)
    assert (base / run.run_id / "qa.log").exists()  # within retention: kept
    assert not (base / run.run_id / f"{artifacts.PART_PREFIX}cut.bin").exists()
    maintenance.consolidate(root, retention_days=0, grace_seconds=0)
    assert not (base / run.run_id).exists()


def test_a_planted_symlink_in_the_artifact_folder_is_not_written_through(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    run_id = fda.new_run_id()
    folder = schema.artifact_folder(root_of(tmp_path), "flow_d", run_id)
    folder.mkdir(parents=True)
    (folder / f"{artifacts.PART_PREFIX}qa.log").symlink_to(victim)
    (folder / "notes.log").symlink_to(victim)
    with fda.run("flow_d", mode="dev", telemetry=telemetry, run_id=run_id) as run:
        run.iteration(iter=0, **CORE)
        run.attach("qa.log", b"mine\n")
    assert victim.read_text() == "untouched"
    assert (folder / "qa.log").read_bytes() == b"mine\n" and not (folder / "qa.log").is_symlink()
    with pytest.raises(KeyError):
        Runs(root_of(tmp_path)).artifact(run_id, "notes.log")  # a file, but never an artifact


_CHILD = textwrap.dedent(
    """
    import os, resource, sys
    from pathlib import Path
    import otel_tele
    from otel_tele.instrumentation import fda
    from tests.sink_samples.capsule import CORE

    data, source = Path(sys.argv[1]), Path(sys.argv[2])
    t = otel_tele.setup(local=True, sinks=["capsule"], data_dir=data, traces_exporter="none",
                        metrics_exporter="none", logs_exporter="none")
    data.mkdir(parents=True, exist_ok=True)
    warm = data / "warm.bin"
    warm.write_bytes(b"w" * (4 << 20))
    with fda.run("mem", telemetry=t) as run:   # everything imported and warmed once
        run.iteration(iter=0, **CORE)
        run.attach("warm.bin", warm)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with fda.run("mem", telemetry=t) as run:
        run.iteration(iter=0, **CORE)
        run.attach("checkpoint.bin", source, kind="checkpoint")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t.shutdown(10_000)
    print(before, after, run.run_id)
    """
)


def test_a_100_mb_artifact_streams_without_growing_memory(tmp_path: Path) -> None:
    """Peak RSS of a fresh process grows by far less than the artifact while it is stored."""
    source = tmp_path / "checkpoint.bin"
    block = os.urandom(1 << 20)
    with open(source, "wb") as f:
        for _ in range(100):
            f.write(block)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "data"), str(source)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=300,
    )
    before_kb, after_kb, run_id = out.stdout.split()
    growth_mb = (int(after_kb) - int(before_kb)) / 1024
    assert growth_mb < 25, f"peak RSS grew {growth_mb:.1f} MB while storing a 100 MB artifact"
    stored = tmp_path / "data" / "telematry_cfs" / "runs" / run_id / "checkpoint.bin"
    manifest = schema.read_manifest(stored.parent / "manifest.toml")
    assert manifest["artifacts"]["checkpoint.bin"]["sha256"] == sha256(source) == sha256(stored)


def _attach_then_hang(data_dir: Path, source: Path, write_fd: int) -> None:
    """Child: a production run with one artifact stored, then a second one whose copy stops after
    its first chunk (says so on the pipe, then waits to be killed)."""
    telemetry = _pipeline(data_dir, capsule_flush_rows=1)  # rows reach the journal with every batch
    real_write = artifacts._write

    def write(part: Path, chunks: Any, *, fsync: bool) -> tuple[int, str]:
        def first_then_hang() -> Iterator[bytes]:
            for chunk in chunks:
                yield chunk
                if part.name == f"{artifacts.PART_PREFIX}checkpoint.bin":
                    os.write(write_fd, b"copying\n")
                    threading.Event().wait()

        return real_write(part, first_then_hang(), fsync=fsync)

    artifacts._write = write
    with fda.run("crashy", telemetry=telemetry) as run:
        for i in range(20):
            run.iteration(iter=i, **CORE)
        run.attach("qa.log", b"before the kill\n", kind="qa_log")
        telemetry.force_flush(10_000)  # rows in the journal (flush_rows=1), qa.log stored
        run.attach("checkpoint.bin", source, kind="checkpoint")
        telemetry.force_flush(60_000)


@pytest.mark.slow
def test_kill_9_during_an_attach_publishes_an_interrupted_run_with_only_whole_artifacts(
    tmp_path: Path,
) -> None:
    source = tmp_path / "checkpoint.bin"
    source.write_bytes(os.urandom(4 * artifacts.CHUNK_BYTES))
    data_dir = tmp_path / "data"
    pid, read_fd = forked(_attach_then_hang, data_dir, source)
    try:
        assert os.read(read_fd, 64) == b"copying\n"  # blocks until the copy is under way
        root = data_dir / "telematry_cfs"
        (tmp,) = [p for p in (root / "runs").iterdir() if p.is_dir() and p.name.startswith(".tmp-")]
        assert (tmp / f"{artifacts.PART_PREFIX}checkpoint.bin").exists()
        assert [p for p in (root / "runs").iterdir() if not p.name.startswith(".")] == []
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)
    report = maintenance.consolidate(root)
    (run_id,) = report["recovered"]
    folder = root / "runs" / run_id
    manifest = schema.read_manifest(folder / "manifest.toml")
    assert manifest["status"] == "interrupted" and manifest["rows"] == 20
    assert manifest["artifacts"] == {
        "qa.log": {"kind": "qa_log", "size": 16, "sha256": hashlib.sha256(b"before the kill\n").hexdigest()}
    }
    assert sorted(p.name for p in folder.iterdir()) == [
        "events.parquet",
        "manifest.toml",
        "qa.log",
        "telemetry.parquet",
    ]


def test_an_artifact_renamed_but_not_indexed_before_a_kill_is_not_published(tmp_path: Path) -> None:
    """Recovery publishes exactly what the index lists: a copy the kill caught between its rename and
    its index line is removed, as is a partial copy."""
    root = tmp_path / "cfs"
    sink = CapsuleSink(root, fsync=False)
    run_id = "fda_run_killed_1"
    sink.write_logs(
        [
            _artifact_record(run_id, **{v.ARTIFACT_NAME: "qa.log", v.ARTIFACT_CONTENT: "b2s="}),
            _event_record(run_id, v.RUN_STARTED),
        ]
    )
    sink.flush(10_000)
    writer = sink._open[run_id]
    (writer.tmp / "orphan.bin").write_bytes(b"renamed, never indexed")
    (writer.tmp / f"{artifacts.PART_PREFIX}half.bin").write_bytes(b"half")
    # The writer gives the run up without publishing it (what recovery sees after a kill).
    sink._open.clear()
    writer.abandon()
    from otel_tele.exporters.capsule.maintenance import recover_runs

    (published,) = recover_runs(root, fsync=False)
    folder = root / "runs" / published
    assert sorted(p.name for p in folder.iterdir()) == [
        "events.parquet",
        "manifest.toml",
        "qa.log",
        "telemetry.parquet",
    ]
    assert set(schema.read_manifest(folder / "manifest.toml")["artifacts"]) == {"qa.log"}


def _event_record(run_id: str, event: str) -> Any:
    from opentelemetry.sdk._logs import ReadWriteLogRecord

    attrs = {v.RUN_ID: run_id, v.FLOW_NAME: "flow_a", v.MODE: "production", v.EVENT: event, v.T_WALL_MS: 0.0}
    return ReadWriteLogRecord(LogRecord(event_name=v.RUN_EVENT, attributes=attrs))


def test_runs_and_artifacts_over_http(
    telemetry: otel_tele.Telemetry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TELE_DATA_DIR", str(tmp_path))
    source = tmp_path / "ckpt.bin"
    source.write_bytes(os.urandom(5 * artifacts.CHUNK_BYTES + 3))
    with fda.run("flow_h", telemetry=telemetry) as run:
        run.iteration(iter=0, **CORE)
        run.attach("checkpoint_0001.pkl", source, kind="checkpoint")
    with fda.run("flow_h", mode="dev", telemetry=telemetry) as dev:
        dev.iteration(iter=0, **CORE)
        dev.attach("qa.log", b"dev qa\n", kind="qa_log")
    http = AppServer(build_http_app())  # serve's HTTP app, its Host rules included
    try:
        c = http.client
        listed = c.get("/v1/fda/runs").json()["runs"]
        assert {r["run_id"] for r in listed} == {run.run_id, dev.run_id}
        shown = c.get(f"/v1/fda/runs/{run.run_id}").json()
        (entry,) = shown["artifacts"]
        assert entry["name"] == "checkpoint_0001.pkl" and entry["size"] == source.stat().st_size
        got = c.get(f"/v1/fda/runs/{run.run_id}/artifacts/checkpoint_0001.pkl")
        assert got.status_code == 200 and got.content == source.read_bytes()
        assert got.headers["x-content-sha256"] == entry["sha256"] == sha256(source)
        dev_got = c.get(f"/v1/fda/runs/{dev.run_id}/artifacts/qa.log")
        assert dev_got.status_code == 200 and dev_got.content == b"dev qa\n"
        for bad in ("..%2Fmanifest.toml", "manifest.toml", "%2Fetc%2Fpasswd", "a%00b", "telemetry.parquet"):
            response = c.get(f"/v1/fda/runs/{run.run_id}/artifacts/{bad}")
            assert response.status_code in (400, 404), (bad, response.status_code)
            assert str(tmp_path) not in response.text
        assert c.get(f"/v1/fda/runs/{run.run_id}/artifacts/nope.bin").status_code == 404
        assert c.get("/v1/fda/runs/fda_run_nope/artifacts/qa.log").status_code == 404
        assert c.get("/v1/fda/runs/..%2F..%2Fetc/artifacts/passwd").status_code in (400, 404)
        missing = c.get("/v1/fda/runs/fda_run_nope")
        assert missing.status_code == 404 and str(tmp_path) not in missing.text
        # serve's Host rule holds for these routes too
        assert c.get("/v1/fda/runs", headers={"host": "evil.example"}).status_code in (400, 403, 421)
    finally:
        http.stop()


def _attach_forever(data_dir: Path, source: Path, write_fd: int) -> None:
    """Child: production runs, each with a multi-chunk checkpoint and a QA log, reporting each one."""
    telemetry = _pipeline(data_dir, capsule_flush_rows=1)
    for k in range(10_000):
        with fda.run("crashy", telemetry=telemetry) as run:
            run.iteration(iter=0, **CORE)
            run.attach("checkpoint.bin", source, kind="checkpoint")
            run.attach("qa.log", f"run {k}\n".encode(), kind="qa_log")
        os.write(write_fd, f"{run.run_id}\n".encode())


@pytest.mark.slow
def test_kill_9_at_random_points_of_attaching_runs_leaves_every_folder_matching_its_manifest(
    tmp_path: Path,
) -> None:
    """8 kills at random moments of runs that attach 6 MiB each: after recovery every run folder holds
    exactly the artifacts its manifest lists, each matching its size and sha256; finished runs hold
    both; no partial copy or index is left anywhere."""
    import random
    import select

    source = tmp_path / "checkpoint.bin"
    source.write_bytes(os.urandom(6 * artifacts.CHUNK_BYTES))
    root = tmp_path / "telematry_cfs"
    finished: set[str] = set()
    for seed in range(8):
        pid, read_fd = forked(_attach_forever, tmp_path, source)
        buffer = b""
        while b"\n" not in buffer:  # one run finished: kill somewhere after it
            ready, _, _ = select.select([read_fd], [], [], 60)
            assert ready, "child made no progress"
            buffer += os.read(read_fd, 4096)
        select.select([read_fd], [], [], random.Random(seed).uniform(0.0, 0.3))  # a random kill point
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while chunk := os.read(read_fd, 4096):
            buffer += chunk
        os.close(read_fd)
        finished.update(buffer.decode().split("\n")[:-1])
    maintenance.consolidate(root)
    folders = sorted((root / "runs").glob("fda_run_*"))
    assert finished <= {f.name for f in folders}
    assert list((root / "runs").glob(".tmp-*")) == []
    for folder in folders:
        manifest = schema.read_manifest(folder / "manifest.toml")
        listed = manifest["artifacts"]
        names = {p.name for p in folder.iterdir()}
        assert names == {"manifest.toml", "telemetry.parquet", "events.parquet", *listed}, folder.name
        for name, entry in listed.items():
            assert entry["size"] == (folder / name).stat().st_size
            assert entry["sha256"] == sha256(folder / name)
        if folder.name in finished:
            assert set(listed) == {"checkpoint.bin", "qa.log"} and manifest["status"] == "completed"
            assert listed["checkpoint.bin"]["sha256"] == sha256(source)


def test_runs_show_lists_artifacts_in_tables_and_json(
    telemetry: otel_tele.Telemetry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from otel_tele.cli import main

    with fda.run("flow_c", telemetry=telemetry) as run:
        run.iteration(iter=0, **CORE)
        run.attach("qa.log", b"qa\n", kind="qa_log")
    root = str(root_of(tmp_path))
    assert main(["runs", "--root", root, "show", run.run_id]) == 0
    out = capsys.readouterr().out
    digest = hashlib.sha256(b"qa\n").hexdigest()
    assert "Artifacts:" in out and "qa.log" in out and digest in out
    assert main(["runs", "--root", root, "show", run.run_id, "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["artifacts"] == [{"name": "qa.log", "kind": "qa_log", "size": 3, "sha256": digest}]
