"""The C module (``otel_tele._speedups``) against its pure-Python twins: the same columns, Arrow
arrays and recorded rows for ordinary and hostile values, the caller's own dict never touched, a
cycle through the C recorder collected, and the FDA path green with the C module switched off."""

from __future__ import annotations

import collections
import ctypes
import gc
import math
import os
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_tele import _accel
from otel_tele._arrow_array import arrow_array
from otel_tele._event_buffer import CONTEXT_KEY, TIME_KEY, RowRecorderPy

speedups = _accel.speedups
needs_c = pytest.mark.skipif(speedups is None, reason="otel_tele._speedups not built (no C compiler)")
ROOT = Path(__file__).resolve().parents[1]


def test_the_c_module_is_built_where_a_compiler_is() -> None:
    """CI installs with gcc: a silent fallback there would hide a build break (and halve the speed)."""
    if os.environ.get("CI") and os.environ.get(_accel.SPEEDUPS_ENV) is None:
        assert speedups is not None, "otel_tele._speedups was not built"


# -- gather ------------------------------------------------------------------------------------------


class Loud:
    """A key whose hash collides with a str's and whose == raises or mutates the row."""

    def __init__(self, row: dict[Any, Any] | None = None) -> None:
        self.row = row

    def __hash__(self) -> int:
        return hash("E")

    def __eq__(self, other: object) -> bool:
        if self.row is not None:
            self.row.clear()
            return False
        raise RuntimeError("== refused")


class Weird(float):
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no")

    __hash__ = float.__hash__


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.just(Weird(1.5)),
    st.lists(st.integers(), max_size=2),
)
rows_strategy = st.lists(
    st.dictionaries(st.sampled_from(["E", "iter", "phase", "x"]), values, max_size=4), max_size=20
)


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, compared by identity first (no hostile == runs)."""
    if a is b:
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@needs_c
@settings(max_examples=300, deadline=None)
@given(rows=rows_strategy, keys=st.lists(st.sampled_from(["E", "iter", "phase", "x", "y"]), max_size=5))
def test_gather_is_its_twin(rows: list[dict[str, Any]], keys: list[str]) -> None:
    assert speedups is not None
    c = speedups.gather(rows, tuple(keys))
    py = _accel.gather_py(rows, tuple(keys))
    assert same(list(c[0]), list(py[0]))
    assert c[1:] == py[1:]


@pytest.mark.parametrize("gather", ["c", "py"])
def test_gather_refuses_what_is_not_a_row(gather: str) -> None:
    if gather == "c" and speedups is None:
        pytest.skip("no C module")
    fn = speedups.gather if gather == "c" else _accel.gather_py  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        fn([{"E": 1.0}, [("E", 1.0)]], ("E",))  # type: ignore[list-item]
    with pytest.raises(TypeError):
        fn([collections.OrderedDict(E=1.0)], ("E",))


@needs_c
def test_gather_survives_keys_whose_eq_raises_or_mutates_the_row() -> None:
    assert speedups is not None
    row: dict[Any, Any] = {Loud(): 1, "iter": 2}
    with pytest.raises(RuntimeError):
        speedups.gather([row], ("E",))
    mutating: dict[Any, Any] = {}
    mutating[Loud(mutating)] = 1
    mutating["iter"] = 3
    columns, kinds, *_ = speedups.gather([mutating, {"E": 2.0}], ("E", "iter"))
    assert columns[0][1] == 2.0 and kinds[0] is float  # nothing read from freed memory


# -- Arrow buffers -----------------------------------------------------------------------------------


def converted(values: list[Any], arrow: pa.DataType, divisor: int = 1) -> Any:
    """What ``pa.array`` makes of ``values`` (after ``// divisor``), or the exception type it raises."""
    try:
        if divisor != 1:
            values = [None if v is None else v // divisor for v in values]
        return pa.array(values, arrow)
    except Exception as exc:
        return type(exc)


def equal_arrays(a: pa.Array, b: pa.Array) -> bool:
    """The same type, nulls and values (NaN equal to NaN, which ``Array.equals`` denies)."""
    if a.type != b.type or not a.is_null().equals(b.is_null()):
        return False
    if pa.types.is_timestamp(a.type):  # compared as stored: a far date has no datetime
        a, b = a.cast(pa.int64()), b.cast(pa.int64())
    return same(a.to_pylist(), b.to_pylist())


def fast(values: list[Any], arrow: pa.DataType, divisor: int = 1) -> Any:
    try:
        return arrow_array(values, arrow, divisor=divisor)
    except Exception as exc:
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(
    column=st.lists(
        st.one_of(
            st.none(), st.floats(), st.integers(min_value=-(2**70), max_value=2**70), st.text(), st.booleans()
        ),
        max_size=40,
    ),
    arrow=st.sampled_from([pa.float64(), pa.int64(), pa.string(), pa.timestamp("us", tz="UTC")]),
    divisor=st.sampled_from([1, 1, 1000]),
)
def test_arrow_array_is_pa_array(column: list[Any], arrow: pa.DataType, divisor: int) -> None:
    want = converted(column, arrow, divisor)
    got = fast(column, arrow, divisor)
    if isinstance(want, type):
        assert got is want or isinstance(got, type)  # refused either way (pa.array says why)
    else:
        assert isinstance(got, pa.Array) and equal_arrays(got, want), (got, want)


@pytest.mark.parametrize(
    ("column", "arrow", "divisor"),
    [
        ([1.5, None, -0.0, math.inf, math.nan, 1e308], pa.float64(), 1),
        ([2**63 - 1, -(2**63), None, 0], pa.int64(), 1),
        ([-1001, -1000, -999, 999, 1_767_225_600_123_456_789, None], pa.timestamp("us", tz="UTC"), 1000),
        (["", "é", "GREEN", None, "\U0001f600", "x" * 10_000], pa.string(), 1),
    ],
)
def test_arrow_array_edges(column: list[Any], arrow: pa.DataType, divisor: int) -> None:
    got = arrow_array(column, arrow, divisor=divisor)
    assert equal_arrays(got, converted(column, arrow, divisor))
    got.validate(full=True)


@pytest.mark.parametrize(
    ("column", "arrow"),
    [
        ([2**63], pa.int64()),  # past 64 bits
        (["\ud800"], pa.string()),  # a lone surrogate has no UTF-8
        ([1.0, "x"], pa.float64()),
    ],
)
def test_arrow_array_refuses_as_pa_array_does(column: list[Any], arrow: pa.DataType) -> None:
    assert isinstance(converted(column, arrow), type)
    with pytest.raises(Exception) as raised:
        arrow_array(column, arrow)
    assert raised.type is converted(column, arrow)


@needs_c
def test_buffers_refuse_subclasses_and_strangers() -> None:
    assert speedups is not None
    with pytest.raises(TypeError):
        speedups.float64_buffers([Weird(1.0)])
    with pytest.raises(TypeError):
        speedups.int64_buffers([True])
    with pytest.raises(TypeError):
        speedups.utf8_buffers([b"bytes"])
    with pytest.raises(ValueError):
        speedups.int64_buffers([1], 0)


# -- the row recorder --------------------------------------------------------------------------------


class Harness:
    """A recorder of either kind over a plain deque, with a scripted clock and a check that
    validates names as the FDA recorder does (known names only; a ``None`` is left out)."""

    KNOWN = frozenset({"iter", "E", "phase", "lambda_", "weird"})

    def __init__(self, kind: str, *, fast_calls: int = 10**9, chunk: int = 4) -> None:
        self.rows: collections.deque[dict[str, Any]] = collections.deque()
        self.handed: list[dict[str, Any]] = []
        self.checked: list[int] = []
        self.ticks = iter(range(1_000, 10**9, 1_500))
        self.context = object()
        self.current = self.context
        factory: Any = speedups.RowRecorder if kind == "c" else RowRecorderPy
        self.recorder = factory(
            rows=self.rows,
            hand_over=self.hand_over,
            context=self.context,
            get_context=lambda: self.current,
            check=self.check,
            clock=lambda: next(self.ticks),
            start_ns=1_000,
            origin_ns=1_767_225_600_000_000_000,
            fast_calls=fast_calls,
            offset_key="t_wall_ms",
            time_key=TIME_KEY,
            context_key=CONTEXT_KEY,
            chunk=chunk,
            native_clock=False,
        )
        self.recorder.valid_names = (None,)

    def hand_over(self) -> None:
        while self.rows:
            self.handed.append(self.rows.popleft())

    def check(self, index: int, fields: dict[str, Any]) -> bool:
        self.checked.append(index)
        if not fields.keys() <= self.KNOWN:
            raise ValueError(f"unknown {sorted(fields.keys() - self.KNOWN)}")
        if index % 7 == 6:
            return False  # sampled out
        if all(value is not None for value in fields.values()):
            self.recorder.valid_names = tuple(fields)
            self.recorder.renames = "lambda_" in fields
        for key in [k for k, v in fields.items() if v is None]:
            del fields[key]
        if "lambda_" in fields:
            fields["lambda"] = fields.pop("lambda_")
        return True

    def play(self, calls: list[dict[str, Any]]) -> list[Any]:
        """Each call's outcome (None or the exception type), then the rows as handed and held."""
        outcomes: list[Any] = []
        for fields in calls:
            try:
                outcomes.append(self.recorder.record(**fields))
            except Exception as exc:
                outcomes.append(type(exc))
        self.current = object()  # a row recorded in another context keeps it
        self.recorder.record(iter=-1, E=0.0)
        return [outcomes, self.handed, list(self.rows), self.recorder.calls]


calls_strategy = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"iter": st.integers(0, 9), "E": st.floats(allow_nan=False), "phase": st.just("G")}
        ),
        st.fixed_dictionaries({"iter": st.integers(0, 9), "E": st.none()}),
        st.fixed_dictionaries({"iter": st.integers(0, 9), "lambda_": st.floats(0, 1)}),
        st.fixed_dictionaries({"iter": st.integers(0, 9), "weird": st.just(Weird(2.0))}),
        st.fixed_dictionaries({"bogus": st.integers()}),
        st.just({}),
    ),
    max_size=30,
)


@needs_c
@settings(max_examples=200, deadline=None)
@given(calls=calls_strategy, fast_calls=st.integers(0, 40), chunk=st.integers(1, 6))
def test_row_recorder_is_its_twin(calls: list[dict[str, Any]], fast_calls: int, chunk: int) -> None:
    c = Harness("c", fast_calls=fast_calls, chunk=chunk).play(calls)
    py = Harness("py", fast_calls=fast_calls, chunk=chunk).play(calls)
    # The rows: the same keys in the same order, the same values (the contexts are each harness's own).
    strip = [[{k: v for k, v in row.items() if k != CONTEXT_KEY} for row in rows] for rows in (c[1], py[1])]
    assert same(strip[0], strip[1]) and [list(r) for r in c[1]] == [list(r) for r in py[1]]
    assert c[0] == py[0] and len(c[2]) == len(py[2]) and c[3] == py[3]


@needs_c
def test_row_recorder_short_path_skips_the_check_and_stamps_time() -> None:
    harness = Harness("c")
    record = harness.recorder.record
    record(iter=0, E=1.0)
    record(iter=1, E=2.0)
    record(iter=2, E=Weird(3.0))  # == raises: still a value, not None
    record(iter=3, E=None)  # None: the check decides
    assert harness.checked == [0, 3]
    rows = harness.handed + list(harness.rows)
    assert [r["iter"] for r in rows] == [0, 1, 2, 3]
    assert rows[1]["t_wall_ms"] == (2_500 - 1_000) / 1e6
    assert rows[1][TIME_KEY] == 1_767_225_600_000_000_000 + 1_500
    with pytest.raises(TypeError):
        harness.recorder.record(1)  # type: ignore[call-arg]


@needs_c
def test_row_recorder_never_keeps_a_dict_the_caller_holds() -> None:
    """Called from C with the caller's own dict (``PyObject_Call``), the recorder copies it."""
    harness = Harness("c")
    mine = {"iter": 1, "E": 1.0}
    call = ctypes.pythonapi.PyObject_Call
    call.restype = ctypes.py_object
    call.argtypes = [ctypes.py_object, ctypes.py_object, ctypes.py_object]
    call(harness.recorder.record, (), mine)
    call(harness.recorder, (), mine)
    assert mine == {"iter": 1, "E": 1.0}
    assert len(harness.handed) + len(harness.rows) == 2


@needs_c
def test_a_cycle_through_the_c_recorder_is_collected() -> None:
    """A run holds its recorder, which holds the run's bound ``_check``: the collector must see it."""

    class Owner:
        def check(self, index: int, fields: dict[str, Any]) -> bool:
            return True

    owner = Owner()
    owner.recorder = speedups.RowRecorder(  # type: ignore[attr-defined, union-attr]
        rows=collections.deque(),
        hand_over=lambda: None,
        context=None,
        get_context=lambda: None,
        check=owner.check,
        clock=lambda: 0,
        start_ns=0,
        origin_ns=0,
        fast_calls=0,
        offset_key="t",
        time_key=TIME_KEY,
        context_key=CONTEXT_KEY,
        chunk=8,
        native_clock=False,
    )
    gone = weakref.ref(owner)
    del owner
    gc.collect()
    assert gone() is None


def test_the_fda_path_passes_without_the_c_module(tmp_path: Path) -> None:
    """The pure-Python twins carry the FDA path alone: its buffer, its bit-for-bit row route."""
    env = {**os.environ, _accel.SPEEDUPS_ENV: "0", "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run(
        [sys.executable, "-c", "from otel_tele import _accel; print(_accel.speedups)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "None"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_event_buffer.py",
            "tests/test_fda_rows_route.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


# -- untrack_plain -----------------------------------------------------------------------------------


@needs_c
def test_untrack_plain_untracks_only_what_cannot_be_in_a_cycle() -> None:
    assert speedups is not None
    event = {"seq": 1, "data": {"id": 3, "angle": 45.0}, "note": (1, "x")}
    assert gc.is_tracked(event)  # CPython tracks a dict holding a dict, even an untracked one
    assert speedups.untrack_plain(event) is True and not gc.is_tracked(event)
    event["context"] = [event]  # a tracked value later: CPython tracks the dict again on insertion
    assert gc.is_tracked(event)
    cyclic: dict[str, Any] = {"data": {}}
    cyclic["data"]["back"] = cyclic  # the inner dict is tracked: a cycle the collector must see
    assert speedups.untrack_plain(cyclic) is False and gc.is_tracked(cyclic)
    assert speedups.untrack_plain({"values": [1, 2]}) is False  # a list is always tracked
    assert speedups.untrack_plain({"a": 1}) is False  # never tracked: nothing to do
    assert speedups.untrack_plain({"obj": Weird(1.0)}) is False  # an instance with a __dict__


@needs_c
def test_a_cycle_emitted_inside_an_event_is_still_collected() -> None:
    """An event whose attribute is a cycle of the caller's stays tracked; after it is processed the
    cycle is garbage and the collector frees it."""
    import otel_tele

    class Node:
        pass

    telemetry = otel_tele.setup(
        local=True, sinks=[], traces_exporter="none", metrics_exporter="none", logs_exporter="none"
    )
    try:
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        gone = weakref.ref(node)
        plain = {"data": {"id": 1, "angle": 2.0}}
        telemetry.events.emit("custom.event", plain)
        telemetry.events.emit("custom.event", {"data": {"node": node}})
        assert not gc.is_tracked(plain)  # the burst's backlog is not walked by full collections
        del node
        assert telemetry.force_flush(10_000)
    finally:
        telemetry.shutdown(10_000)
    gc.collect()
    assert gone() is None
