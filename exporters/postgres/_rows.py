"""Inference log records → ``system_telemetry`` rows and the rollup increments they add.

Both stores take what :func:`prepare` returns, so what a row *means* (which value is an efficiency
score, what weighs it, what counts as a failure) is decided here once. Text PostgreSQL would reject is
made valid, never dropped: NaN/±inf inside metadata become the strings ``"NaN"``/``"Infinity"``/
``"-Infinity"``, NUL characters become the visible text ``\\u0000``, and an over-long
event_type/component/status is cut to :data:`MAX_KEY_CHARS` with the full text kept in metadata.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_tele._internal import bad_input_log, describe_error
from otel_tele._mapping import RowMapper, Rows
from otel_tele.semconv import inference as inf

from .schema import (
    MAX_KEY_CHARS,
    MEASURES,
    ROLLUP_HOUR,
    ROLLUP_MINUTE,
    ROLLUPS,
    ROW_EVENTS,
    ROW_TABLE,
    TABLE,
    TTFT_BOUNDS,
    clean_text,
    empty_measures,
    merge_into,
)

#: (event_type, component, value, metadata JSON text, status, timestamp epoch s, trace_id, span_id)
Row = tuple[str, str | None, float | None, str, str | None, float, str | None, str | None]
RollupKey = tuple[int, str, str]  # (bucket epoch s, event_type, component or "")


#: The row mapping, generated from :data:`~.schema.ROW_TABLE`: one entry per row event, each with
#: the event type its records stand for.
MAPPER = RowMapper(
    ROW_TABLE.mapping(event, defaults={"event_type": default}) for event, default in ROW_EVENTS.items()
)


@dataclass
class Batch:
    """Rows ready to write and the rollup increments per rollup table."""

    rows: list[Row] = field(default_factory=list)
    rollups: dict[str, dict[RollupKey, list[float]]] = field(default_factory=dict)
    rejected: int = 0
    not_routed: int = 0  # records of events no inference table takes


def prepare(rows: Iterable[Sequence[Any]], rejected: int = 0) -> Batch:
    """Sanitize mapped rows and compute what they add to each rollup table."""
    batch = Batch(rejected=rejected)
    minute: dict[RollupKey, list[float]] = {}
    for raw in rows:
        try:
            row, meta = sanitize_row(raw)
        except Exception as exc:  # metadata nested too deep to parse, a hostile value: fails alone
            batch.rejected += 1
            bad_input_log.warning("postgres sink", "inference sink: a row rejected (%s)", describe_error(exc))
            continue
        batch.rows.append(row)
        key = (int(row[5] // ROLLUP_MINUTE.seconds) * ROLLUP_MINUTE.seconds, row[0], row[1] or "")
        measures = minute.get(key)
        if measures is None:
            measures = minute[key] = empty_measures()
        add_row(measures, row, meta)
    batch.rollups[ROLLUP_MINUTE.table] = minute
    for rollup in ROLLUPS:
        if rollup is not ROLLUP_MINUTE:
            batch.rollups[rollup.table] = coarsen(minute, rollup.seconds)
    return batch


def prepare_records(records: Sequence[Any]) -> Batch:
    """Map OTel log records (the sink's input) and :func:`prepare` them."""
    mapped: Rows = MAPPER.map_logs(records)
    batch = prepare(mapped.by_table.get(TABLE, ()), mapped.rejected)
    batch.not_routed = mapped.not_routed
    return batch


# -- sanitizing -----------------------------------------------------------------------------------
_SUSPECT = ("NaN", "Infinity", "\\u0000")


def _valid_as_is(text: Any) -> bool:
    """JSON text jsonb accepts unchanged: no NaN/Infinity literal, no NUL escape, encodable."""
    if not isinstance(text, str) or any(marker in text for marker in _SUSPECT):
        return False
    return text.isascii() or clean_text(text) is text


def clean_json(value: Any) -> Any:
    """A JSON value PostgreSQL's jsonb accepts (NaN/inf → strings, NUL → visible escape)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def parse_metadata(text: Any) -> dict[str, Any]:
    if isinstance(text, Mapping):
        parsed: Any = text
    else:
        try:
            parsed = json.loads(text)
        except (TypeError, ValueError):
            parsed = {"_raw": str(text)}  # not JSON (e.g. a record from another SDK): keep it as text
    if not isinstance(parsed, Mapping):
        parsed = {"_value": parsed}
    cleaned: dict[str, Any] = clean_json(parsed)
    return cleaned


def _loads_dict(text: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _key_text(value: Any, name: str, meta: dict[str, Any]) -> str | None:
    if value is None:
        return None
    text = clean_text(str(value))
    if len(text) > MAX_KEY_CHARS:
        meta.setdefault("otel_tele.truncated", {})[name] = text
        text = text[:MAX_KEY_CHARS]
    return text


#: Epoch seconds both stores can hold (Python's datetime: years 1 to 9999).
_TS_RANGE = (-62_135_596_800.0, 253_402_300_799.0)


def sanitize_row(raw: Sequence[Any]) -> tuple[Row, dict[str, Any]]:
    event_type, component, value, metadata, status, ts, trace_id, span_id = raw
    if not _TS_RANGE[0] <= float(ts) <= _TS_RANGE[1]:  # NaN too: the row fails alone
        raise ValueError("timestamp out of range")
    fast = _valid_as_is(metadata)
    meta = _loads_dict(metadata) if fast else None
    if meta is None:
        fast, meta = False, parse_metadata(metadata)
    event_type = _key_text(event_type, "event_type", meta) or ""
    component = _key_text(component, "component", meta)
    status = _key_text(status, "status", meta)
    if fast and "otel_tele.truncated" not in meta:
        text = metadata  # the common case: the JSON text from the pipeline is stored as it came
    else:
        text = json.dumps(meta, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
    return (event_type, component, value, text, status, float(ts), trace_id, span_id), meta


# -- rollup measures ------------------------------------------------------------------------------
_INDEX = {m.name: i for i, m in enumerate(MEASURES)}
_COUNT, _VCOUNT, _VSUM, _VMIN, _VMAX = (
    _INDEX[n] for n in ("count", "value_count", "value_sum", "value_min", "value_max")
)
_TOK, _PROMPT, _WEIGHT, _WSUM, _LAT, _ZERO, _FAIL = (
    _INDEX[n]
    for n in (
        "tokens_sum",
        "prompt_tokens_sum",
        "weight_sum",
        "weighted_sum",
        "latency_ms_sum",
        "zero_tokens",
        "failures",
    )
)


_TTFT_COUNT, _TTFT_SUM, _TTFT_MAX, _TTFT_FIRST = (
    _INDEX[n] for n in ("ttft_count", "ttft_sum", "ttft_max", "ttft_le_00")
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def add_row(m: list[float], row: Row, meta: Mapping[str, Any]) -> None:
    m[_COUNT] += 1
    value = _number(row[2])
    if value is not None:
        m[_VCOUNT] += 1
        m[_VSUM] += value
        m[_VMIN] = value if math.isnan(m[_VMIN]) else min(m[_VMIN], value)
        m[_VMAX] = value if math.isnan(m[_VMAX]) else max(m[_VMAX], value)
    if row[4] in inf.FAILURE_STATUSES:
        m[_FAIL] += 1
    if row[0] != inf.THOUGHT_LATENCY_TYPE:
        return
    ttft = _number(meta.get("time_to_first_token_s"))
    if ttft is not None and ttft >= 0:
        m[_TTFT_COUNT] += 1
        m[_TTFT_SUM] += ttft
        m[_TTFT_MAX] = ttft if math.isnan(m[_TTFT_MAX]) else max(m[_TTFT_MAX], ttft)
        m[_TTFT_FIRST + bisect_left(TTFT_BOUNDS, ttft)] += 1  # "le": a value on a bound is in its bucket
    tokens = _number(meta.get("tokens_generated"))
    prompt = _number(meta.get("prompt_tokens"))
    if prompt is not None and prompt > 0:
        m[_PROMPT] += int(prompt)
    if tokens is None or tokens <= 0:
        m[_ZERO] += tokens == 0
        return
    m[_TOK] += int(tokens)
    latency = _number(meta.get("inference_time_ms"))
    if latency is not None:
        m[_LAT] += latency
    if value is not None:
        m[_WEIGHT] += int(tokens)
        m[_WSUM] += value * int(tokens)


def coarsen(rollup: Mapping[RollupKey, Sequence[float]], seconds: int) -> dict[RollupKey, list[float]]:
    out: dict[RollupKey, list[float]] = {}
    for (bucket, event_type, component), measures in rollup.items():
        key = (bucket // seconds * seconds, event_type, component)
        target = out.get(key)
        if target is None:
            target = out[key] = empty_measures()
        merge_into(target, measures)
    return out


def rollup_rows(rollup: Mapping[RollupKey, Sequence[float]]) -> list[tuple[Any, ...]]:
    """Rows for the upsert, sorted by key so concurrent writers lock rollup rows in one order."""
    return [
        (*key, *(None if isinstance(v, float) and math.isnan(v) else v for v in rollup[key]))
        for key in sorted(rollup)
    ]


__all__ = ["MAPPER", "ROLLUP_HOUR", "Batch", "Row", "prepare", "prepare_records"]
