"""The robot-arm page (spec 004): commanded vs actual angle per joint, tracking error, gripper,
camera health, system events and web request latency — all through the robot query API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..robot_query import TelemetryQuery
from ._page import Page, PageError, chart, esc, records, stat, table

JOINTS = range(1, 7)
#: The latest rows a chart shows (and reads): enough for a screen, bounded at any table size.
POINTS = 2000
#: Command/feedback pairs behind the tracking-error summary (the latest ones).
TRACKING_SAMPLES = 300


def _joint(query: Mapping[str, str]) -> int:
    raw = query.get("joint", "1")
    if not raw.isascii() or not raw.isdigit() or int(raw) not in JOINTS:
        raise PageError("joint must be 1 to 6")
    return int(raw)


def page(settings: Any) -> Page:
    db = Path(settings.data_dir) / "telemetry.db"

    def render(query: Mapping[str, str]) -> str:
        joint = _joint(query)
        if not db.is_file():
            return '<p class="note">No robot telemetry yet (no telemetry.db in the data directory).</p>'
        with TelemetryQuery(db) as q:
            summary = q.get_session_summary()
            feedback = list(reversed(q.get_joint_history(joint, limit=POINTS)))
            commands = [
                r for r in reversed(q.get_commands(funcode=1, limit=POINTS)) if r.get("joint_id") == joint
            ]
            tracking = q.get_tracking_error(joint, limit=TRACKING_SAMPLES)
            latency = q.get_web_latency_stats()
            cameras = q.get_camera_health(limit=200)
            events = q.get_system_events(limit=100)
            gripper = list(reversed(q.get_gripper_log(limit=POINTS)))
        parts = ['<div class="stats">']
        for key in ("total_commands", "total_feedback", "total_web_requests", "errors"):
            if key in summary:
                parts.append(
                    stat(key.replace("_", " "), summary[key], bad=key == "errors" and bool(summary[key]))
                )
        parts.append("</div>")
        links = " ".join(
            f'<a href="?joint={j}"{" aria-current=true" if j == joint else ""}>joint {j}</a>' for j in JOINTS
        )
        parts.append(f"<p>{links}</p>")
        # Two series on one time axis: feedback angles and commanded targets (gaps where either is absent).
        xs = sorted({r["ts"] for r in feedback} | {r["ts"] for r in commands})
        actual = {r["ts"]: r.get(f"angle{joint}") for r in feedback}
        target = {r["ts"]: r.get("target_value") for r in commands}
        parts.append(
            chart(
                "joint",
                f"Joint {joint}: commanded vs actual angle",
                xs,
                {"actual": [actual.get(t) for t in xs], "commanded": [target.get(t) for t in xs]},
                x_time=True,
                y_label="degrees",
                marks=[
                    (float(e["ts"]), str(e.get("event_type", ""))) for e in events if e.get("ts") is not None
                ],
            )
        )
        parts.append("<h2>Tracking error</h2>")
        parts.append(
            table(
                ("measure", "value"),
                sorted((k, v) for k, v in tracking.items() if not isinstance(v, list | dict)),
            )
        )
        if gripper:
            xs = [r["ts"] for r in gripper]
            parts.append(
                chart(
                    "gripper",
                    "Gripper position",
                    xs,
                    {
                        "command": [r["position"] if r["source"] == "command" else None for r in gripper],
                        "feedback": [r["position"] if r["source"] == "feedback" else None for r in gripper],
                    },
                    x_time=True,
                )
            )
        parts.append("<h2>Web request latency by endpoint</h2>")
        endpoints = (
            (latency.get("endpoints") or latency.get("by_endpoint") or {})
            if isinstance(latency, dict)
            else {}
        )
        rows = [
            (name, s.get("count"), s.get("mean_ms"), s.get("p50_ms"), s.get("p95_ms"), s.get("p99_ms"))
            for name, s in sorted(endpoints.items())
        ]
        parts.append(table(("endpoint", "count", "mean ms", "p50 ms", "p95 ms", "p99 ms"), rows))
        parts.append("<h2>Camera health</h2>")
        parts.append(records(cameras[:50]))
        parts.append("<h2>System events</h2>")
        parts.append(records(events))
        return "".join(parts)

    return Page("robot", "Robot arm", render, order=10)


__all__ = ["esc", "page"]
