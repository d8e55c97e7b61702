"""The general store under crashes, bad input, retention and compaction (issue 15 §2).

- kill -9 while rows are written and parts compacted: every row the books called exported is in the
  store afterwards, exactly once, and every visible file is whole;
- a record too large, or one Arrow refuses, fails alone; its neighbours are stored;
- memory stays bounded: rows are flushed to a part at the row threshold;
- retention removes partitions past their days; compaction merges parts without losing or
  duplicating a row, and finishes a compaction a kill interrupted.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import select
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from opentelemetry._logs import LogRecord
from otel_tele.exporters.store import _parts, maintain, schema
from otel_tele.exporters.store._rows import MAX_RECORD_CHARS

from otel_tele import Telemetry

from .test_exported_is_durable import pipeline, wait_until
from .test_exported_is_durable import pipelines as pipelines  # the fixture: pipelines shut down after
from .test_sink_contract import stats_of


def _seqs(root: Path) -> list[int]:
    """The ``seq`` attribute of every log row in the store (read with pyarrow, hive layout)."""
    if not list((root / "logs").glob("*/*.parquet")):
        return []
    table = ds.dataset(root / "logs", partitioning="hive").to_table(columns=["attributes"])
    return [json.loads(text)["seq"] for text in table.column("attributes").to_pylist()]


# -- kill -9 --------------------------------------------------------------------------------------
def _child(data_dir: Path, write_fd: int) -> None:
    """Emit numbered log records forever; after each batch report the books' exported count, and
    compact now and then (so kills land inside compactions too)."""
    telemetry = pipeline(
        data_dir, ["store"], store_flush_rows=300, store_flush_seconds=0.05, blrp_schedule_delay_millis=5
    )
    sink = telemetry.sinks["store"]
    sink.compact_min_parts = 3  # type: ignore[attr-defined]
    logger = telemetry.logger("crash")
    seq = 0
    for round_ in range(1_000_000):
        for _ in range(97):
            logger.emit(LogRecord(body="x" * 50, attributes={"seq": seq}))
            seq += 1
        os.write(write_fd, f"{stats_of(telemetry, 'store', 'logs').exported}\n".encode())
        if round_ % 7 == 3:
            sink.maintain_now()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_kill_9_loses_no_row_booked_exported_and_keeps_none_twice(tmp_path: Path) -> None:
    for seed in range(6):
        data_dir = tmp_path / f"telemetry-{seed}"
        root = data_dir / "store"
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            try:
                _child(data_dir, write_fd)
            finally:
                os._exit(1)
        os.close(write_fd)
        rng = random.Random(seed)
        target = rng.randint(1_000, 4_000)
        buffer, exported = b"", 0
        while exported < target:
            ready, _, _ = select.select([read_fd], [], [], 60)
            assert ready, "child made no progress"
            buffer += os.read(read_fd, 65536)
            exported = max([exported, *(int(x) for x in buffer.split(b"\n")[:-1])])
        select.select([read_fd], [], [], rng.uniform(0.0, 0.1))  # a random kill point
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while chunk := os.read(read_fd, 65536):
            buffer += chunk
        os.close(read_fd)
        exported = max(int(x) for x in buffer.split(b"\n")[:-1])  # a line cut by the kill is none
        # Every visible file is whole (a footer), before and after the next maintenance finishes
        # what the kill interrupted.
        for path in root.glob("logs/*/*.parquet"):  # pathlib's glob matches dot files: DuckDB's does too
            pq.ParquetFile(path).metadata  # noqa: B018 - raises on a torn file
        with duckdb.connect() as con:
            con.execute(
                f"SELECT count(*) FROM read_parquet('{schema.dataset_glob(root, 'logs')}')"
            ).fetchall()
        maintain(root, retention_days=30, min_parts=2, target_bytes=1 << 30)
        seqs = sorted(_seqs(root))
        assert len(seqs) == len(set(seqs)), "a row kept twice"
        assert len(seqs) >= exported, (len(seqs), exported)
        assert seqs == list(range(len(seqs)))  # parts are published in order: what is there is a prefix
        assert not list(root.glob("logs/*/.tmp-*")) and not list(root.glob("logs/*/.compacting-*"))


# -- bad input, bounded memory --------------------------------------------------------------------
def test_a_record_too_large_or_unconvertible_fails_alone(tmp_path: Path, pipelines: list[Telemetry]) -> None:
    telemetry = pipeline(
        tmp_path, ["store"], scrub=False
    )  # scrubbing 8 MB values takes seconds, not the point
    pipelines.append(telemetry)
    logger = telemetry.logger("bad")
    tracer = telemetry.tracer("bad")
    for seq in range(10):
        logger.emit(LogRecord(body="ok", attributes={"seq": seq}))
        if seq == 3:
            logger.emit(LogRecord(body="x" * (MAX_RECORD_CHARS + 1), attributes={"seq": -1}))
        if seq == 5:
            logger.emit(LogRecord(body="\ud800 lone", attributes={"seq": 100, "nan": float("nan")}))
        with tracer.start_as_current_span(f"s{seq}") as span:
            if seq == 7:
                span.set_attribute("huge", "y" * (MAX_RECORD_CHARS + 1))
    assert telemetry.force_flush(10_000)
    root = tmp_path / "store"
    assert sorted(_seqs(root)) == [*range(10), 100]
    logs = stats_of(telemetry, "store", "logs")
    assert (logs.exported, logs.failed, logs.pending) == (11, 1, 0) and logs.reconciles
    spans = stats_of(telemetry, "store", "traces")
    assert (spans.exported, spans.failed) == (9, 1) and spans.reconciles
    names = ds.dataset(root / "spans", partitioning="hive").to_table(columns=["name"]).column("name")
    assert sorted(names.to_pylist()) == sorted(f"s{i}" for i in range(10) if i != 7)
    bodies = ds.dataset(root / "logs", partitioning="hive").to_table(columns=["body"]).column("body")
    assert "\\ud800 lone" in bodies.to_pylist()


def test_rows_are_pending_until_their_part_is_written_and_parts_are_bounded(
    tmp_path: Path, pipelines: list[Telemetry]
) -> None:
    """Held rows are booked pending, never exported; at the row threshold a part is written."""
    telemetry = pipeline(tmp_path, ["store"], store_flush_rows=100, store_flush_seconds=3_600)
    pipelines.append(telemetry)
    logger = telemetry.logger("bounded")
    for seq in range(1_050):
        logger.emit(LogRecord(body="b", attributes={"seq": seq}))
    # The batches reach the sink on their schedule; no flush, which would force held rows out.
    assert wait_until(lambda: stats_of(telemetry, "store", "logs").queued == 0)
    books = stats_of(telemetry, "store", "logs")
    assert books.reconciles and books.exported + books.pending == 1_050
    assert books.exported == len(_seqs(tmp_path / "store")) >= 1_000  # durable == on disk
    assert books.pending < 100 + 2_048  # at most a threshold plus one batch held in memory
    parts = list((tmp_path / "store" / "logs").glob("*/p-*.parquet"))
    assert all(pq.ParquetFile(p).metadata.num_rows < 100 + 2_048 for p in parts)
    assert telemetry.force_flush(10_000)
    books = stats_of(telemetry, "store", "logs")
    assert (books.exported, books.pending) == (1_050, 0)
    assert sorted(_seqs(tmp_path / "store")) == list(range(1_050))


# -- retention and compaction -------------------------------------------------------------------
def _table(seqs: range) -> pa.Table:
    from otel_tele.exporters.store._rows import table_of

    rows = [
        (
            1,
            1,
            9,
            "INFO",
            "b",
            "string",
            None,
            None,
            None,
            None,
            json.dumps({"seq": s}),
            0,  # dropped_attributes_count
            None,
            None,
            "t",
            None,
            None,
        )
        for s in seqs
    ]
    return table_of("logs", rows)


def test_retention_removes_partitions_past_their_days(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _parts.publish(root, "logs", [_table(range(0, 10))], fsync=False)
    today = _parts.partition_dir(root, "logs")
    for days_ago in (1, 5, 40):
        old = _parts.partition_dir(root, "logs", (datetime.now(UTC) - timedelta(days=days_ago)).date())
        old.mkdir(parents=True)
        (old / "p-1-1-1.parquet").write_bytes(next(today.glob("p-*.parquet")).read_bytes())
    report = maintain(root, retention_days=5, min_parts=99, target_bytes=1 << 30, fsync=False)
    assert report["logs"]["expired_rows"] == 10  # the 40-day-old partition
    left = sorted(p.name for p in (root / "logs").iterdir() if p.is_dir())
    assert len(left) == 3 and all(
        (datetime.now(UTC).date() - datetime.fromisoformat(name.split("=")[1]).date()).days <= 5
        for name in left
    )


def test_compaction_merges_parts_exactly_and_finishes_an_interrupted_one(tmp_path: Path) -> None:
    root = tmp_path / "store"
    for start in range(0, 100, 10):
        _parts.publish(root, "logs", [_table(range(start, start + 10))], fsync=False)
    folder = _parts.partition_dir(root, "logs")
    report = maintain(root, retention_days=30, min_parts=4, target_bytes=1 << 30, fsync=False)
    assert report["logs"]["parts_in"] == 10 and report["logs"]["files_out"] == 1
    assert [p.name[:2] for p in folder.glob("*.parquet")] == ["c-"]
    assert sorted(_seqs(root)) == list(range(100))
    # A compaction killed after its output was renamed, before its inputs went: the intent names them.
    for start in range(100, 130, 10):
        _parts.publish(root, "logs", [_table(range(start, start + 10))], fsync=False)
    inputs = sorted(folder.glob("p-*.parquet"))
    merged = folder / "c-9-9-9.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(p) for p in inputs]), merged)
    (folder / f"{_parts.INTENT_PREFIX}{merged.name}.json").write_text(
        json.dumps({"output": merged.name, "inputs": [p.name for p in inputs]})
    )
    assert len(_seqs(root)) == 160  # duplicates visible until the next maintenance
    # One killed before its rename: an intent without its output is dropped, inputs kept.
    (folder / f"{_parts.INTENT_PREFIX}c-8-8-8.parquet.json").write_text(
        json.dumps({"output": "c-8-8-8.parquet", "inputs": [merged.name]})
    )
    (folder / ".tmp-c-8-999999999-8.parquet.tmp").write_bytes(b"torn")  # its dead writer's temp file
    maintain(root, retention_days=30, min_parts=99, target_bytes=1 << 30, fsync=False)
    assert sorted(_seqs(root)) == list(range(130))
    assert not list(folder.glob(".compacting-*")) and not list(folder.glob(".tmp-*"))


def test_compaction_sorts_spans_by_trace_so_row_groups_prune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merged spans file is ordered by (trace_id, start_time) across all its inputs, so the row
    groups' trace_id statistics are sorted and do not overlap (a lookup of one trace reads one row
    group): also when the merge is written in several passes of bounded memory. Every row is kept
    once (a span stored twice: its first copy), and the file says how it is sorted."""
    monkeypatch.setattr(_parts, "SORTED_ROW_GROUP_ROWS", 500)
    monkeypatch.setattr(_parts, "MERGE_MEMORY_BYTES", 200_000)  # a few row groups per pass
    rng = random.Random(7)
    traces = [f"{rng.getrandbits(128):032x}" for _ in range(1_200)]
    root = tmp_path / "store"
    spans = []
    for n in range(6_000):  # a trace's 5 spans land in different parts, out of time order
        trace = traces[n % len(traces)]
        spans.append({"trace_id": trace, "span_id": f"{n:016x}", "start_time": 10**18 - n, "name": "first"})
    rng.shuffle(spans)
    twice = dict(spans[100], name="second")  # re-sent after a crash: the first copy stays
    for start in range(0, len(spans), 1_000):
        part = spans[start : start + 1_000] + ([twice] if start == 3_000 else [])
        _parts.publish(
            root, "spans", [pa.Table.from_pylist(part, schema=schema.SCHEMAS["spans"])], fsync=False
        )
    report = maintain(root, retention_days=30, min_parts=2, target_bytes=1 << 30, fsync=False)
    assert report["spans"]["files_out"] == 1 and report["spans"]["duplicates"] == 1
    (merged,) = list(_parts.partition_dir(root, "spans").glob("*.parquet"))
    assert merged.name.startswith("c-")
    table = pq.read_table(merged)
    keys = list(
        zip(table["trace_id"].to_pylist(), table["start_time"].cast(pa.int64()).to_pylist(), strict=True)
    )
    assert keys == sorted(keys) and len(keys) == 6_000
    assert sorted(table["span_id"].to_pylist()) == sorted(s["span_id"] for s in spans)
    assert set(table["name"].to_pylist()) == {"first"}
    meta = pq.ParquetFile(merged).metadata
    column = table.schema.get_field_index("trace_id")
    bounds = [
        (meta.row_group(i).column(column).statistics.min, meta.row_group(i).column(column).statistics.max)
        for i in range(meta.num_row_groups)
    ]
    # 100 whole traces a row group (5 spans each): a trace never straddles two of them here.
    assert len(bounds) == 12 and all(meta.row_group(i).num_rows == 500 for i in range(12))
    assert all(low <= high < next_low for (low, high), (next_low, _) in itertools.pairwise(bounds))
    assert [c.column_index for c in meta.row_group(0).sorting_columns] == [
        column,
        table.schema.get_field_index("start_time"),
    ]
    # DuckDB skips every other row group of the file by those statistics (where its plan says so).
    plan = duckdb.sql(
        f"EXPLAIN ANALYZE SELECT * FROM read_parquet('{merged}') WHERE trace_id = '{traces[42]}'"
    ).fetchall()[0][1]
    text = " ".join(plan.replace("│", " ").split())
    if "Row Groups Scanned" in text:
        assert "Row Groups Scanned: 1 / 12" in text


def test_a_flushed_spans_part_carries_a_trace_id_bloom_filter(tmp_path: Path) -> None:
    """A part is in arrival order, so its trace_id statistics admit about any id: its Bloom filter is
    what lets a lookup of a trace it does not hold skip it (a log part has none: nothing looks one up)."""
    if not _parts._WRITES_BLOOM_FILTERS:
        pytest.skip("this pyarrow writes no Bloom filters (< 21)")
    root = tmp_path / "store"
    rows = [{"trace_id": f"{n:032x}", "span_id": f"{n:016x}", "name": "s"} for n in range(0, 2_000, 2)]
    spans = _parts.publish(
        root, "spans", [pa.Table.from_pylist(rows, schema=schema.SCHEMAS["spans"])], fsync=False
    )
    logs = _parts.publish(root, "logs", [_table(range(3))], fsync=False)
    filters = duckdb.sql(
        "SELECT file_name, path_in_schema FROM parquet_metadata(?) WHERE bloom_filter_offset IS NOT NULL",
        params=[[str(spans), str(logs)]],
    ).fetchall()
    assert filters == [(str(spans), "trace_id")]
    # The filter rules out an id between two stored ones (the statistics cannot) and admits a stored one.
    probe = "SELECT bloom_filter_excludes FROM parquet_bloom_probe(?, 'trace_id', ?)"
    assert duckdb.sql(probe, params=[str(spans), f"{1:032x}"]).fetchall() == [(True,)]
    assert duckdb.sql(probe, params=[str(spans), f"{42:032x}"]).fetchall() == [(False,)]
