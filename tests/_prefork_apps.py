"""Apps for the pre-fork tests: each calls the one line at import, as a real service would."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import otel_tele

telemetry = otel_tele.setup(service_name="prefork-demo")
tracer = telemetry.tracer("tests.prefork")


def _busy_master() -> None:
    """The master keeps exporting while gunicorn forks workers from it (PREFORK_BUSY_MASTER=1)."""
    n = 0
    while True:
        n += 1
        telemetry.events.emit(
            "robot.system.event", {"robot.system.event_type": "master", "robot.correlation_id": f"m{n}"}
        )
        if n % 64 == 0:
            time.sleep(0.001)  # a steady stream, not a burst that fills the queue


if os.environ.get("PREFORK_BUSY_MASTER") == "1":
    threading.Thread(target=_busy_master, name="busy-master", daemon=True).start()


def _work() -> bytes:
    with tracer.start_as_current_span("work") as span:
        span.set_attribute("worker.pid", os.getpid())
        telemetry.events.emit(
            "robot.system.event", {"robot.system.event_type": "request", "worker.pid": os.getpid()}
        )
    return str(os.getpid()).encode()


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """For gunicorn --preload: setup() ran in the master before the workers were forked."""
    body = _work()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """For uvicorn --workers N (each worker process imports this module)."""
    if scope["type"] != "http":
        return
    body = _work()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def wsgi_sink_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Each request stores one robot system event carrying its id and the worker's pid."""
    request_id = environ.get("QUERY_STRING", "")
    telemetry.events.emit(
        "robot.system.event",
        {
            "robot.system.event_type": "request",
            "robot.correlation_id": request_id,
            "robot.source": f"worker-{os.getpid()}",
        },
    )
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
