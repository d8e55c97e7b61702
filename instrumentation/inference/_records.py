"""Spec 002's events as the inference vocabulary: a recording call's arguments checked, then turned
into one event's attributes (``otel_tele.semconv.inference``).

A ``*_problem`` function names what makes an argument unusable (a wrong type: refused, nothing
recorded); a measurement out of range (negative, NaN) is kept with status ``invalid``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from otel_tele._internal import safe_repr
from otel_tele.semconv import inference as inf


def number_problem(name: str, value: Any) -> str | None:
    kind = type(value)
    if kind is float or kind is int:  # the usual argument, found without isinstance
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {type(value).__name__}"
    return None


def int_problem(name: str, value: Any) -> str | None:
    if type(value) is int:  # the usual argument, found without isinstance
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        return f"{name} must be an integer, got {safe_repr(value)}"
    return None


def name_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{name} must be a non-empty string, got {safe_repr(value)}"
    return None


def generic(
    event_type: str, component: Any, value: Any, metadata: Mapping[str, Any] | None, status: Any
) -> tuple[str, dict[str, Any]]:
    """The ``log`` call's event: its name (by event type, else the generic one) and attributes."""
    attributes = {
        inf.EVENT_TYPE: event_type,
        inf.COMPONENT: component,
        inf.VALUE: value,
        inf.METADATA: dict(metadata) if metadata else {},
        inf.STATUS: status,
    }
    return inf.EVENT_NAME_BY_TYPE.get(event_type, inf.GENERIC), attributes


def load(model_name: str, seconds: float, success: bool, provider: str | None) -> tuple[bool, dict[str, Any]]:
    """A model load: (is the duration valid, the ``LOAD_LATENCY`` event's attributes)."""
    valid = math.isfinite(seconds) and seconds >= 0
    status = (inf.STATUS_OK if success else inf.STATUS_FAILED) if valid else inf.STATUS_INVALID
    return valid, {
        inf.EVENT_TYPE: inf.LOAD_LATENCY_TYPE,
        inf.COMPONENT: model_name,
        inf.VALUE: seconds if valid else None,
        inf.STATUS: status,
        inf.METADATA: {"model": model_name, "load_time_ms": seconds * 1000, "success": bool(success)},
        inf.REQUEST_MODEL: model_name,
        inf.OPERATION_NAME: inf.LOAD_OPERATION,
        inf.PROVIDER_NAME: provider,
        inf.LOAD_SECONDS: seconds if valid else None,
    }


#: One inference as recorded: its status, the known token counts and the event's attributes (a
#: plain tuple: it is made on every recording call, where even a named tuple's ``__new__`` is a
#: Python call).
Thought = tuple[str, dict[str, int], dict[str, Any]]


def thought(
    model_name: str,
    seconds: float,
    tokens: int | None,
    prompt: int | None,
    first: float | None,
    operation: str,
    provider: str | None,
    error_type: str | None,
) -> Thought:
    """An inference (``THOUGHT_LATENCY``): zero or unknown (``None``) tokens give status
    ``no_tokens`` and no efficiency score — an unknown count is left out, never written as zero."""
    ms = seconds * 1000
    score: float | None = None
    if not (
        math.isfinite(ms)
        and ms >= 0
        and (tokens or 0) >= 0
        and (prompt or 0) >= 0
        and (first is None or 0 <= first <= seconds)
    ):
        status = inf.STATUS_INVALID
    elif error_type is not None:
        status = inf.STATUS_FAILED
    elif not tokens:
        status = inf.STATUS_NO_TOKENS
    else:
        status, score = inf.STATUS_OK, ms / tokens
    metadata: dict[str, Any]
    known: dict[str, int]
    if tokens is not None and prompt is not None:  # the usual call: one literal each
        known = {inf.INPUT_TOKENS: prompt, inf.OUTPUT_TOKENS: tokens}
        metadata = {
            "model": model_name,
            "inference_time_ms": ms,
            "tokens_generated": tokens,
            "prompt_tokens": prompt,
            "total_tokens": tokens + prompt,
            "latency_per_token_ms": score,
        }
    else:  # the same keys in the same order, the unknown left out
        known, metadata = {}, {"model": model_name, "inference_time_ms": ms}
        if prompt is not None:
            known[inf.INPUT_TOKENS] = prompt
        if tokens is not None:
            known[inf.OUTPUT_TOKENS] = metadata["tokens_generated"] = tokens
        if prompt is not None:
            metadata["prompt_tokens"] = prompt
        metadata["latency_per_token_ms"] = score
    first_token = first if error_type is None else None
    if first_token is not None:
        metadata["time_to_first_token_s"] = first_token
    if error_type is not None:
        metadata["error_type"] = error_type
    attributes = {
        inf.EVENT_TYPE: inf.THOUGHT_LATENCY_TYPE,
        inf.COMPONENT: model_name,
        inf.VALUE: score,
        inf.STATUS: status,
        inf.METADATA: metadata,
        inf.REQUEST_MODEL: model_name,
        inf.OPERATION_NAME: operation,
        inf.PROVIDER_NAME: provider,
        **known,
        inf.DURATION: seconds,
        inf.LATENCY_PER_TOKEN_MS: score,
        inf.TIME_TO_FIRST_TOKEN: first_token,
        inf.ERROR_TYPE: error_type,
    }
    return status, known, attributes


def vram_check(gpu_id: str, free_mb: float, used_mb: float, total_mb: float) -> dict[str, Any]:
    percentage = used_mb / total_mb * 100 if total_mb else None
    return {
        inf.EVENT_TYPE: inf.VRAM_CHECK_TYPE,
        inf.COMPONENT: gpu_id,
        inf.VALUE: free_mb,
        inf.METADATA: {"used": used_mb, "total": total_mb, "percentage": percentage},
    }


def vram_lockout(gpu_id: str, trigger_threshold: float, free_vram: float) -> dict[str, Any]:
    return {
        inf.EVENT_TYPE: inf.VRAM_LOCKOUT_TYPE,
        inf.COMPONENT: gpu_id,
        inf.VALUE: 0.0,
        inf.METADATA: {"trigger_threshold": trigger_threshold, "free_vram": free_vram},
    }
