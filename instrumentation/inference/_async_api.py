"""Spec 002's async interface: the ``log_*`` calls (no I/O: they return as soon as the event is
queued) and the ``get_*`` queries (run in a worker thread).

A base of :class:`~._logger.TelemetryLogger`, over the synchronous ``record_*`` calls
(:mod:`._recording`) and the logger's ``query``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._recording import RecordingCalls


class AsyncInterface(RecordingCalls):
    """The spec's coroutines, each a thin call of its synchronous form."""

    def query(self, method: str, *args: Any) -> Any:
        raise NotImplementedError

    async def log(
        self,
        event_type: str,
        component: str | None = None,
        value: float | None = None,
        metadata: dict[str, Any] | None = None,
        status: str | None = None,
    ) -> bool:
        """Generic telemetry logging with JSONB metadata."""
        return self.record(event_type, component, value, metadata, status)

    async def log_load_latency(self, model_name: str, load_time_seconds: float, success: bool = True) -> bool:
        """Logs VRAM model load latency with sub-second precision."""
        return self.record_load(model_name, load_time_seconds, success=success)

    async def log_thought_latency(
        self,
        model_name: str,
        inference_time_seconds: float,
        tokens_generated: int | None,
        prompt_tokens: int | None = None,
    ) -> bool:
        """Logs inference latency with token-aware efficiency metrics (value = ms per token)."""
        return self.record_thought(model_name, inference_time_seconds, tokens_generated, prompt_tokens)

    async def log_vram_check(self, gpu_id: str, free_mb: float, *, used_mb: float, total_mb: float) -> bool:
        """VRAM_CHECK: value = free VRAM (MB), metadata {used, total, percentage}."""
        return self.record_vram_check(gpu_id, free_mb, used_mb=used_mb, total_mb=total_mb)

    async def log_vram_lockout(self, gpu_id: str, *, trigger_threshold: float, free_vram: float) -> bool:
        """VRAM_LOCKOUT: value 0, metadata {trigger_threshold, free_vram}."""
        return self.record_vram_lockout(gpu_id, trigger_threshold=trigger_threshold, free_vram=free_vram)

    async def get_aggregated_efficiency(
        self, component: str | None = None, hours: int = 24
    ) -> dict[str, Any]:
        """Calculates token-weighted efficiency scores over the time window (see InferenceStats)."""
        result: dict[str, Any] = await asyncio.to_thread(
            self.query, "aggregated_efficiency", component, hours
        )
        return result

    async def get_60day_statistics(self, component: str | None = None) -> dict[str, Any]:
        """60-day trends; ``model_trends`` ordered by efficiency ascending (best first); ``component``
        keeps one model."""
        result: dict[str, Any] = await asyncio.to_thread(self.query, "statistics_60day", None, component)
        return result

    async def get_telemetry_footprint(self) -> dict[str, Any]:
        """Database footprint; ``table_sizes[0]`` is ``system_telemetry``."""
        result: dict[str, Any] = await asyncio.to_thread(self.query, "footprint")
        return result
