"""The README's main job: a FastAPI service set up with the one line, driven by traffic, plus one
simulated workload per domain (robot arm, solver, model serving, queueing), then a report of where
the telemetry landed and what ``/metrics`` says.

    python -m otel_tele.demo --seconds 5 --data-dir ./demo-output
"""

from ._runner import main

__all__ = ["main"]
