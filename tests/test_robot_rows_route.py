"""Robot events straight into the SQLite sink as columns (``otel_tele._event_rows``): the same calls
written through the row path and through ordinary OTel log records give the same tables, digest
sidecar, books and metrics; any other log consumer keeps (or puts back) the record path."""

from __future__ import annotations

import itertools
import math
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from otel_tele.exporters.sqlite.schema import digest_path
from otel_tele.instrumentation.robot import TelemetryCollector, _records

from otel_tele import _events, semconv
from otel_tele.semconv import robot as r

from ._consumers import Seen, books, pipeline_with_reader
from ._robot_helpers import TABLES


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """The calls' clocks made the same in both writes (call it before each write)."""

    def reset() -> None:
        ns = itertools.count(1_767_225_600_000_000_000, 1_000_003)
        mono = itertools.count(1_000)
        monkeypatch.setattr(_records, "_time_ns", lambda: next(ns))
        monkeypatch.setattr(_records, "_mono", lambda: next(mono) / 8)

    yield reset


def workload(tc: TelemetryCollector, n: int = 3000) -> None:
    """Every typed call, with batches the row path takes and batches the vocabulary must type
    (a numpy number, an int for a float, non-ASCII text), secrets to scrub, rows the schema rejects."""
    for i in range(n):
        target: Any = float(i) / 3
        if 1000 <= i < 1010:
            target = np.float64(i)  # typed by the vocabulary: the record path for its batch
        if i == 1500:
            target = 45  # an int where a float is declared
        cid = "ünïcode ✓" if 2000 <= i < 2005 else f"cmd-{i:06d}" if i % 3 else None
        data: Any = {"id": i % 7, "angle": 45.0 + i % 90, "speed": 30} if i % 4 else None
        if i % 97 == 0:
            data = {"password": "hunter2", "note": "token=abc"}
        if i % 101 == 0:
            data = "raw text, not a dict"
        tc.log_command(i, 1 + i % 3, i % 7 if i % 5 else None, target, data, cid, 32)
        if i % 10 == 0:
            tc.log_feedback(i, 1, [float(j) + i for j in range(7)], None)
            tc.log_feedback(i, 3, None, {"power_status": 1, "enable_status": i % 2, "error_status": 0})
            tc.log_smoother_tick(
                [
                    {"joint_id": j, "target": math.nan if i == 500 else 1.0, "current": 0.5, "sent": 0.7}
                    for j in range(3)
                ]
            )
            tc.telemetry.events.emit(r.SMOOTHER_TICK, {r.SMOOTHER_TARGET: 1.0})  # joint_id missing
        if i % 50 == 0:
            tc.log_web_request("/api/move", "POST", {"j": i}, 12.5 + i, 200 if i % 100 else 503, None, cid)
            tc.log_camera_health("cam0", {"actual_fps": 29.5, "connected": True, "stalled": i % 100 == 0})
            tc.log_system_event("estop" if i % 100 else "connect", "arm", "password=hunter2", {"i": i})


def run(reset: Callable[[], None], db: Path, *, other: bool) -> tuple[TelemetryCollector, Seen | None]:
    reset()
    tc = TelemetryCollector(db_path=db, batch_size=50)
    seen = None
    if other:
        seen = Seen()
        tc.telemetry.logger_provider.add_log_record_processor(seen)
    workload(tc)
    assert tc.flush(30_000)
    return tc, seen


def contents(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(db) as conn:
        found = {table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall() for table in TABLES}
    with sqlite3.connect(digest_path(db)) as conn:
        for table in ("watermark", "counts", "latency_stats", "latency_bins"):
            found[f"digest.{table}"] = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
    return found


@pytest.fixture(autouse=True)
def _collectors_with_a_metric_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector's private pipeline, with a metric reader: without one the events' metrics are
    not kept at all, and comparing them between the two paths would prove nothing."""

    def setup(**options: Any) -> Any:
        sink_options = options.pop("sink_options", None)
        options.pop("local", None)
        return pipeline_with_reader(options, sink_options)

    monkeypatch.setattr("otel_tele.instrumentation.robot._collector_pipeline.setup", setup)


def metric_values(tc: TelemetryCollector) -> list[dict[Any, Any]]:
    plans = tc.telemetry.events._metrics._plans
    return [dict(plan[3]) for event in semconv.robot.EVENTS for plan in plans[event.name]]


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (a NaN in a nullable column is stored as NULL anyway)."""
    return bool(a == b or (a != a and b != b))


def test_the_row_path_writes_what_the_record_path_writes(clocks: Callable[[], None], tmp_path: Path) -> None:
    direct, _ = run(clocks, tmp_path / "rows" / "telemetry.db", other=False)
    generic, seen = run(clocks, tmp_path / "records" / "telemetry.db", other=True)
    try:
        route = direct.telemetry.events.route
        assert route is not None and route._feed is not None  # the row path ran
        assert generic.telemetry.events.route is not None and generic.telemetry.events.route._feed is None
        assert (
            seen is not None and sum(x.log_record.event_name == r.DDS_COMMAND for x in seen.records) == 3000
        )
        assert books(direct.telemetry) == books(generic.telemetry)
        emitted = 3000 + 300 * (2 + 3 + 1) + 60 * 3
        assert books(direct.telemetry)["sqlite/logs"][:4] == (emitted, emitted - 300 - 3, 0, 300 + 3)
        assert metric_values(direct) == metric_values(generic)
        assert any(metric_values(direct)), "no event metric kept: the comparison would prove nothing"
    finally:
        direct.close()
        generic.close()
    ours, theirs = contents(direct.db_path), contents(generic.db_path)  # type: ignore[arg-type]
    assert ours.keys() == theirs.keys()
    for table, rows in ours.items():
        assert len(rows) == len(theirs[table]), table
        for mine, other in zip(rows, theirs[table], strict=True):
            assert all(map(same, mine, other)), (table, mine, other)
    commands = ours["dds_commands"]
    assert len(commands) == 3000 and [row[3] for row in commands] == list(range(3000))
    assert commands[1000][6] == 1000.0 and commands[1500][6] == 45.0  # typed by the vocabulary
    assert commands[2001][8] == "ünïcode ✓"
    assert "hunter2" not in repr(ours) and "token=abc" not in repr(ours)  # scrubbed, both ways
    assert commands[101][7] == '"raw text, not a dict"'  # JSON text of a string, both ways
    assert len(ours["smoother_state"]) == 900 - 3 and len(ours["system_events"]) == 60


def test_a_consumer_attached_mid_run_takes_the_record_path_in_order(
    clocks: Callable[[], None], tmp_path: Path
) -> None:
    """Another processor attached during a run turns the row path off from the next batch; the rows
    written before and after keep their order and none is lost."""
    clocks()
    tc = TelemetryCollector(db_path=tmp_path / "telemetry.db", batch_size=50)
    seen = Seen()
    try:
        for i in range(3000):
            tc.log_command(i, 1, i % 7, float(i), {"i": i}, f"c{i}", 8)
        assert tc.telemetry.events.force_flush(10_000)
        tc.telemetry.logger_provider.add_log_record_processor(seen)
        for i in range(3000, 6000):
            tc.log_command(i, 1, i % 7, float(i), {"i": i}, f"c{i}", 8)
        assert tc.flush(30_000)
        route = tc.telemetry.events.route
        assert route is not None and route._feed is not None
        assert [x.log_record.attributes[r.SEQ] for x in seen.records] == list(range(3000, 6000))
        assert books(tc.telemetry)["sqlite/logs"][:4] == (6000, 6000, 0, 0)
    finally:
        tc.close()
    with sqlite3.connect(tmp_path / "telemetry.db") as conn:
        stored = conn.execute("SELECT seq, data_json FROM dds_commands ORDER BY id").fetchall()
    assert stored == [(i, f'{{"i":{i}}}') for i in range(6000)]


def test_columns_only_for_values_the_vocabulary_keeps_or_encodes() -> None:
    """A robot batch goes column-wise when typing it record by record would give the same values (JSON
    attributes encoded as the vocabulary encodes them); otherwise (``None``) it takes the record path."""
    from otel_tele._event_rows import TS_COLUMN, exact_columns
    from otel_tele._scrub import Scrubber

    spec, scrubber = semconv.EVENTS[r.DDS_COMMAND], Scrubber()

    def batch(*rows: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {**row, _events._TS_KEY: 1_700_000_000_000_000_000 + i, _events._NAME_KEY: r.DDS_COMMAND}
            for i, row in enumerate(rows)
        ]

    plain = {r.SEQ: 1, r.FUNCODE: 1, r.TARGET_VALUE: 1.5, r.DATA_JSON: {"a": 1}, r.CORRELATION_ID: "c"}
    secret = {**plain, r.DATA_JSON: {"password": "x"}, r.CORRELATION_ID: None}
    columns = exact_columns(spec, batch(plain, secret, {**plain, r.DATA_JSON: "t"}), scrubber)
    assert columns is not None and columns[TS_COLUMN][0] == 1_700_000_000_000_000_000
    assert columns[r.DATA_JSON] == ['{"a":1}', '{"password":"[REDACTED]"}', '"t"']
    assert columns[r.CORRELATION_ID] == ["c", None, "c"]
    for odd in (
        {r.TARGET_VALUE: np.float64(1.5)},  # not the native type
        {r.TARGET_VALUE: 1},  # an int where a float is declared
        {r.SEQ: 2**63},  # past 64 bits
        {r.CORRELATION_ID: "grün"},  # non-ASCII text
        {r.DATA_JSON: {(1, 2): 3}},  # no JSON text (a tuple key): the record path says why
        {"not.declared": 1.0},
    ):
        assert exact_columns(spec, batch(plain, {**plain, **odd}), scrubber) is None, odd


def test_a_transient_error_is_retried_on_the_row_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A locked database fails a batch of columns as it fails a batch of records: retried with the
    sink's backoff, each row stored once, the metrics fed once."""
    from otel_tele.exporters.sqlite import SqliteSink

    write = SqliteSink.write_event_rows
    failures = iter([sqlite3.OperationalError("database is locked")] * 2)

    def flaky(self: SqliteSink, *args: Any) -> Any:
        error = next(failures, None)
        if error is not None:
            raise error
        return write(self, *args)

    monkeypatch.setattr(SqliteSink, "write_event_rows", flaky)
    with TelemetryCollector(db_path=tmp_path / "telemetry.db", batch_size=50) as tc:
        for i in range(200):
            tc.log_command(i, 1, 2, float(i), {"i": i}, None, 8)
        assert tc.flush(30_000)
        assert books(tc.telemetry)["sqlite/logs"][:4] == (200, 200, 0, 0)
        assert metric_values(tc)[0] == {(1,): 200}
    with sqlite3.connect(tmp_path / "telemetry.db") as conn:
        assert conn.execute("SELECT seq FROM dds_commands ORDER BY id").fetchall() == [
            (i,) for i in range(200)
        ]


def test_built_rows_are_plain_tuples_led_by_their_event() -> None:
    """Rows wait in the sink's queue as plain tuples (the garbage collector untracks them at its
    first pass, which it never does for a tuple subclass), their event's name first: the overload
    policy books a dropped row under its event's domain, as its record."""
    import gc

    from otel_tele.exporters.sqlite._event_columns import BY_EVENT

    from otel_tele import _overload

    stamps = [1_767_225_600_000_000_000, 1_767_225_600_000_000_001]
    columns = {r.SEQ: [1, 2], r.FUNCODE: [1, 1], r.DATA_JSON: ['{"a":1}', None], r.RAW_LEN: [8, 8]}
    rows = BY_EVENT[r.DDS_COMMAND].built(stamps, columns)
    assert rows is not None and {type(row) for row in rows} == {tuple}
    assert rows[0][:6] == (r.DDS_COMMAND, 1_767_225_600.0, 1_767_225_600.0, 1, 1, None)
    gc.collect(0)
    assert not any(map(gc.is_tracked, rows))
    assert _overload._record_domain(rows[0]) == _overload.domain_of(r.DDS_COMMAND, {})
    assert BY_EVENT[r.DDS_COMMAND].built(stamps, {**columns, r.FUNCODE: [1, None]}) is None  # rejected
