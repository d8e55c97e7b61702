"""The demo service: a small FastAPI app, instrumented by the one line plus ``instrument_app``."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from fastapi import FastAPI, HTTPException


def create_app() -> FastAPI:
    """The app knows nothing of storage: setup() and instrument_app() do all the telemetry."""
    app = FastAPI(title="otel-tele demo arm server")
    joints: dict[int, float] = {joint: 0.0 for joint in range(7)}

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/joints/{joint_id}")
    async def get_joint(joint_id: int) -> dict[str, Any]:
        if joint_id not in joints:
            raise HTTPException(status_code=404, detail="no such joint")
        return {"joint": joint_id, "angle": joints[joint_id]}

    @app.post("/api/command/set-joint")
    async def set_joint(command: dict[str, Any]) -> dict[str, Any]:
        joint, angle = int(command.get("joint", -1)), float(command.get("angle", 0.0))
        if joint not in joints:
            raise HTTPException(status_code=422, detail="joint must be 0..6")
        await asyncio.sleep(random.uniform(0.0005, 0.003))  # the arm acknowledges
        joints[joint] = angle
        return {"ok": True, "joint": joint, "angle": angle}

    return app
