"""Shared by the robot tests: a real uvicorn server in a thread, pipelines, and row reads."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

import otel_tele
from otel_tele import Telemetry

TABLES = ("dds_commands", "dds_feedback", "smoother_state", "web_requests", "camera_health", "system_events")


class UvicornThread:
    """uvicorn serving ``app`` on 127.0.0.1:``port`` until the ``with`` block ends (stopped by handle)."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), what="uvicorn start")
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "uvicorn did not stop"


def wait_for(condition: Callable[[], Any], *, timeout_s: float = 20.0, what: str = "condition") -> Any:
    """Poll ``condition`` until truthy (an event we wait on, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def sqlite_pipeline(data_dir: Path, **options: Any) -> Telemetry:
    """A private pipeline whose only sink is SQLite under ``data_dir``."""
    return otel_tele.setup(
        local=True,
        sinks=["sqlite"],
        data_dir=data_dir,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
        **options,
    )


def rows(db: Path, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()


def count(db: Path, table: str) -> int:
    if not Path(db).exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:  # the sink has created the file but not yet its schema
            return 0


def wait_rows(telemetry: Any, db: Path, table: str, expected: int) -> int:
    """Flush until ``table`` holds ``expected`` rows. A server span ends just *after* the response's
    last byte is sent, so the client can see the response before the span is queued."""

    def ready() -> bool:
        telemetry.force_flush(10_000)
        return count(db, table) >= expected

    wait_for(ready, what=f"{expected} rows in {table}")
    return count(db, table)
