"""The ASGI middleware ``instrument_app`` adds inside the OTel server span of every ``/api/`` request.

It gives the request a correlation id (the caller's ``X-Correlation-ID`` when it is sane, else a new
one), echoes it on the response, and records on the server span what ``web_requests`` needs beyond
the HTTP semantic conventions: the correlation id and the request parameters (query string and JSON
or form body). Secrets in them are scrubbed by the pipeline's scrubber on its exporting thread, not
here on the request's. The SQLite sink turns the span into the row.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from opentelemetry import context as otel_context
from opentelemetry import trace

from otel_tele._internal import guard
from otel_tele._scrub import DEFAULT
from otel_tele.semconv import robot as r
from otel_tele.semconv import to_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = "x-correlation-id"
MAX_BODY_BYTES = 64 * 1024
_CID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "otel_tele_correlation_id", default=None
)


def current_correlation_id() -> str | None:
    """The correlation id of the ``/api/`` request being handled (for ``log_command(..., cid)``)."""
    return _current.get()


def scrub(value: Any) -> Any:
    """A copy of ``value`` with secrets redacted by the default rules of :mod:`otel_tele._scrub`
    (the middleware itself records parameters raw: the pipeline's scrubber cleans them on its
    exporting thread, before any sink or OTLP)."""
    return DEFAULT.structure(value)


def _query_params(scope: Scope) -> dict[str, Any]:
    raw = scope.get("query_string", b"").decode("utf-8", "replace")
    params: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if key in params:  # ?a=1&a=2 → a: ["1", "2"]
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[key] = value
    return params


def _body_params(content_type: str, body: bytes, truncated: bool) -> dict[str, Any]:
    if truncated:
        return {"_body": f"[not recorded: over {MAX_BODY_BYTES} bytes]"}
    if not body:
        return {}
    text = body.decode("utf-8", "replace")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(text, keep_blank_values=True))
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"_body": "[not recorded: invalid JSON]"}
    return parsed if isinstance(parsed, dict) else {"_body": parsed}


class RequestTelemetryMiddleware:
    """Pure ASGI (no response buffering; the body is teed as the app reads it)."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        offered = headers.get(HEADER, "")
        cid = offered if _CID.fullmatch(offered) else os.urandom(6).hex()
        content_type = headers.get("content-type", "").lower()
        record_body = content_type.startswith(("application/json", "application/x-www-form-urlencoded"))
        chunks: list[bytes] = []
        state = {"size": 0, "truncated": False, "recorded": False}
        span = trace.get_current_span()
        span.set_attribute(r.CORRELATION_ID, cid)

        async def tee_receive() -> Message:
            message = await receive()
            if record_body and message.get("type") == "http.request" and not state["truncated"]:
                body = message.get("body", b"")
                state["size"] += len(body)
                if state["size"] > MAX_BODY_BYTES:
                    state["truncated"] = True
                    chunks.clear()
                else:
                    chunks.append(body)
            return message

        def record_params() -> None:
            if state["recorded"]:
                return
            state["recorded"] = True
            with guard("recording request parameters"):
                body = _body_params(content_type, b"".join(chunks), bool(state["truncated"]))
                span.set_attribute(r.PARAMS_JSON, to_json({**_query_params(scope), **body}))

        async def send_with_cid(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-correlation-id", cid.encode())]
            elif kind == "http.response.body" and not message.get("more_body", False):
                record_params()  # the server span ends with the last body message
            await send(message)

        token = _current.set(cid)
        try:
            await self.app(scope, tee_receive, send_with_cid)
        finally:
            _current.reset(token)
            if span.is_recording():
                record_params()


class FreshContext:
    """Outermost wrapper: each HTTP request starts from an empty OTel context.

    uvicorn can hand a keep-alive connection's next request a copy of the previous request's context
    (after a large body, flow control resumes reading from inside the old request's task), and the
    ASGI instrumentation then makes the new request an INTERNAL child of the old, finished span.
    A server request's parent comes from its headers only.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(otel_context.Context())
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
