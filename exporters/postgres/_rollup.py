"""What a batch of sanitized rows adds to the rollups, computed a column at a time.

The measures are the ones a row-by-row fold gives (``m.value_sum += value`` row after row, ``min`` /
``max`` keeping the first of equal values, counts and token sums as integers): rows are grouped by
rollup key in row order and each measure is folded over its group in that order, so every float sum
is bit for bit the same as the row-by-row one. ``sum()`` is used only on integers (Python 3.12's
``sum`` of floats compensates rounding, which a fold does not). Per row this costs a few list
comprehensions instead of a function call with a dozen branches.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import reduce
from operator import add
from typing import Any

from otel_tele.semconv import inference as inf

from ._clean import column
from .schema import MEASURES, ROLLUP_MINUTE, TTFT_BOUNDS, empty_measures, merge_into

RollupKey = tuple[int, str, str]  # (bucket epoch s, event_type, component or "")

_INDEX = {m.name: i for i, m in enumerate(MEASURES)}
_COUNT, _VCOUNT, _VSUM, _VMIN, _VMAX, _FAIL = (
    _INDEX[n] for n in ("count", "value_count", "value_sum", "value_min", "value_max", "failures")
)
_TOK, _PROMPT, _WEIGHT, _WSUM, _LAT, _ZERO = (
    _INDEX[n]
    for n in (
        "tokens_sum",
        "prompt_tokens_sum",
        "weight_sum",
        "weighted_sum",
        "latency_ms_sum",
        "zero_tokens",
    )
)
_TTFT_COUNT, _TTFT_SUM, _TTFT_MAX, _TTFT_FIRST = (
    _INDEX[n] for n in ("ttft_count", "ttft_sum", "ttft_max", "ttft_le_00")
)
#: Below this many rows per rollup key on average, a batch's measures are folded row after row.
_ROWS_PER_KEY = 16
_PLAIN_NUMBERS = frozenset({float, int, type(None)})  # not bool: True is no measurement


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (not a number, a bool, NaN, ±inf, an int beyond float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value) if math.isfinite(value) else None
    except OverflowError:  # an integer too large for a float: as unmeasurable as an infinite one
        return None


def _numbers(values: list[Any]) -> list[float | None]:
    """:func:`number` of each value; without a call per value when they are plain floats and ints."""
    if set(map(type, values)) <= _PLAIN_NUMBERS:
        try:
            isfinite = math.isfinite
            return [None if v is None or not isfinite(v) else float(v) for v in values]
        except OverflowError:
            pass
    return [number(v) for v in values]


def _fold(values: list[float]) -> float:
    """``0 + v1 + v2 + …`` left to right: the row-by-row sum, rounding for rounding."""
    return reduce(add, values, 0)


def minute_rollup(
    rows: Sequence[Sequence[Any]], metas: Sequence[Mapping[str, Any]]
) -> dict[RollupKey, list[float]]:
    """The minute rollup's increments from sanitized rows and their parsed metadata, keys in the order
    rows first reach them (the hour rollup is merged from these in that order)."""
    if not rows:
        return {}
    event_type, component, value, status, ts = (column(rows, i) for i in (0, 1, 2, 4, 5))
    step = ROLLUP_MINUTE.seconds
    buckets = [int(t // step) * step for t in ts]
    if None in component:
        component = [c or "" for c in component]
    numbers = _numbers(value)
    failures = inf.FAILURE_STATUSES
    failed = [s in failures for s in status]
    out: dict[RollupKey, list[float]] = {}
    if len(set(buckets)) == len(set(event_type)) == len(set(component)) == 1:  # the usual batch
        key = (buckets[0], event_type[0], component[0])
        out[key] = _measures(key[1], numbers, failed, list(metas))
        return out
    keys = list(zip(buckets, event_type, component, strict=True))
    if len(set(keys)) * _ROWS_PER_KEY > len(keys):  # many small groups: one pass over the rows
        return _fold_rows(keys, numbers, failed, metas)
    groups: defaultdict[RollupKey, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    for key, index in groups.items():
        out[key] = _measures(
            key[1], [numbers[i] for i in index], [failed[i] for i in index], [metas[i] for i in index]
        )
    return out


def _fold_rows(
    keys: list[RollupKey], values: list[float | None], failed: list[bool], metas: Sequence[Mapping[str, Any]]
) -> dict[RollupKey, list[float]]:
    """The measures row after row (a batch spread over many minutes: per key, the column path's
    fixed cost would outweigh its rows); the same folds in the same order as :func:`_measures`."""
    out: dict[RollupKey, list[float]] = {}
    thought = inf.THOUGHT_LATENCY_TYPE
    for key, value, fail, meta in zip(keys, values, failed, metas, strict=True):
        m = out.get(key)
        if m is None:
            m = out[key] = empty_measures()
        m[_COUNT] += 1
        m[_FAIL] += fail
        if value is not None:
            m[_VCOUNT] += 1
            m[_VSUM] += value
            m[_VMIN] = value if m[_VMIN] != m[_VMIN] else min(m[_VMIN], value)
            m[_VMAX] = value if m[_VMAX] != m[_VMAX] else max(m[_VMAX], value)
        if key[1] == thought:
            _thought_row(m, value, meta)
    return out


def _thought_row(m: list[float], value: float | None, meta: Mapping[str, Any]) -> None:
    """One inference row's token-aware measures added to ``m`` (:func:`_thought_measures`, row-wise)."""
    ttft = number(meta.get("time_to_first_token_s"))
    if ttft is not None and ttft >= 0:
        m[_TTFT_COUNT] += 1
        m[_TTFT_SUM] += ttft
        m[_TTFT_MAX] = ttft if m[_TTFT_MAX] != m[_TTFT_MAX] else max(m[_TTFT_MAX], ttft)
        m[_TTFT_FIRST + bisect_left(TTFT_BOUNDS, ttft)] += 1
    prompt = number(meta.get("prompt_tokens"))
    if prompt is not None and prompt > 0:
        m[_PROMPT] += int(prompt)
    tokens = number(meta.get("tokens_generated"))
    if tokens is None or tokens <= 0:
        m[_ZERO] += tokens == 0
        return
    whole = int(tokens)
    m[_TOK] += whole
    latency = number(meta.get("inference_time_ms"))
    if latency is not None:
        m[_LAT] += latency
    if value is not None:
        m[_WEIGHT] += whole
        m[_WSUM] += value * whole


def _measures(
    event_type: str, values: list[float | None], failed: list[bool], metas: list[Mapping[str, Any]]
) -> list[float]:
    """One key's measures from its rows' values (:func:`number`), failure flags and metadata."""
    m = empty_measures()
    m[_COUNT] = len(values)
    m[_FAIL] = sum(failed)
    finite = [v for v in values if v is not None]
    if finite:
        m[_VCOUNT] = len(finite)
        m[_VSUM] = _fold(finite)
        m[_VMIN] = min(finite)  # the first of equal values, as min(m, v) row after row keeps
        m[_VMAX] = max(finite)
    if event_type == inf.THOUGHT_LATENCY_TYPE:
        _thought_measures(m, values, metas)
    return m


def _thought_measures(m: list[float], values: list[float | None], metas: list[Mapping[str, Any]]) -> None:
    """The token-aware measures of inference rows (time to first token, tokens, latency, weights)."""
    ttft = [
        t for t in _numbers([meta.get("time_to_first_token_s") for meta in metas]) if t is not None and t >= 0
    ]
    if ttft:
        m[_TTFT_COUNT] = len(ttft)
        m[_TTFT_SUM] = _fold(ttft)
        m[_TTFT_MAX] = max(ttft)
        for t in ttft:
            m[_TTFT_FIRST + bisect_left(TTFT_BOUNDS, t)] += 1  # "le": a value on a bound is in its bucket
    prompt = _numbers([meta.get("prompt_tokens") for meta in metas])
    m[_PROMPT] = sum([int(p) for p in prompt if p is not None and p > 0])
    tokens = _numbers([meta.get("tokens_generated") for meta in metas])
    m[_ZERO] = tokens.count(0)  # 0.0 and -0.0 == 0; None does not
    counted = [i for i, t in enumerate(tokens) if t is not None and t > 0]
    whole = [int(tokens[i]) for i in counted]  # type: ignore[arg-type]
    m[_TOK] = sum(whole)
    latency = _numbers([metas[i].get("inference_time_ms") for i in counted])
    m[_LAT] = _fold([ms for ms in latency if ms is not None])
    weighted = [(v, w) for i, w in zip(counted, whole, strict=True) if (v := values[i]) is not None]
    m[_WEIGHT] = sum([w for _, w in weighted])
    m[_WSUM] = _fold([v * w for v, w in weighted])


def coarsen(rollup: Mapping[RollupKey, Sequence[float]], seconds: int) -> dict[RollupKey, list[float]]:
    """A finer rollup merged into buckets of ``seconds``, in the finer rollup's key order."""
    out: dict[RollupKey, list[float]] = {}
    for (bucket, event_type, component), measures in rollup.items():
        key = (bucket // seconds * seconds, event_type, component)
        target = out.get(key)
        if target is None:
            # Merging into empty measures gives them back as they are (a sum is never -0.0: every
            # fold starts at the integer 0, and 0 + -0.0 is 0.0), so the first is copied.
            out[key] = list(measures)
        else:
            merge_into(target, measures)
    return out


def rollup_rows(rollup: Mapping[RollupKey, Sequence[float]]) -> list[tuple[Any, ...]]:
    """Rows for the upsert, sorted by key so concurrent writers lock rollup rows in one order."""
    return [
        (*key, *(None if isinstance(v, float) and math.isnan(v) else v for v in rollup[key]))
        for key in sorted(rollup)
    ]
