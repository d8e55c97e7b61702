"""The demo's simulated model serving runs, stores its events and prints the efficiency ranking."""

from __future__ import annotations

from pathlib import Path

import otel_tele
from otel_tele.demo import _serving


def test_serving_demo_prints_the_ranking(tmp_path: Path) -> None:
    """A short run ranks the simulated models, fastest per token first."""
    telemetry = otel_tele.setup(
        local=True,
        sinks=["postgres"],
        data_dir=tmp_path,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    try:
        lines = _serving.run(telemetry, tmp_path, seconds=1.5)
    finally:
        telemetry.shutdown(10_000)
    text = "\n".join(lines)
    assert "efficiency ranking" in text and "stored in sqlite" in text
    ranked = [line.split()[1] for line in lines if line.strip()[:1].isdigit()]
    speeds = {m.name: m.ms_per_token for m in _serving.MODELS}
    assert len(ranked) >= 2 and ranked == sorted(ranked, key=speeds.__getitem__)
    assert (tmp_path / "inference.db").exists()


def test_serving_demo_without_the_sink_says_so(tmp_path: Path) -> None:
    """Without the postgres sink the demo still runs and explains where the ranking would come from."""
    telemetry = otel_tele.setup(
        local=True,
        sinks="none",
        data_dir=tmp_path,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    try:
        lines = _serving.run(telemetry, tmp_path, seconds=0.2)
    finally:
        telemetry.shutdown(10_000)
    assert "enable the postgres sink" in lines[0]
