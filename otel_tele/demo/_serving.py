"""Simulated model serving for the demo: several models with different speeds, loads and inferences.

Each model has a load time and a per-token speed; requests pick a model, load it if it is not the
one in "VRAM", and generate a random number of tokens, each step timed by the real timers
(``load_timer`` / ``thought_timer``) with sleeps scaled so a few seconds show a clear ranking.
"""

from __future__ import annotations

import pathlib
import random
import time
from dataclasses import dataclass

from otel_tele._pipeline import Pipeline
from otel_tele.cli._output import print_table
from otel_tele.instrumentation.inference import TelemetryLogger


@dataclass(frozen=True)
class SimulatedModel:
    name: str
    load_seconds: float  # time to load into VRAM (scaled)
    ms_per_token: float  # generation speed (scaled)
    vram_mb: int


MODELS: tuple[SimulatedModel, ...] = (
    SimulatedModel("llama3.2:3b", 0.05, 0.15, 3_000),
    SimulatedModel("gemma2:9b", 0.09, 0.35, 9_000),
    SimulatedModel("qwen2.5:14b", 0.12, 0.55, 14_000),
    SimulatedModel("gemma2:27b", 0.20, 0.90, 22_000),
)
GPU = "gpu0"
GPU_TOTAL_MB = 24_000


def _simulate(logger: TelemetryLogger, rng: random.Random, seconds: float) -> int:
    loaded: SimulatedModel | None = None
    deadline = time.monotonic() + seconds
    requests = 0
    while time.monotonic() < deadline:
        model = rng.choices(MODELS, weights=(4, 3, 2, 2))[0]
        if model is not loaded:
            with logger.load_timer(model.name):
                time.sleep(model.load_seconds * rng.uniform(0.9, 1.2))
            loaded = model
            free = GPU_TOTAL_MB - model.vram_mb
            logger.record_vram_check(GPU, free, used_mb=model.vram_mb, total_mb=GPU_TOTAL_MB)
            if free < 2_500:
                logger.record_vram_lockout(GPU, trigger_threshold=2_500, free_vram=free)
        tokens, prompt = rng.randint(20, 240), rng.randint(10, 400)
        with logger.thought_timer(model.name) as timer:
            time.sleep(tokens * model.ms_per_token * rng.uniform(0.85, 1.15) / 1000)
            timer.tokens(generated=tokens, prompt=prompt)
        requests += 1
    return requests


def run(telemetry: Pipeline, data_dir: pathlib.Path, *, seconds: float) -> list[str]:
    """Drive the simulation for about ``seconds``; return the efficiency ranking as printable lines."""
    import io

    logger = TelemetryLogger(telemetry, provider="ollama")
    requests = _simulate(logger, random.Random(2), seconds)
    if "postgres" not in telemetry.sinks:
        return [
            f"model serving: {requests} simulated requests (enable the postgres sink to store and rank them)"
        ]
    efficiency = logger.query("aggregated_efficiency", None, 24)
    footprint = logger.query("footprint")
    from otel_tele.cli._inference import ranking_rows

    table = io.StringIO()
    print_table(
        ranking_rows(efficiency),
        ["rank", "model", "inferences", "tokens", "ms/token (weighted)", "tokens/s"],
        out=table,
    )
    loads = {entry["model"]: entry["mean_load_seconds"] for entry in efficiency["load_latency"]}
    lines = [
        f"model serving: {requests} simulated requests over {len(MODELS)} models, stored in "
        f"{footprint['backend']} ({footprint['row_count']} rows, {footprint['total_size_bytes']:,} bytes)",
        "efficiency ranking (ms per generated token, token-weighted; lower is better):",
        *table.getvalue().rstrip("\n").splitlines(),
    ]
    if efficiency["models"]:
        best = efficiency["models"][0]
        lines.append(
            f"best model: {best['model']} at {best['weighted_efficiency_ms_per_token']:.3f} ms/token; "
            f"mean load {loads.get(best['model']) or 0:.3f} s"
        )
    return lines
