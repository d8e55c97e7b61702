"""Fault injection, issue 10: Hypothesis throws hostile objects at every public recording API.

Events, the robot collector, the FDA recorder, the inference logger and the flow meters get values
whose ``__str__``/``__repr__``/``__eq__``/``__hash__``/``__bool__`` raise, 5,000-deep dicts, numpy
arrays, lone surrogates, huge integers, NaN … in every argument. Whatever they get: no call raises,
every stage's books balance with nothing left queued, and what each sink stored equals what its books
say it took (records handed to it, less those it counted failed).
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from otel_tele.exporters.capsule.schema import artifact_listing, read_manifest
from otel_tele.exporters.sqlite._mapping import ROBOT_TABLES
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.flow import FlowMeters
from otel_tele.instrumentation.inference import TelemetryLogger
from otel_tele.instrumentation.robot import EventType, TelemetryCollector

from otel_tele import Telemetry, semconv
from otel_tele._settings import resolve

from .sink_samples.capsule import CORE
from .test_fault_input import Hostile, HostileStr, UnprintableError, deep_dict

SINKS = ["sqlite", "capsule", "postgres", "capture"]


class Shown:
    """How Hypothesis prints a failing example's hostile values (their own repr raises or recurses);
    nothing in otel-tele calls ``_repr_pretty_``."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(type(self).__name__)


class HostileValue(Shown, Hostile):
    pass


class HostileKey(Shown, HostileStr):
    pass


class UnprintableExc(Shown, UnprintableError):
    pass


class Deep(Shown, dict):  # type: ignore[type-arg]
    """A 5,000-deep dict."""

    def __init__(self) -> None:
        super().__init__(deep_dict())


plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**80),
    st.floats(),  # NaN and ±inf included
    st.text(st.characters(codec=None, categories=None), max_size=20),  # lone surrogates included
    st.binary(max_size=8),
)
hostile_leaf = st.one_of(
    plain,
    st.builds(HostileValue),
    st.builds(HostileKey),
    st.builds(Deep),
    st.just(np.array([1.0, 2.0])),
    st.just(np.float64("nan")),
    st.just(np.int64(7)),
    st.just({(1, 2): 3}),
    st.just({1: {2: [3, {4.5: None}]}}),
    st.builds(UnprintableExc),
)
keys = st.one_of(st.text(max_size=5), st.builds(HostileKey), st.integers())
values = st.recursive(
    hostile_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(keys, inner, max_size=3),
    ),
    max_leaves=6,
)
names = st.one_of(st.sampled_from(sorted(semconv.EVENTS)), values)
declared_keys = st.sampled_from(sorted({k for e in semconv.EVENTS.values() for k in e.attributes_by_key}))
attribute_maps = st.one_of(
    st.dictionaries(st.one_of(declared_keys, st.text(max_size=8), st.builds(HostileKey)), values, max_size=6),
    values,
)

Call = Callable[["Apis"], Any]


class Apis:
    """Every public recording API, bound to one pipeline."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.collector = TelemetryCollector(telemetry=telemetry)
        self.collector.enable()
        self.collector.subscribe(lambda event: repr(event))  # a listener that reads what it is given
        self.logger = TelemetryLogger(telemetry)
        self.meters = FlowMeters(telemetry)
        self.run: fda.Run | None = None


def _vram_check(a: list[Any]) -> Call:
    return lambda x: x.logger.record_vram_check(a[0], a[1], used_mb=a[2], total_mb=a[3])


def _vram_lockout(a: list[Any]) -> Call:
    return lambda x: x.logger.record_vram_lockout(a[0], trigger_threshold=a[1], free_vram=a[2])


def _iteration(field: str, value: Any) -> Call:
    return lambda x: x.run and x.run.iteration(**{**CORE, "iter": 1, field: value})


def _value_error_is_an_answer(call: Callable[[], Any]) -> None:
    """``attach``/``config`` refuse a bad name, source or mapping with ``ValueError`` (their contract)."""
    with contextlib.suppress(ValueError):
        call()


_artifact_numbers = itertools.count()


def _attach(name: Any, source: Any) -> Call:
    """A hostile name, or a fresh valid one (attaching a name again replaces the artifact)."""
    name = f"a{next(_artifact_numbers)}.bin" if name is None else name
    return lambda x: x.run and _value_error_is_an_answer(lambda: x.run.attach(name, source))  # type: ignore[union-attr]


def _config(mapping: Any) -> Call:
    return lambda x: x.run and _value_error_is_an_answer(lambda: x.run.config(mapping))  # type: ignore[union-attr]


def _calls() -> st.SearchStrategy[Call]:
    v = values
    return st.one_of(
        st.builds(lambda n, a: lambda x: x.telemetry.events.emit(n, a), names, attribute_maps),
        st.builds(lambda *a: lambda x: x.collector.log_command(*a), v, v, v, v, v, v, v),
        st.builds(lambda *a: lambda x: x.collector.log_feedback(*a), v, v, v, v),
        st.builds(lambda a: lambda x: x.collector.log_smoother_tick(a), v),
        st.builds(lambda a: lambda x: x.collector.log_smoother_tick([a, {"joint_id": a, "target": a}]), v),
        st.builds(lambda *a: lambda x: x.collector.log_web_request(*a), v, v, v, v, v, v, v),
        st.builds(lambda *a: lambda x: x.collector.log_camera_health(*a), v, v),
        st.builds(lambda *a: lambda x: x.collector.log_system_event(*a), v, v, v, v, v, v),
        st.builds(
            lambda s, t, p, c: lambda x: x.collector.emit(s, t, p, c),
            v,
            st.one_of(st.sampled_from(list(EventType)), v),
            v,
            v,
        ),
        st.builds(lambda *a: lambda x: x.logger.record(*a), v, v, v, v, v),
        st.builds(lambda *a: lambda x: x.logger.record_load(*a), v, v, v),
        st.builds(lambda *a: lambda x: x.logger.record_thought(*a), v, v, v, v),
        st.builds(_vram_check, st.lists(v, min_size=4, max_size=4)),
        st.builds(_vram_lockout, st.lists(v, min_size=3, max_size=3)),
        st.builds(lambda *a: lambda x: x.meters.node(a[0]).record(a[1], a[2], a[3]), v, v, v, v),
        st.builds(lambda *a: lambda x: x.meters.record(*a), st.sampled_from(["served", "capacity"]), v, v, v),
        st.builds(_iteration, st.sampled_from(sorted(CORE)), v),
        st.builds(lambda a: lambda x: x.run and x.run.event("NOTE", a), v),
        st.builds(_attach, st.one_of(st.none(), v), st.one_of(v, st.binary(max_size=64))),
        st.builds(_config, v),
    )


@pytest.fixture
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Path]]:
    yield lambda: tmp_path_factory.mktemp("hyp")


def _pipeline(data_dir: Path, memory: InMemoryLogRecordExporter) -> Telemetry:
    options = {"traces_exporter": "none", "metrics_exporter": "none", "logs_exporter": "none"}
    settings_ = resolve({**options, "sinks": SINKS, "data_dir": data_dir})
    return Telemetry(settings_, local=True, extra_exporters={"logs": [memory]})


def _sqlite_rows(data_dir: Path) -> int:
    path = data_dir / "telemetry.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        tables = {t.table for t in ROBOT_TABLES}
        return sum(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables)


def _capsule_records(data_dir: Path) -> int:
    """Iteration and event rows in every capsule, and every artifact stored (listed in a production
    run's manifest or a dev/tuner run's artifact index; an index is removed once a manifest lists it)."""
    root = data_dir / "telematry_cfs"
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in root.glob("**/*.parquet") if f.is_file())
    manifests = [read_manifest(m) for m in root.glob("runs/*/manifest.toml")]
    stored = sum(len(m.get("artifacts", {})) for m in manifests)
    stored += sum(len(artifact_listing(folder)) for folder in root.glob("flows/*/artifacts/*"))
    return rows + stored


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(before=st.lists(_calls(), max_size=8), in_run=st.lists(_calls(), max_size=8), raises=st.booleans())
def test_hostile_objects_at_every_public_recording_api(
    tmp_root: Callable[[], Path], before: list[Call], in_run: list[Call], raises: bool
) -> None:
    data_dir = tmp_root()
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    telemetry = _pipeline(data_dir, memory)
    apis = Apis(telemetry)
    try:
        for call in before:
            call(apis)
        error = UnprintableExc()
        try:
            with fda.run("hyp_flow", telemetry=telemetry, flush_timeout_millis=0) as run:
                apis.run = run
                for call in in_run:
                    call(apis)
                if raises:
                    raise error
        except UnprintableExc as raised:
            assert raised is error  # the host's own exception, unchanged
        apis.run = None
        assert telemetry.force_flush(30_000)
    finally:
        assert telemetry.shutdown(30_000)
    snapshots = {(s.sink, s.signal): s for s in telemetry.sink_stats()}
    for snap in snapshots.values():
        assert snap.reconciles and snap.queued == 0 and snap.dropped == 0, snap
    handed = Counter(r.log_record.event_name for r in memory.get_finished_logs())
    assert snapshots[("events", "logs")].exported == sum(handed.values())

    robot = sum(n for name, n in handed.items() if name in {t.event for t in ROBOT_TABLES})
    assert _sqlite_rows(data_dir) == robot - snapshots[("sqlite", "logs")].failed
    inference = sum(n for name, n in handed.items() if name in semconv.inference.ROW_EVENTS)
    store = telemetry.sinks["postgres"].store  # type: ignore[attr-defined]
    assert store.row_count() == inference - snapshots[("postgres", "logs")].failed
    fda_v = semconv.fda
    solver = handed[fda_v.ITERATION] + handed[fda_v.RUN_EVENT] + handed[fda_v.ARTIFACT]
    assert _capsule_records(data_dir) == solver - snapshots[("capsule", "logs")].failed
