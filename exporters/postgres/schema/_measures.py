"""The rollup measures: what a rollup row holds per bucket, event type and component, and how two
rows of a bucket merge (sum, min, max)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from otel_tele.semconv import inference as inf

Merge = Literal["sum", "min", "max"]


@dataclass(frozen=True)
class Measure:
    name: str
    integer: bool
    merge: Merge
    doc: str


MEASURES_V2: tuple[Measure, ...] = (
    Measure("count", True, "sum", "rows"),
    Measure("value_count", True, "sum", "rows with a finite value"),
    Measure("value_sum", False, "sum", "sum of finite values"),
    Measure("value_min", False, "min", "smallest finite value"),
    Measure("value_max", False, "max", "largest finite value"),
    Measure("tokens_sum", True, "sum", "tokens generated (THOUGHT_LATENCY)"),
    Measure("prompt_tokens_sum", True, "sum", "prompt tokens (THOUGHT_LATENCY)"),
    Measure("weight_sum", True, "sum", "tokens of rows with a finite efficiency score: the weights"),
    Measure("weighted_sum", False, "sum", "sum of efficiency score x tokens generated"),
    Measure("latency_ms_sum", False, "sum", "inference time of rows with tokens (ms)"),
    Measure("zero_tokens", True, "sum", "inferences that generated no token"),
    Measure("failures", True, "sum", "rows whose status is a failure"),
)
#: Time to first token (the conventions' bucket boundaries, seconds) per rollup bucket: percentiles
#: per model come from these counts (version 4).
TTFT_BOUNDS: tuple[float, ...] = inf.TIME_TO_FIRST_TOKEN_BUCKETS_S
MEASURES_V4: tuple[Measure, ...] = (
    Measure("ttft_count", True, "sum", "inferences with a time to first token"),
    Measure("ttft_sum", False, "sum", "sum of times to first token (s)"),
    Measure("ttft_max", False, "max", "largest time to first token (s)"),
    *(
        Measure(f"ttft_le_{i:02d}", True, "sum", f"times to first token in bucket {i} (upper bound {b} s)")
        for i, b in enumerate((*TTFT_BOUNDS, math.inf))
    ),
)
MEASURES: tuple[Measure, ...] = (*MEASURES_V2, *MEASURES_V4)
MEASURE_NAMES: tuple[str, ...] = tuple(m.name for m in MEASURES)


_EMPTY: tuple[float, ...] = tuple(math.nan if m.merge != "sum" else 0 for m in MEASURES)


def empty_measures() -> list[float]:
    """The measures of an empty bucket (sums 0, min/max unknown: NaN)."""
    return list(_EMPTY)


def merge_into(target: list[float], source: Sequence[float]) -> None:
    """Merge ``source`` measures into ``target``, each by its rule (sum, min, max)."""
    for i, measure in enumerate(MEASURES):
        a, b = target[i], source[i]
        if measure.merge == "sum":
            target[i] = a + b
        elif not math.isnan(b):
            target[i] = b if math.isnan(a) else (min(a, b) if measure.merge == "min" else max(a, b))
