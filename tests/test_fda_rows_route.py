"""FDA iterations straight into the capsule sink as columns (``otel_tele._event_rows``): the same run
written through the row path and through ordinary OTel log records gives the same Parquet tables,
manifest, books and metrics; any other log consumer keeps (or puts back) the record path."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry import trace
from otel_tele.exporters.capsule import _writers
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.fda import _recorder

import otel_tele
from otel_tele import _events

from ._consumers import Seen, books, capsule_only
from .sink_samples.capsule import CORE

CERT = {
    "units": {"phi_residual": "L2 norm", "invariant_drift_max": "relative"},
    "method": {"phi_residual": "||Ax-y||/||y||", "invariant_drift_max": "max |I_k - I_0|"},
}


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Every time a run records made the same in both writes (call it before each write)."""

    def reset() -> None:
        ns = itertools.count(1_767_225_600_000_000_000, 1_000_003)
        perf = itertools.count(10_000, 12_345)
        caller = threading.current_thread()
        # The caller's clock (event times) ticks per call; the telemetry thread's (a batch's
        # observed time, which no capsule column holds) would tick once per batch, and batches
        # are cut by timing.
        monkeypatch.setattr(
            _events, "_time_ns", lambda: next(ns) if threading.current_thread() is caller else 1
        )
        monkeypatch.setattr(_recorder, "_clock", lambda: next(perf))
        # An iteration's time is the run's start on the wall clock plus its monotonic offset.
        monkeypatch.setattr(_recorder, "_wall_ns", lambda: 1_767_225_600_000_000_000)

    monkeypatch.setattr(_writers, "utc_now", lambda: "2026-01-01T00:00:00Z")
    yield reset


def rows(n: int) -> Iterator[dict[str, Any]]:
    """Iterations of every kind: plain ones (the column path), and batches the vocabulary must type
    (numpy numbers, an int for a float, non-ASCII text, JSON fields), secrets to scrub, None values."""
    for i in range(n):
        fields: dict[str, Any] = {
            "iter": i,
            **CORE,
            "E": float(i) / 7,
            "grad_norm": math.nan if i % 11 else 1.0,
        }
        if i % 5 == 0:
            fields["notes"] = "password=hunter2 in the solver log" if i % 10 else None
        if 3000 <= i < 3100:
            fields["E"] = np.float64(i)  # typed by the vocabulary: the record path for its batch
        if 4000 <= i < 4050:
            fields["warnings"] = "ünïcode ✓"
        if i == 4500:
            fields["alpha"] = 1  # an int where a float is declared
        if 4600 <= i < 4610:
            fields["lambda_j"] = {"j": [1, 2]}
            fields["level_active_max"] = i
        yield fields


def record(
    reset: Callable[[], None], tmp: Path, mode: str, *, other: bool, n: int = 6000
) -> tuple[otel_tele.Pipeline, Seen | None]:
    reset()
    telemetry = capsule_only(tmp)
    seen = None
    if other:
        seen = Seen()
        telemetry.logger_provider.add_log_record_processor(seen)
    kwargs = {"trial_id": "trial_1"} if mode == "tuner" else {}
    with fda.run("flow_a", mode=mode, run_id="fda_run_same", telemetry=telemetry, **CERT, **kwargs) as run:
        for fields in rows(n):
            run.iteration(**fields)
        run.event("CERT_PASS", {"ok": True})
    return telemetry, seen


def metric_values(telemetry: otel_tele.Pipeline) -> list[dict[Any, Any]]:
    plans = telemetry.events._metrics._plans
    return [dict(plan[3]) for name in ("fda.iteration", "fda.run.event") for plan in plans[name]]


def tables(root: Path, mode: str) -> dict[str, Any]:
    if mode == "production":
        folder = root / "runs" / "fda_run_same"
        return {
            "telemetry": pq.read_table(folder / "telemetry.parquet"),
            "events": pq.read_table(folder / "events.parquet"),
            "manifest": (folder / "manifest.toml").read_text(),
        }
    flow = root / "flows" / "flow_a"
    return {
        table: pq.read_table(flow / f"{mode}_{table}.parquet").sort_by([("ts", "ascending")])
        for table in ("telemetry", "events")
    } | {"manifest": (flow / "manifest.toml").read_text()}


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, value for value (NaN equal to NaN, which ``Table.equals`` does not count)."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for name in a.column_names:
        for x, y in zip(a.column(name).to_pylist(), b.column(name).to_pylist(), strict=True):
            if not (x == y or (x != x and y != y)):
                return False
    return True


@pytest.mark.parametrize("mode", ["production", "dev"])
def test_the_row_path_writes_what_the_record_path_writes(
    mode: str, clocks: Callable[[], None], tmp_path: Path
) -> None:
    kept = 6000 if mode == "production" else 1000 + 5000 // 10  # dev: the first 1000, then 1 in 10
    direct, _ = record(clocks, tmp_path / "rows", mode, other=False)
    generic, seen = record(clocks, tmp_path / "records", mode, other=True)
    try:
        assert direct.events.route is not None and direct.events.route._feed is not None  # the row path ran
        assert generic.events.route is not None and generic.events.route._feed is None  # it did not
        assert (
            seen is not None and sum(r.log_record.event_name == "fda.iteration" for r in seen.records) == kept
        )
        assert books(direct) == books(generic)
        assert books(direct)["capsule/logs"][:4] == (kept + 3, kept + 3, 0, 0)
        assert metric_values(direct) == metric_values(generic)
        assert any(metric_values(direct)), "no event metric kept: the comparison would prove nothing"
    finally:
        direct.shutdown(10_000)
        generic.shutdown(10_000)
    ours = tables(tmp_path / "rows" / "telematry_cfs", mode)
    theirs = tables(tmp_path / "records" / "telematry_cfs", mode)
    for name in ("telemetry", "events"):
        assert ours[name].schema == theirs[name].schema
        assert same_rows(ours[name], theirs[name]), name
    assert ours["manifest"] == theirs["manifest"]
    telemetry = ours["telemetry"]
    assert telemetry.num_rows == kept
    assert telemetry.column("t_wall_ms").null_count == 0  # the recorder's own fields arrive too
    assert set(telemetry.column("run_id").to_pylist()) == {"fda_run_same"}
    if mode != "production":
        return
    notes = telemetry.column("notes").to_pylist()
    assert "hunter2" not in "".join(filter(None, notes)) and notes[5] is not None  # scrubbed, both ways
    assert telemetry.column("E").to_pylist()[3000] == 3000.0
    assert telemetry.column("warnings").to_pylist()[4000] == "ünïcode ✓"


def test_a_consumer_attached_mid_run_takes_the_record_path_in_order(
    clocks: Callable[[], None], tmp_path: Path
) -> None:
    """Another processor attached during a run turns the row path off from the next batch; the rows
    written before and after keep their order and none is lost."""
    clocks()
    telemetry = capsule_only(tmp_path)
    seen = Seen()
    try:
        with fda.run("flow_a", run_id="fda_run_same", telemetry=telemetry, **CERT) as run:
            run_span = trace.get_current_span().get_span_context()
            for i in range(3000):
                run.iteration(iter=i, **CORE)
            assert telemetry.events.force_flush(10_000)
            telemetry.logger_provider.add_log_record_processor(seen)
            for i in range(3000, 6000):
                run.iteration(iter=i, **CORE)
        assert telemetry.events.route is not None and telemetry.events.route._feed is not None
        iterations = [r.log_record for r in seen.records if r.log_record.event_name == "fda.iteration"]
        assert [r.attributes["iter"] for r in iterations] == list(range(3000, 6000))
        # Each carries the run's span, whether it was queued with its context or (emitted before
        # the route noticed the consumer) with the span packed in an int.
        assert {(r.trace_id, r.span_id, r.trace_flags) for r in iterations} == {
            (run_span.trace_id, run_span.span_id, run_span.trace_flags)
        }
        assert books(telemetry)["capsule/logs"][:4] == (6002, 6002, 0, 0)
    finally:
        telemetry.shutdown(10_000)
    table = pq.read_table(tmp_path / "telematry_cfs" / "runs" / "fda_run_same" / "telemetry.parquet")
    assert table.column("iter").to_pylist() == list(range(6000))
    assert pa.compute.all(
        pa.compute.greater(table.column("ts").slice(1), table.column("ts").slice(0, 5999))
    ).as_py()


def test_columns_only_for_values_the_vocabulary_keeps_as_they_are() -> None:
    """A batch goes column-wise only when typing it record by record would change nothing;
    otherwise (``None``) it takes the record path."""
    from otel_tele import semconv
    from otel_tele._event_rows import TS_COLUMN, exact_columns
    from otel_tele._scrub import Scrubber

    spec, scrubber = semconv.EVENTS["fda.iteration"], Scrubber()

    def batch(*rows: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {**row, _events._TS_KEY: 1_700_000_000_000_000_000 + i, _events._NAME_KEY: "fda.iteration"}
            for i, row in enumerate(rows)
        ]

    plain = {"iter": 1, "E": 1.5, "phase": "GREEN", "fda.run_id": "fda_run_x"}
    first = {**plain, "notes": "token=abc"}
    columns = exact_columns(spec, batch(first, {**plain, "E": None}, plain), scrubber)
    assert columns is not None
    assert columns["E"] == [1.5, None, 1.5] and columns[TS_COLUMN][0] == 1_700_000_000_000_000_000
    assert columns["notes"] == ["token=[REDACTED]", None, None]  # scrubbed; absent where not given
    assert exact_columns(spec, batch(plain, first), scrubber) is None  # a key the first row lacks
    for odd in (
        {"E": np.float64(1.5)},  # not the native type
        {"E": 1},  # an int where a float is declared
        {"iter": 2**63},  # past 64 bits
        {"phase": "grün"},  # non-ASCII text
        {"lambda_j": "[1]"},  # no native type (JSON)
        {"not.declared": 1.0},
        {"iter": True},
    ):
        assert exact_columns(spec, batch(plain, {**plain, **odd}), scrubber) is None, odd
    assert exact_columns(spec, batch({**plain, "iter": 1.0}), scrubber) is None
