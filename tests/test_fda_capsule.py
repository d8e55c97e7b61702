"""The capsule sink and the runs API: round trips, layout, versions, consolidation, retention."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadWriteLogRecord
from otel_tele.exporters.capsule import CapsuleSink, NewerSchemaError, maintenance, schema
from otel_tele.instrumentation import fda

import otel_tele
from otel_tele.runs import Runs
from otel_tele.semconv import fda as v

from .sink_samples.capsule import CORE

CERT = {
    "units": {"phi_residual": "L2 norm", "invariant_drift_max": "relative"},
    "method": {"phi_residual": "||Ax-y||/||y||", "invariant_drift_max": "max |I_k - I_0|"},
}
SPECIAL = [0.0, -1.5, math.nan, math.inf, -math.inf, 1e308, 5e-324]


@pytest.fixture
def telemetry(tmp_path: Path) -> Iterator[otel_tele.Telemetry]:
    t = otel_tele.setup(
        local=True,
        sinks=["capsule"],
        data_dir=tmp_path,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    yield t
    t.shutdown(10_000)


def root_of(tmp_path: Path) -> Path:
    return tmp_path / "telematry_cfs"


def record_run(
    telemetry: otel_tele.Telemetry, mode: str = "production", n: int = 7, flow: str = "flow_a", **kwargs: Any
) -> fda.Run:
    if mode == "tuner":
        kwargs.setdefault("trial_id", "trial_1")
    with fda.run(flow, mode=mode, telemetry=telemetry, **CERT, **kwargs) as run:
        for i in range(n):
            run.iteration(
                iter=i,
                **{**CORE, "E": SPECIAL[i % len(SPECIAL)], "grad_norm": float(i)},
                lambda_=0.1,
                notes="ünïcode ✓",
                level_active_max=i,
            )
        run.event("CERT_PASS", {"ok": True})
    return run


def same(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("mode", ["production", "dev", "tuner"])
def test_values_round_trip_through_pyarrow_and_duckdb(
    mode: str, telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    """NaN, ±inf and extremes read back identical in every mode, through pyarrow and DuckDB."""
    run = record_run(telemetry, mode, n=len(SPECIAL))
    root = root_of(tmp_path)
    path = (
        root / "runs" / run.run_id / "telemetry.parquet"
        if mode == "production"
        else root / "flows" / "flow_a" / f"{mode}_telemetry.parquet"
    )
    table = pq.read_table(path)
    assert same(table.column("E").to_pylist(), SPECIAL)
    assert table.column("notes").to_pylist() == ["ünïcode ✓"] * len(SPECIAL)
    assert set(table.column("run_id").to_pylist()) == {run.run_id}
    assert set(table.column("flow_name").to_pylist()) == {"flow_a"}
    assert table.column("lambda").to_pylist() == [0.1] * len(SPECIAL)
    pattern = str(path) if mode == "production" else str(path / "*.parquet")
    duck = duckdb.sql(f"SELECT \"E\" FROM read_parquet('{pattern}') ORDER BY iter").fetchall()
    assert same([row[0] for row in duck], SPECIAL)
    via_views = Runs(root).query('SELECT "E" FROM telemetry WHERE run_id = ? ORDER BY iter', [run.run_id])
    assert same([row[0] for row in via_views["rows"]], SPECIAL)


def test_production_capsule_layout_manifest_and_metadata(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    """runs/<id>/ holds the manifest (units, method, rows, version) and both Parquet files."""
    run = record_run(telemetry, n=12)
    folder = root_of(tmp_path) / "runs" / run.run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "events.parquet",
        "manifest.toml",
        "telemetry.parquet",
    ]
    manifest = schema.read_manifest(folder / "manifest.toml")
    assert manifest["rows"] == 12 and manifest["status"] == "completed"
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    assert manifest["units"]["phi_residual"] == "L2 norm" and "invariant_drift_max" in manifest["method"]
    meta = pq.ParquetFile(folder / "telemetry.parquet").schema_arrow.metadata
    assert meta[schema.VERSION_KEY] == str(schema.SCHEMA_VERSION).encode()
    assert pq.ParquetFile(folder / "telemetry.parquet").metadata.row_group(0).column(0).compression == "ZSTD"
    events = pq.read_table(folder / "events.parquet").column("event").to_pylist()
    assert events == ["RUN_STARTED", "CERT_PASS", "RUN_FINISHED"]


def test_every_core_field_is_present_and_non_null(telemetry: otel_tele.Telemetry, tmp_path: Path) -> None:
    """The spec's core fields (with phi_residual and invariant_drift_max) are non-null in every row."""
    run = record_run(telemetry, n=20)
    table = pq.read_table(root_of(tmp_path) / "runs" / run.run_id / "telemetry.parquet")
    for name in (*v.CORE_FIELDS, "run_id", "flow_name"):
        assert table.column(name).null_count == 0, name


def test_list_and_show_summarise_runs(telemetry: otel_tele.Telemetry, tmp_path: Path) -> None:
    """runs.list() sees every mode; show() returns manifest, events and an ordered trajectory."""
    runs = [record_run(telemetry, mode) for mode in ("production", "dev", "tuner")]
    api = Runs(root_of(tmp_path))
    listed = {row["run_id"]: row for row in api.list()}
    assert set(listed) == {r.run_id for r in runs}
    assert {row["status"] for row in listed.values()} == {"completed"}
    shown = api.show(runs[0].run_id, points=3)
    assert shown["manifest"]["run_id"] == runs[0].run_id
    iters = [row["iter"] for row in shown["trajectory"]]
    assert iters == sorted(iters) and iters[-1] == 6
    with pytest.raises(KeyError):
        api.show("fda_run_19990101_000000")
    with pytest.raises(ValueError):
        api.show("fda_run_x' OR '1'='1")


def test_the_shared_catalog_sees_new_runs_and_serves_a_forked_child(
    telemetry: otel_tele.Telemetry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """list/show share one DuckDB catalog per root: a run published later is listed (its folder
    changed the root's signature), even when every folder is older than the settle time; a forked
    child lists the same runs through its own database."""
    import otel_tele.runs as runs_module

    first = record_run(telemetry, "production")
    api = Runs(root_of(tmp_path))
    assert [row["run_id"] for row in api.list()] == [first.run_id]
    monkeypatch.setattr(runs_module, "_SETTLE_S", 0.0)  # trust mtimes at once: the signature decides
    time.sleep(0.01)  # a new mtime tick for the runs/ folder (file-system clock granularity)
    second = record_run(telemetry, "production")
    assert {row["run_id"] for row in api.list()} == {first.run_id, second.run_id}
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a DuckDB of its own, never the parent's
        code = 1
        try:
            code = (
                0
                if {row["run_id"] for row in Runs(root_of(tmp_path)).list()}
                == {
                    first.run_id,
                    second.run_id,
                }
                else 2
            )
        finally:
            os.write(write_fd, str(code).encode())
            os._exit(code)
    os.close(write_fd)
    try:
        _, status = os.waitpid(pid, 0)
        assert os.read(read_fd, 16) == b"0" and os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(read_fd)
    assert len(api.list()) == 2  # the parent's catalog still works after the fork


def test_query_binds_parameters_instead_of_splicing(telemetry: otel_tele.Telemetry, tmp_path: Path) -> None:
    """A hostile value passed as a parameter is data, not SQL."""
    record_run(telemetry)
    result = Runs(root_of(tmp_path)).query(
        "SELECT count(*) FROM telemetry WHERE run_id = ?", ["x' OR '1'='1"]
    )
    assert result["rows"] == [[0]]


def test_newer_schema_version_is_a_clear_error(telemetry: otel_tele.Telemetry, tmp_path: Path) -> None:
    """A manifest or Parquet file from a newer library is refused with NewerSchemaError."""
    run = record_run(telemetry)
    root = root_of(tmp_path)
    folder = root / "runs" / run.run_id
    table = pq.read_table(folder / "telemetry.parquet")
    newer = table.replace_schema_metadata({schema.VERSION_KEY: b"99"})
    pq.write_table(newer, folder / "telemetry.parquet")
    with pytest.raises(NewerSchemaError, match="99"):
        Runs(root).list()
    pq.write_table(table, folder / "telemetry.parquet")
    manifest = folder / "manifest.toml"
    manifest.write_text(manifest.read_text().replace("schema_version = 3", "schema_version = 42"))
    with pytest.raises(NewerSchemaError, match="42"):
        Runs(root).show(run.run_id)


def test_sink_refuses_to_append_to_a_flow_with_a_newer_schema(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    """Appending to a flow written by a newer library is refused; the existing rows stay untouched."""
    record_run(telemetry, "dev", n=3)
    flow_dir = root_of(tmp_path) / "flows" / "flow_a"
    manifest = flow_dir / "manifest.toml"
    manifest.write_text(manifest.read_text().replace("schema_version = 3", "schema_version = 7"))
    record_run(telemetry, "dev", n=5)
    assert pq.read_table(flow_dir / "dev_telemetry.parquet").num_rows == 3
    stats = next(s for s in telemetry.sink_stats() if s.sink == "capsule")
    assert stats.failed == 5 + 3 and stats.reconciles  # 5 iterations, RUN_STARTED, CERT_PASS, RUN_FINISHED


def fake_record(event: str, attrs: dict[str, Any], ts_ns: int) -> ReadWriteLogRecord:
    return ReadWriteLogRecord(LogRecord(timestamp=ts_ns, attributes=attrs, event_name=event))


def iteration_attrs(run_id: str, flow: str, mode: str = "dev", i: int = 0) -> dict[str, Any]:
    return {v.RUN_ID: run_id, v.FLOW_NAME: flow, v.MODE: mode, "iter": i, "t_wall_ms": float(i), **CORE}


def test_sink_rejects_foreign_records_with_unsafe_names(tmp_path: Path) -> None:
    """Records from another producer with path-like names are rejected; nothing lands outside the root."""
    sink = CapsuleSink(tmp_path / "root")
    now = time.time_ns()
    bad = [
        fake_record(v.ITERATION, iteration_attrs("fda_run_1", "../escape"), now),
        fake_record(v.ITERATION, iteration_attrs("../../x", "ok"), now),
        fake_record(v.ITERATION, iteration_attrs("fda_run_2", "ok", mode="bogus"), now),
    ]
    assert sink.write_logs(bad).failed == 3
    sink.close()
    assert not (tmp_path / "escape").exists() and not (tmp_path / "root" / "flows" / "ok").exists()


def test_consolidation_compacts_applies_retention_and_keeps_every_row(tmp_path: Path) -> None:
    """consolidate(): parts become one file with large row groups; rows older than 90 days go."""
    root = tmp_path / "root"
    sink = CapsuleSink(root, fsync=False)
    now, old = time.time_ns(), time.time_ns() - 100 * 86_400 * 10**9
    for k, ts in enumerate([old, now, now]):
        rid = f"fda_run_{k}"
        sink.write_logs(
            [fake_record(v.ITERATION, iteration_attrs(rid, "flow_c", i=i), ts) for i in range(50)]
            + [
                fake_record(
                    v.RUN_EVENT,
                    {
                        v.RUN_ID: rid,
                        v.FLOW_NAME: "flow_c",
                        v.MODE: "dev",
                        v.EVENT: "RUN_FINISHED",
                        v.PAYLOAD: "{}",
                    },
                    ts,
                )
            ]
        )
    sink.close()
    link = root / "flows" / "flow_c" / "dev_telemetry.parquet"
    assert len(list(link.glob("*.parquet"))) == 3 and pq.read_table(link).num_rows == 150
    report = maintenance.consolidate(root, grace_seconds=0)
    files = list(link.glob("*.parquet"))
    assert [f.name[:2] for f in files] == ["c-"]
    assert pq.read_table(link).num_rows == 100
    assert sorted(set(pq.read_table(link).column("run_id").to_pylist())) == ["fda_run_1", "fda_run_2"]
    assert any(r["file"] == "dev_telemetry" and r["rows_out"] == 100 for r in report["files"])
    again = maintenance.consolidate(root, grace_seconds=0)  # nothing to do: the compact file is left alone
    assert any(r.get("skipped") for r in again["files"])
    assert duckdb.connect(str(root / "duckdb.db")).execute("SELECT count(*) FROM telemetry").fetchall() == [
        (100,)
    ]


def test_archive_moves_dev_runs_into_run_folders_and_export_writes_one_file(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    """--archive FLOW turns its dev runs into runs/<id>/ capsules; --export writes one Parquet."""
    dev_runs = [record_run(telemetry, "dev", n=5) for _ in range(2)]
    record_run(telemetry, "production", n=4)
    root = root_of(tmp_path)
    report = maintenance.consolidate(
        root, archive=["flow_a"], export=tmp_path / "all.parquet", grace_seconds=0
    )
    assert sorted(report["archived"]) == sorted(r.run_id for r in dev_runs)
    for run in dev_runs:
        manifest = schema.read_manifest(root / "runs" / run.run_id / "manifest.toml")
        assert manifest["mode"] == "dev" and manifest["rows"] == 5 and "archived_from" in manifest
    assert pq.read_table(root / "flows" / "flow_a" / "dev_telemetry.parquet").num_rows == 0
    assert report["export"]["rows"] == 14 and pq.read_table(tmp_path / "all.parquet").num_rows == 14


def test_prune_removes_runs_whose_manifest_expired(telemetry: otel_tele.Telemetry, tmp_path: Path) -> None:
    """Runs are kept forever unless their manifest sets retention_days; prune honours it."""
    keep = record_run(telemetry)
    expire = record_run(telemetry, retention_days=0)
    root = root_of(tmp_path)
    dry = maintenance.prune(root, dry_run=True)
    assert dry["runs_removed"] == [expire.run_id] and (root / "runs" / expire.run_id).exists()
    maintenance.prune(root)
    assert sorted(p.name for p in (root / "runs").iterdir() if not p.name.startswith(".")) == [keep.run_id]


def test_close_completes_an_open_production_run_as_incomplete(tmp_path: Path) -> None:
    """Records of a run that never ended are kept: close() publishes it with status incomplete."""
    sink = CapsuleSink(tmp_path / "root", fsync=False)
    sink.write_logs(
        [fake_record(v.ITERATION, iteration_attrs("fda_run_open", "f", "production", i), 1) for i in range(4)]
    )
    assert not (tmp_path / "root" / "runs" / "fda_run_open").exists()
    sink.close()
    manifest = schema.read_manifest(tmp_path / "root" / "runs" / "fda_run_open" / "manifest.toml")
    assert (manifest["status"], manifest["rows"]) == ("incomplete", 4)


def _append_runs(data_dir: Path, runs: int, n: int) -> None:
    t = otel_tele.setup(
        local=True,
        sinks=["capsule"],
        data_dir=data_dir,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    for k in range(runs):
        with fda.run("shared", mode="dev", telemetry=t, units={}, method={}) as run:
            for i in range(n):
                run.iteration(iter=i, **CORE, notes=str(k))
    t.shutdown(10_000)


def test_two_processes_append_to_the_same_flow_concurrently(tmp_path: Path) -> None:
    """Concurrent appenders both succeed and every row of both is readable afterwards."""
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _append_runs(tmp_path, runs=5, n=400)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids] == [0, 0]
    link = root_of(tmp_path) / "flows" / "shared" / "dev_telemetry.parquet"
    table = pq.read_table(link)
    assert table.num_rows == 2 * 5 * 400
    counts = duckdb.sql(
        f"SELECT run_id, count(*) FROM read_parquet('{link}/*.parquet') GROUP BY 1"
    ).fetchall()
    assert len(counts) == 10 and {c for _, c in counts} == {400}


def test_unreadable_manifest_is_reported_not_crashed_on(
    telemetry: otel_tele.Telemetry, tmp_path: Path
) -> None:
    """A corrupt manifest is a clear ValueError naming the file."""
    run = record_run(telemetry)
    manifest = root_of(tmp_path) / "runs" / run.run_id / "manifest.toml"
    manifest.write_bytes(b"\xff\xfe not toml")
    with pytest.raises(ValueError, match="manifest"):
        schema.read_manifest(manifest)


def test_arrow_schema_is_declared_once_for_both_layouts() -> None:
    """Production and flow files share one schema per table, spec field names as columns."""
    names = schema.SCHEMAS["telemetry"].names
    assert names[:5] == ["run_id", "flow_name", "mode", "trial_id", "ts"] and names[5:] == list(v.FIELDS)
    assert schema.SCHEMAS["events"].names[-3:] == [
        "t_wall_ms",
        "event",
        "payload",
    ]
    assert isinstance(schema.SCHEMAS["telemetry"].field("iter").type, pa.DataType)


def test_to_arrow_typed_and_untyped_batches() -> None:
    """Typed batches convert in one step (extra attributes ignored); a batch Arrow refuses as it
    stands (values from OTLP, not typed by the event path) is coerced column by column, the
    hopeless value becoming null rather than failing its batch."""
    base = {v.RUN_ID: "fda_run_x", v.FLOW_NAME: "f", v.MODE: "dev", "phase": "GREEN", "t_wall_ms": 1.5}
    typed = [(2_000_000_000_123_456_789, {**base, "iter": 3, "E": math.inf, "not.a.column": object()})]
    table = schema.to_arrow("telemetry", typed)
    assert table.schema == schema.SCHEMAS["telemetry"]
    row = table.to_pylist()[0]
    assert row["iter"] == 3 and row["E"] == math.inf and row["phase"] == "GREEN"
    assert row["ts"].timestamp() == 2_000_000_000.123456
    untyped = [(1, {**base, "iter": "7", "E": "1.5", "grad_norm": "not a number", "phase": 3})]
    row = schema.to_arrow("telemetry", untyped).to_pylist()[0]
    assert row["iter"] == 7 and row["E"] == 1.5 and row["grad_norm"] is None and row["phase"] == "3"


@pytest.mark.parametrize("finisher", ["next_run", "consolidate"])
def test_publication_cut_between_its_renames_is_finished_later(
    telemetry: otel_tele.Telemetry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finisher: str
) -> None:
    """A dev run's telemetry and events parts become visible by two renames. A process dying between
    them (simulated: the second rename fails) leaves a journal; the next writer or consolidation of
    the flow finishes it, so the run's telemetry never stays without its events."""
    from otel_tele.exporters.capsule import _flow as flows

    real_publish = flows.FlowFile.publish
    calls = []

    def dies_on_second_rename(self: flows.FlowFile, tmp: Path, part_name: str) -> Path:
        calls.append(part_name)
        if len(calls) == 2:
            raise OSError("killed between the renames")
        return real_publish(self, tmp, part_name)

    monkeypatch.setattr(flows.FlowFile, "publish", dies_on_second_rename)
    first = record_run(telemetry, mode="dev", n=5)
    monkeypatch.setattr(flows.FlowFile, "publish", real_publish)
    flow_dir = root_of(tmp_path) / "flows" / "flow_a"
    assert (flow_dir / flows.JOURNAL).exists()
    events_file, telemetry_file = flow_dir / "dev_events.parquet", flow_dir / "dev_telemetry.parquet"

    def run_ids(file: Path) -> list[str]:
        return pq.read_table(file).column("run_id").to_pylist() if file.exists() else []

    half = (first.run_id in run_ids(events_file), first.run_id in run_ids(telemetry_file))
    assert half in ((True, False), (False, True))  # half published, every file still readable

    leftovers = flows.journaled_parts(flow_dir)
    assert sum((flow_dir / name).exists() for name in leftovers) == 1  # the part not yet renamed
    if finisher == "next_run":
        record_run(telemetry, mode="dev", n=3)
    else:
        for name in leftovers:  # old enough for temp cleaning, which must leave journaled parts alone
            if (flow_dir / name).exists():
                os.utime(flow_dir / name, (time.time() - 3 * 86400,) * 2)
        maintenance.consolidate(root_of(tmp_path), grace_seconds=0)
    assert not (flow_dir / flows.JOURNAL).exists()
    assert run_ids(telemetry_file).count(first.run_id) == 5
    event_ids = run_ids(events_file)
    assert {"RUN_STARTED", "RUN_FINISHED"} <= {
        e
        for r, e in zip(event_ids, pq.read_table(events_file).column("event").to_pylist(), strict=True)
        if r == first.run_id
    }
    assert not list(flow_dir.glob(".tmp-*"))


def test_a_merge_in_progress_is_invisible_to_readers(telemetry: otel_tele.Telemetry, tmp_path: Path) -> None:
    """A consolidation writes its merged file beside the parts; readers glob ``*.parquet`` (which in
    DuckDB matches dot files too), so the file being written must not end in ``.parquet``."""
    from otel_tele.exporters.capsule._flow import merge_temp

    run = record_run(telemetry, "dev", n=5)
    assert telemetry.force_flush(30_000)
    root = root_of(tmp_path)
    [part] = sorted((root / "flows").glob("*/*.parquet/*.parquet"))[:1]
    half_written = merge_temp(part.with_name("c-merged.parquet"))
    half_written.write_bytes(b"PAR1 half a file")  # what a reader would see mid-merge
    rows = Runs(root).list()
    assert [r["run_id"] for r in rows] == [run.run_id] and rows[0]["rows"] == 5
