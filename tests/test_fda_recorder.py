"""The FDA recorder: OTel signals, sampling, field contracts, events, names, pipelines."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from otel_tele.instrumentation import fda

import otel_tele
from otel_tele import testing
from otel_tele.semconv import fda as v

from .sink_samples.capsule import CORE

CERT = {
    "units": {"phi_residual": "L2", "invariant_drift_max": "abs"},
    "method": {"phi_residual": "||Ax-y||", "invariant_drift_max": "max |dI|"},
}
BAD_NAMES = ["../x", "a/b", "/abs/path", "a\x00b", "", "x" * 300, "..", "a..b"]


def run_events(cap: testing.Capture) -> list[str]:
    return [e[v.EVENT] for e in cap.events(v.RUN_EVENT)]


def test_run_emits_a_span_iteration_records_events_and_metrics(capture: testing.Capture) -> None:
    """A run is one span; iterations and events are log records; metrics follow the vocabulary."""
    with fda.run("flow_a", telemetry=capture.telemetry, **CERT) as run:
        for i in range(5):
            run.iteration(iter=i, **{**CORE, "E": 10.0 - i}, lambda_=0.3)
        run.event("CERT_PASS", {"E_final": 6.0})
    capture.flush()
    [span] = capture.spans(v.RUN)
    assert span.attributes[v.RUN_ID] == run.run_id and span.attributes["fda.iterations"] == 5
    rows = capture.events(v.ITERATION)
    assert [r["iter"] for r in rows] == list(range(5))
    assert all(r["lambda"] == 0.3 and "lambda_" not in r for r in rows)  # the short path renames too
    assert all(r[v.RUN_ID] == run.run_id and r[v.FLOW_NAME] == "flow_a" and r["t_wall_ms"] >= 0 for r in rows)
    assert run_events(capture) == ["RUN_STARTED", "CERT_PASS", "RUN_FINISHED"]
    assert json.loads(capture.events(v.RUN_EVENT)[1][v.PAYLOAD]) == {"E_final": 6.0}
    assert capture.metric_value("fda.iterations", **{v.FLOW_NAME: "flow_a"}) == 5
    assert capture.metric_value("fda.energy", **{v.FLOW_NAME: "flow_a"}) == 6.0
    assert capture.metric_value("fda.phi_residual", **{v.FLOW_NAME: "flow_a"}) == 1e-3


def test_dev_sampling_records_the_first_n_then_every_kth_call(capture: testing.Capture) -> None:
    """dev/tuner: every call below sample_first, then every sample_every-th call."""
    with fda.run(
        "flow_a",
        mode="tuner",
        trial_id="t1",
        sample_first=5,
        sample_every=3,
        telemetry=capture.telemetry,
        **CERT,
    ) as run:
        for i in range(20):
            run.iteration(iter=100 + i, **CORE)
    capture.flush()
    expected = [100 + i for i in range(20) if i < 5 or (i - 5) % 3 == 0]
    assert [r["iter"] for r in capture.events(v.ITERATION)] == expected
    assert {r[v.TRIAL_ID] for r in capture.events(v.ITERATION)} == {"t1"}
    assert json.loads(capture.events(v.RUN_EVENT)[-1][v.PAYLOAD])["rows_emitted"] == len(expected)


def test_default_sampling_matches_the_spec(capture: testing.Capture) -> None:
    """Defaults: N = 1000, k = 10 for dev."""
    with fda.run("flow_a", mode="dev", telemetry=capture.telemetry, **CERT) as run:
        for i in range(1_100):
            run.iteration(iter=i, **CORE)
    capture.flush()
    assert [r["iter"] for r in capture.events(v.ITERATION)] == [*range(1000), *range(1000, 1100, 10)]


def test_production_records_everything_up_to_the_cap_then_says_so(capture: testing.Capture) -> None:
    """Production: all calls up to max_rows, then one ROW_CAP_REACHED event."""
    with fda.run("flow_a", max_rows=10, telemetry=capture.telemetry, **CERT) as run:
        for i in range(25):
            run.iteration(iter=i, **CORE)
    capture.flush()
    assert [r["iter"] for r in capture.events(v.ITERATION)] == list(range(10))
    assert run_events(capture).count("ROW_CAP_REACHED") == 1
    assert json.loads(capture.events(v.RUN_EVENT)[-1][v.PAYLOAD])["truncated"] is True


def test_missing_core_field_emits_spec_lint_fail_once_per_kind(capture: testing.Capture) -> None:
    """Non-strict: the row is kept with a null and SPEC_LINT_FAIL names the missing field."""
    partial = {k: val for k, val in CORE.items() if k != "phi_residual"}
    with fda.run("flow_a", telemetry=capture.telemetry, **CERT) as run:
        for i in range(3):
            run.iteration(iter=i, **partial)
    capture.flush()
    lint = [e for e in capture.events(v.RUN_EVENT) if e[v.EVENT] == v.SPEC_LINT_FAIL]
    assert len(lint) == 1 and json.loads(lint[0][v.PAYLOAD])["missing"] == ["phi_residual"]
    assert len(capture.events(v.ITERATION)) == 3 and run.lint_failures == 3


def test_strict_mode_raises_before_anything_is_emitted(capture: testing.Capture) -> None:
    """strict=True: a missing core field raises ValueError and nothing of that call is recorded."""
    with (
        pytest.raises(ValueError, match="phi_residual"),
        fda.run("flow_a", strict=True, telemetry=capture.telemetry, **CERT) as run,
    ):
        run.iteration(iter=0, **{k: val for k, val in CORE.items() if k != "phi_residual"})
    capture.flush()
    assert capture.events(v.ITERATION) == []
    with (
        pytest.raises(ValueError, match="units"),
        fda.run("flow_a", strict=True, telemetry=capture.telemetry),
    ):
        pass


def test_unknown_field_is_rejected_with_a_clear_error(capture: testing.Capture) -> None:
    """A typo in a field name raises instead of being dropped."""
    with (
        fda.run("flow_a", telemetry=capture.telemetry, **CERT) as run,
        pytest.raises(ValueError, match="energy"),
    ):
        run.iteration(iter=0, energy=1.0, **CORE)
    capture.flush()
    assert capture.events(v.ITERATION) == []


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_are_rejected_before_anything_is_emitted(bad: str, capture: testing.Capture) -> None:
    """Flow names, trial ids and run ids that would become unsafe paths raise ValueError up front."""
    for kwargs in (
        {"flow_name": bad},
        {"flow_name": "ok", "mode": "tuner", "trial_id": bad},
        {"flow_name": "ok", "run_id": bad or "\x00"},
    ):
        with pytest.raises(ValueError), fda.run(telemetry=capture.telemetry, **kwargs):
            pytest.fail("the body must not run")
    capture.flush()
    assert capture.logs() == [] and capture.spans() == []


def test_keyboard_interrupt_is_recorded_as_cancelled(capture: testing.Capture) -> None:
    """Ctrl-C inside a run: CANCELLED is emitted and the interrupt propagates."""
    with pytest.raises(KeyboardInterrupt), fda.run("flow_a", telemetry=capture.telemetry, **CERT) as run:
        run.iteration(iter=0, **CORE)
        raise KeyboardInterrupt
    capture.flush()
    assert run_events(capture)[-1] == v.CANCELLED


def test_an_exception_finishes_the_run_as_failed(capture: testing.Capture) -> None:
    """An error in the solver: RUN_FINISHED with status failed and the error text; span status ERROR."""
    with pytest.raises(ZeroDivisionError), fda.run("flow_a", telemetry=capture.telemetry, **CERT):
        _ = 1 / 0
    capture.flush()
    payload = json.loads(capture.events(v.RUN_EVENT)[-1][v.PAYLOAD])
    assert payload["status"] == "failed" and "ZeroDivisionError" in payload["error"]
    assert capture.spans(v.RUN)[0].status.status_code.name == "ERROR"


def test_timeout_emits_one_timeout_event(capture: testing.Capture) -> None:
    """Past timeout_s the next iteration emits TIMEOUT once and sets run.timed_out."""
    with fda.run("flow_a", timeout_s=1e-9, telemetry=capture.telemetry, **CERT) as run:
        for i in range(3):
            run.iteration(iter=i, **CORE)
    capture.flush()
    assert run.timed_out and run_events(capture).count(v.TIMEOUT) == 1


def test_run_ids_follow_the_spec_and_stay_unique_within_a_second() -> None:
    """fda_run_YYYYMMDD_HHMMSS_xxxxxx (UTC); runs started in the same second get distinct ids."""
    now = datetime(2025, 10, 20, 15, 30, 45, tzinfo=UTC)
    ids = [fda.new_run_id(now) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"fda_run_20251020_153045_[0-9a-f]{6}", i) for i in ids)


def test_without_setup_a_private_capsule_pipeline_is_used(data_dir: Path) -> None:
    """No setup(): the recorder builds a default pipeline with the capsule sink under OTEL_TELE_DATA_DIR."""
    with fda.run("flow_default", units={}, method={}) as run:
        run.iteration(iter=0, **CORE)
    table = pq.read_table(data_dir / "telematry_cfs" / "runs" / run.run_id / "telemetry.parquet")
    assert table.column("iter").to_pylist() == [0]
    fda.default_telemetry().shutdown(5_000)


def test_the_global_pipeline_is_used_when_set_up(data_dir: Path) -> None:
    """After setup(), runs go through the global pipeline and its capsule sink."""
    telemetry = otel_tele.setup(
        sinks=["capsule"], traces_exporter="none", metrics_exporter="none", logs_exporter="none"
    )
    assert fda.default_telemetry() is telemetry
    with fda.run("flow_global", mode="dev", units={}, method={}) as run:
        run.iteration(iter=0, **{**CORE, "E": math.inf})
    table = pq.read_table(data_dir / "telematry_cfs" / "flows" / "flow_global" / "dev_telemetry.parquet")
    assert table.column("E").to_pylist() == [math.inf]
