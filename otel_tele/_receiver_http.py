"""``otel-tele serve``'s OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/logs``, ``/v1/metrics``.

Binary protobuf (``application/x-protobuf``) and JSON (``application/json``) bodies, optionally
``Content-Encoding: gzip``; the response is in the request's encoding. Status codes follow the OTLP
specification: 200 (with a partial success naming what was refused), 400 for a body that does not
decode, 413 past the size limit, 415 for another content type or encoding, 429 with
``Retry-After`` while the decoding budget is spent (shared with OTLP/gRPC), 503 with ``Retry-After``
when the sinks' queues stayed full. Access is ``serve``'s: the Host allow-list, with a token
``Authorization: Bearer <token>`` on every request, and CORS (a browser SDK's preflight and
``Access-Control-Allow-Origin``) only for the ``--cors-origin`` origins.

Example::

    import otel_tele
    from otel_tele._receiver import OtlpIngest
    from otel_tele._receiver_http import OtlpHttpApp

    telemetry = otel_tele.setup(local=True, sinks="none", traces_exporter="none",
                                logs_exporter="none", metrics_exporter="none")
    app = OtlpHttpApp(OtlpIngest(telemetry))   # an ASGI app: serve it with uvicorn
    telemetry.shutdown(5_000)
"""

from __future__ import annotations

import asyncio
import zlib

from google.protobuf import message
from google.rpc import status_pb2

from ._http_guard import Access
from ._http_limits import Receive, Scope, Send, header_map
from ._otlp_json import parse_json, to_json
from ._receiver import BUDGET_FULL, REQUESTS, RETRY_AFTER_S, OtlpIngest, Outcome

PATHS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: The answer to a browser's CORS preflight from an allowed origin.
_PREFLIGHT = (
    (b"access-control-allow-methods", b"POST"),
    (b"access-control-allow-headers", b"authorization, content-type, content-encoding"),
    (b"access-control-max-age", b"600"),
)


class HttpRefusal(Exception):
    """A request answered with ``status`` and a ``google.rpc.Status`` carrying ``text``."""

    def __init__(self, status: int, text: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers


def _retry(status: int, text: str, seconds: int) -> HttpRefusal:
    return HttpRefusal(status, text, ((b"retry-after", str(seconds).encode()),))


class OtlpHttpApp:
    """The ASGI app of the OTLP/HTTP receiver (``access`` default: loopback Host names, no token)."""

    def __init__(self, ingest: OtlpIngest, access: Access | None = None) -> None:
        self.ingest = ingest
        self.access = access or Access()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return
        headers = header_map(scope)
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        as_json = content_type == JSON
        origin = headers.get("origin", "")
        cors: tuple[tuple[bytes, bytes], ...] = ()
        if origin and origin in self.access.cors_origins:  # a browser SDK's page, allowed by --cors-origin
            cors = ((b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"))
            if str(scope.get("method", "")).upper() == "OPTIONS" and self.access.host_allowed(
                headers.get("host")
            ):
                await _send(send, 204, b"", as_json, (*cors, *_PREFLIGHT))
                return
        try:
            signal, admitted = self._check(scope, headers, content_type)
            outcome = await self._export(signal, receive, headers, as_json, admitted)
        except HttpRefusal as refusal:
            body = _status_body(refusal.text, as_json)
            await _send(send, refusal.status, body, as_json, (*refusal.headers, *cors))
            return
        reply = self.ingest.response(signal, outcome)
        await _send(send, 200, to_json(reply) if as_json else reply.SerializeToString(), as_json, cors)

    def _check(self, scope: Scope, headers: dict[str, str], content_type: str) -> tuple[str, int]:
        """Refusals that need no body, in the order a client can fix them; the signal and the
        declared size taken from the budget."""
        if not self.access.host_allowed(headers.get("host")):
            raise HttpRefusal(421, "this Host is not served here")
        if self.access.token is not None and not self.access.authorized(headers.get("authorization")):
            raise HttpRefusal(401, "a valid bearer token is required", ((b"www-authenticate", b"Bearer"),))
        signal = PATHS.get(str(scope.get("path", "")))
        if signal is None:
            raise HttpRefusal(404, "OTLP/HTTP paths are /v1/traces, /v1/logs and /v1/metrics")
        if str(scope.get("method", "")).upper() != "POST":
            raise HttpRefusal(405, "OTLP/HTTP takes POST", ((b"allow", b"POST"),))
        if content_type not in (PROTOBUF, JSON):
            raise HttpRefusal(415, f"Content-Type must be {PROTOBUF} or {JSON}")
        if headers.get("content-encoding", "identity").strip().lower() not in ("identity", "gzip"):
            raise HttpRefusal(415, "Content-Encoding must be gzip or none")
        declared = headers.get("content-length", "").strip()
        size = int(declared) if declared.isascii() and declared.isdigit() and len(declared) < 19 else 0
        if size > self.ingest.max_message_bytes:
            raise _too_large(self.ingest.max_message_bytes)
        if size and not self.ingest.budget.try_take(size):  # before the body is read
            raise _retry(429, BUDGET_FULL, RETRY_AFTER_S["budget"])
        return signal, size

    async def _export(
        self, signal: str, receive: Receive, headers: dict[str, str], as_json: bool, admitted: int
    ) -> Outcome:
        """Read, inflate, decode and ingest the body, holding its size in the budget throughout."""
        budget = self.ingest.budget
        try:
            body = await _read_body(receive, self.ingest.max_message_bytes)
            if headers.get("content-encoding", "").strip().lower() == "gzip":
                body = _gunzip(body, self.ingest.max_message_bytes)
            extra = len(body) - admitted  # beyond the declared wire size: chunked, or inflated
            if extra > 0:
                if not budget.try_take(extra):
                    raise _retry(429, BUDGET_FULL, RETRY_AFTER_S["budget"])
                admitted += extra
            # Decoding and the overload wait block: off the event loop.
            outcome = await asyncio.to_thread(self._decode_and_ingest, signal, body, as_json)
        finally:
            budget.give_back(admitted)
        if outcome.retry:
            raise _retry(503, outcome.message, RETRY_AFTER_S["queues"])
        return outcome

    def _decode_and_ingest(self, signal: str, body: bytes, as_json: bool) -> Outcome:
        request_class = REQUESTS[signal]
        key = self.ingest.key(signal, body)  # a retry repeats these bytes
        reasons: list[str] = []
        failed = 0
        try:
            if as_json:
                request, failed = parse_json(request_class, body, reasons)
            else:
                request = self.ingest.parse(signal, body)
        except (message.DecodeError, ValueError) as exc:
            encoding = "JSON" if as_json else "protobuf"
            raise HttpRefusal(400, f"not a valid OTLP {encoding} request ({exc})") from None
        del body
        return self.ingest.ingest(signal, request, failed, reasons, key=key)


def _too_large(limit: int) -> HttpRefusal:
    return HttpRefusal(413, f"an OTLP request may be at most {limit} bytes")


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        event = await receive()
        if event.get("type") == "http.disconnect":
            raise HttpRefusal(400, "the client went away before the body was complete")
        chunk = event.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    """The gzip ``body`` inflated, refusing past ``limit`` bytes before they exist (a zip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit:
            raise _too_large(limit)
        out += inflater.flush()
    except zlib.error:
        raise HttpRefusal(400, "the body is not valid gzip") from None
    if not inflater.eof or len(out) > limit:
        raise HttpRefusal(400, "the gzip body is truncated") if not inflater.eof else _too_large(limit)
    return out


def _status_body(text: str, as_json: bool) -> bytes:
    status = status_pb2.Status(message=text)
    return to_json(status) if as_json else status.SerializeToString()


async def _send(
    send: Send, status: int, body: bytes, as_json: bool, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", (JSON if as_json else PROTOBUF).encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
