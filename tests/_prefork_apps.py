"""Apps for the pre-fork tests: each calls the one line at import, as a real service would."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import otel_tele

telemetry = otel_tele.setup(service_name="prefork-demo")
tracer = telemetry.tracer("tests.prefork")


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
