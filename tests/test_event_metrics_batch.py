"""The event-fed metrics folded a batch at a time agree exactly with folding event by event."""

from __future__ import annotations

import math
import random
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

from otel_tele import semconv
from otel_tele._events import _EventMetrics

METRICS = (
    semconv.Metric("t.count", "counter", "1", "", "t.ev", labels=("a", "b")),
    semconv.Metric("t.nolabel", "counter", "1", "", "t.ev"),
    semconv.Metric("t.last", "gauge", "1", "", "t.ev", value="x", labels=("a",)),
    semconv.Metric("t.sum", "counter", "1", "", "t.ev", value="x", labels=("a",)),
    semconv.Metric("t.up", "updown_counter", "1", "", "t.ev", value="x", labels=("b",)),
)


def _batch(rng: random.Random, n: int, labels: int) -> list[dict[str, Any]]:
    values: list[Any] = [1.5, -2, math.nan, "7", None, True, 3.25]
    batch = []
    for _ in range(n):
        row: dict[str, Any] = {"a": rng.randrange(labels), "b": rng.choice(["p", "q", None])}
        if rng.random() < 0.9:
            row["x"] = rng.choice(values)
        if rng.random() < 0.1:
            del row["a"]
        batch.append(row)
    return batch


def _tables(metrics: _EventMetrics) -> list[dict[Any, Any]]:
    return [dict(plan[3]) for plan in metrics._plans["t.ev"]]


def test_batch_update_equals_row_by_row() -> None:
    rng = random.Random(7)
    for limit, labels in ((2_000, 5), (4, 9), (6, 3)):  # well under, past and at the limit
        meter = MeterProvider().get_meter("t")
        one, many = (_EventMetrics(meter, METRICS, cardinality_limit=limit) for _ in range(2))
        for _ in range(30):
            batch = _batch(rng, rng.randrange(1, 60), labels)
            for row in batch:
                one.update("t.ev", row)
            many.update_batch("t.ev", batch)
            many.update_batch("other", batch)  # no metric: nothing happens
            for a, b in zip(_tables(one), _tables(many), strict=True):
                assert a.keys() == b.keys()
                for key, value in a.items():
                    assert value == b[key] or (value != value and b[key] != b[key]), key
                    assert type(value) is type(b[key])
            assert one.overflowed == many.overflowed
