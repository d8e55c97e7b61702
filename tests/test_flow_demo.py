"""The demo's queueing simulation writes a valid capture bundle and lists it."""

from __future__ import annotations

from pathlib import Path

from otel_tele import bundles, testing
from otel_tele.demo import _queueing


def test_queueing_demo_writes_and_lists_its_bundle(tmp_path: Path) -> None:
    """A short run yields a complete 12-bin bundle whose totals match the summary lines."""
    with testing.capture() as cap:
        lines = _queueing.run(cap.telemetry, tmp_path, seconds=0.05)
        cap.flush()
        live_arrivals = cap.metric_value("flow.arrivals", **{"flow.node": "OrderService"})
    directories = sorted((tmp_path / "captures").iterdir())
    assert len(directories) == 1 and str(directories[0]) in lines[0]
    bundle = bundles.read_bundle(directories[0])
    assert bundle.grid is not None and bundle.grid.bins == 12 and bundle.warnings == []
    arrivals = bundle.get("OrderService", "Arrivals").values
    assert all(v is not None for v in arrivals)
    assert f"arrivals {sum(v for v in arrivals if v is not None):>4.0f}" in lines[2]
    assert live_arrivals == sum(v for v in arrivals if v is not None)  # the demo pipeline saw the same flow
    assert bundle.manifest["classCoverage"] == "full" and "Gateway_arrivals_Retail.csv" in lines[-1]
