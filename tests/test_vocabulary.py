"""The vocabulary's coercion: whatever callers pass, records carry valid OTel attributes and nothing
vanishes without a trace."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_tele import semconv

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
KEYS = st.one_of(
    st.sampled_from(list(semconv.EVENTS["robot.dds.command"].attributes_by_key)), st.text(max_size=8)
)


def _valid_otel_value(value: Any) -> bool:
    if isinstance(value, bool | float | str):
        return not isinstance(value, str) or value.encode("utf-8") is not None
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, tuple):
        return len({type(v) for v in value}) <= 1 and all(_valid_otel_value(v) for v in value)
    return False


@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_coerced_attributes_are_valid_and_accounted_for(attributes: dict[str, Any]) -> None:
    """Every non-None input key comes out typed, or is named in the problems."""
    original = dict(attributes)
    clean, problems = semconv.coerce_attributes(semconv.EVENTS["robot.dds.command"], attributes)
    for key, value in clean.items():
        assert isinstance(key, str) and _valid_otel_value(value), (key, value)
    declared = semconv.EVENTS["robot.dds.command"].attributes_by_key
    for key, value in original.items():
        if value is None:
            assert key not in clean
        elif key not in clean:
            assert any(p.startswith(f"{key}:") for p in problems), (key, value, problems)
        elif key in declared and declared[key].type is semconv.AttrType.INT:
            assert type(clean[key]) is int


def test_declared_types_are_enforced() -> None:
    """Numbers as strings become numbers; floats declared as int must be whole."""
    clean, problems = semconv.coerce_attributes(
        semconv.EVENTS["robot.dds.command"],
        {"robot.dds.funcode": "5", "robot.joint.id": 2.0, "robot.dds.seq": 2.5, "robot.target_value": 1},
    )
    assert clean == {"robot.dds.funcode": 5, "robot.joint.id": 2, "robot.target_value": 1.0}
    assert problems and problems[0].startswith("robot.dds.seq:")


def test_encoder_function_gives_json_encoder_text_across_threads_failures_and_reentry() -> None:
    """Issue 14: to_json's per-thread encoder writes exactly what a fresh JSONEncoder writes, also
    after a failure mid-way, from a ``repr`` that encodes JSON itself, and from several threads."""
    import json
    import math
    import threading

    from otel_tele.semconv import encoder_function

    options = json.JSONEncoder(default=repr, allow_nan=True, ensure_ascii=False, separators=(",", ":"))
    fast = encoder_function(options)

    class Nested:
        def __repr__(self) -> str:
            return fast({"inner": [1, shared]})

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    shared = {"x": [1, 2.5, {"y": None}]}
    values: list[object] = [
        1,
        -0.0,
        math.nan,
        -math.inf,
        "é\ud800",
        {"a": [1, {"b": None}], 3: True, 1.5: "f"},
        [b"x", (1, 2)],
        [shared, shared, Nested()],
        10**30,
    ]
    circular: list[object] = []
    circular.append(circular)
    for value in values:
        assert fast(value) == options.encode(value)
    for bad in (circular, {"k": [Broken()]}):
        with pytest.raises((ValueError, RuntimeError)):
            fast(bad)
        assert fast(shared) == options.encode(shared)  # nothing left marked by the failure
    wrong: list[object] = []

    def work() -> None:
        for _ in range(2_000):
            if fast([shared, Nested()]) != options.encode([shared, Nested()]):
                wrong.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
