"""A simulated 6-axis arm with a gripper for the demo, driven through the robot instrumentation.

An operator loop sends joint targets (DDS commands, each with a correlation id) a few times a second;
each joint follows its target with a rate limit and a small lag, reported as angle feedback at 50 Hz
plus a status frame every second; a command smoother ticks at 10 Hz (every 5th tick sampled); two
cameras report health every few seconds; connect/power/enable, a joint-limit warning and a
communication error are system events. Afterwards the summary is what ``otel-tele query summary``,
``tracking`` and ``latency`` print for that data.
"""

from __future__ import annotations

import contextlib
import io
import random
import time
from pathlib import Path
from typing import Any

from otel_tele._pipeline import Pipeline
from otel_tele.instrumentation.robot import CameraHealthReporter, SmootherSampler, TelemetryCollector

from ._commands import command

FEEDBACK_HZ = 50.0
SMOOTHER_HZ = 10.0
MAX_SPEED_DEG_S = 240.0
JOINTS = 7  # 0-5 joints, 6 the gripper (mm)


class _Arm:
    """Joint angles chasing targets: rate-limited, with a little sensor noise."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.angles = [0.0] * JOINTS
        self.targets = [0.0] * JOINTS
        self.sent = [0.0] * JOINTS

    def step(self, dt: float) -> None:
        for j in range(JOINTS):
            error = self.targets[j] - self.angles[j]
            move = max(-MAX_SPEED_DEG_S * dt, min(MAX_SPEED_DEG_S * dt, error * 0.7))
            self.angles[j] += move + self.rng.gauss(0.0, 0.02)
            self.sent[j] += (self.targets[j] - self.sent[j]) * 0.5


class _Camera:
    """A camera health monitor stand-in (the shape of ``CameraHealthMonitor.stats``)."""

    def __init__(self, camera_id: str, fps: float, rng: random.Random) -> None:
        self.camera_id, self.fps, self.rng, self.drops = camera_id, fps, rng, 0

    @property
    def stats(self) -> dict[str, Any]:
        self.drops += self.rng.randint(0, 3)
        actual = self.fps * self.rng.uniform(0.9, 1.0)
        return {
            "camera_id": self.camera_id,
            "connected": True,
            "actual_fps": actual,
            "target_fps": self.fps,
            "drop_count": self.drops,
            "stalled": False,
            "resolution": (1280, 720),
            "motion_score": self.rng.uniform(0.0, 0.3),
        }


def _simulate(tc: TelemetryCollector, seconds: float, rng: random.Random) -> dict[str, int]:
    arm = _Arm(rng)
    cameras = CameraHealthReporter(
        {c.camera_id: c for c in (_Camera("overhead", 30.0, rng), _Camera("wrist", 15.0, rng))},
        tc,
        interval_s=min(5.0, max(0.5, seconds / 4)),
    )
    smoother = SmootherSampler(tc)
    counts = {"commands": 0, "feedback": 0, "ticks": 0}
    tc.log_system_event("connect", "dds", "connected to arm on eth0")
    tc.log_system_event("power_on", "web", "operator powered the arm")
    tc.log_system_event("enable", "web", "motors enabled")
    start = now = time.monotonic()
    next_feedback = next_tick = next_command = next_status = start
    seq = 0
    while now - start < seconds:
        if now >= next_command:
            joint = rng.randrange(JOINTS)
            target = rng.uniform(0, 60) if joint == 6 else rng.uniform(-90, 90)
            arm.targets[joint] = target
            cid = tc.new_correlation_id()
            seq += 1
            tc.log_command(seq, 1, joint, round(target, 2), {"id": joint, "angle": round(target, 2)}, cid, 48)
            counts["commands"] += 1
            if abs(target) > 85:
                tc.log_system_event(
                    "joint_limit",
                    "smoother",
                    f"joint {joint} near its limit",
                    {"target": target},
                    cid,
                    "warning",
                )
            next_command += rng.uniform(0.15, 0.4)
        if now >= next_tick:
            arm.step(1.0 / SMOOTHER_HZ)
            smoother.tick(
                lambda: [
                    {
                        "joint_id": j,
                        "target": arm.targets[j],
                        "current": arm.angles[j],
                        "sent": arm.sent[j],
                        "step_size": MAX_SPEED_DEG_S / SMOOTHER_HZ,
                        "dirty": abs(arm.targets[j] - arm.angles[j]) > 0.05,
                    }
                    for j in range(JOINTS)
                ]
            )
            counts["ticks"] += 1
            cameras.poll(now)
            next_tick += 1.0 / SMOOTHER_HZ
        if now >= next_feedback:
            tc.log_feedback(seq, 1, [round(a, 3) for a in arm.angles], None)
            counts["feedback"] += 1
            next_feedback += 1.0 / FEEDBACK_HZ
        if now >= next_status:
            tc.log_feedback(
                seq,
                3,
                None,
                {
                    "power_status": 1,
                    "enable_status": 1,
                    "error_status": 0,
                    "recv_status": 1,
                    "exec_status": int(
                        any(abs(t - a) > 1 for t, a in zip(arm.targets, arm.angles, strict=True))
                    ),
                },
            )
            next_status += 1.0
        time.sleep(max(0.0, min(next_feedback, next_tick, next_command) - time.monotonic()))
        now = time.monotonic()
    tc.log_system_event(
        "error", "dds", "feedback frame checksum mismatch (simulated)", {"seq": seq}, None, "error"
    )
    tc.log_system_event("disable", "web", "motors disabled")
    tc.log_system_event("disconnect", "dds", "arm disconnected")
    counts["camera_snapshots"] = cameras.snapshots
    return counts


def _cli(db: Path, *command: str) -> list[str]:
    from otel_tele.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["query", "--db", str(db), *command])
    return out.getvalue().rstrip().splitlines()


def run(telemetry: Pipeline, data_dir: Path, *, seconds: float) -> list[str]:
    """Drive the simulated arm for about ``seconds``; return what the query CLI says about it."""
    tc = TelemetryCollector(telemetry=telemetry)
    counts = _simulate(tc, max(0.5, seconds), random.Random(4))
    tc.flush()
    db = tc.db_path or Path(data_dir) / "telemetry.db"
    lines = [
        f"simulated arm: {counts['commands']} commands, {counts['feedback']} feedback frames at "
        f"{FEEDBACK_HZ:g} Hz, {counts['ticks']} smoother ticks, "
        f"{counts['camera_snapshots']} camera snapshots -> {db}"
    ]
    if not Path(db).exists():
        return [*lines, "(no SQLite sink attached: nothing to query)"]
    from otel_tele.robot_query import TelemetryQuery

    with TelemetryQuery(db) as q:
        joints = [c["joint_id"] for c in q.get_commands(limit=10_000, funcode=1) if c["joint_id"] is not None]
    commanded = max(set(joints), key=joints.count, default=0)  # the busiest joint
    for args in (["summary"], ["tracking", "--joint", str(commanded)], ["latency"]):
        lines += [command("query", *args, "--db", Path(db)), *_cli(db, *args)]
    return lines
