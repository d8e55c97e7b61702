"""Limits an HTTP client cannot drive past: body size, JSON depth, ASCII-only integers.

Used by the routers themselves (so they hold in any app that mounts them) and by ``otel-tele
serve``'s app, which also caps every request body with :class:`BodyLimit`.

Example::

    from otel_tele._http_limits import ascii_int

    assert ascii_int("10", low=1, high=100) == 10
    assert ascii_int("\u0661\u0660", low=1, high=100) is None   # Arabic-Indic digits: not here
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Default cap of one request body on every route ``otel-tele serve`` mounts.
MAX_BODY_BYTES = 1024 * 1024
#: JSON request bodies nest no deeper than this.
MAX_JSON_DEPTH = 32
_ASCII_INT = re.compile(r"[0-9]{1,18}")


def header_map(scope: Scope) -> dict[str, str]:
    """An ASGI request's headers by lower-case name (the last of repeated ones)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


class BodyTooLarge(ValueError):
    """A 413: the body is over its limit (the message names the limit, nothing else)."""


class MalformedBody(ValueError):
    """A 400: the body is not what the route takes."""


def ascii_int(raw: str, *, low: int, high: int) -> int | None:
    """``raw`` as an integer in ``[low, high]`` when it is 1-18 ASCII digits; else ``None``
    (``str.isdigit`` accepts superscript and Arabic-Indic digits; ``int`` accepts the latter)."""
    if not isinstance(raw, str) or not _ASCII_INT.fullmatch(raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None


async def read_body(receive_stream: Any, headers: Any, limit: int) -> bytes:
    """The whole body from ``request.stream()``, refusing (before reading it all) one over ``limit``."""
    declared = headers.get("content-length")
    if declared is not None:
        size = ascii_int(declared.strip(), low=0, high=2**62)
        if size is None:
            raise MalformedBody("Content-Length is not a number.")
        if size > limit:
            raise BodyTooLarge(f"Request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in receive_stream:
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(f"Request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def load_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON body whose arrays/objects nest at most ``max_depth`` deep; else MalformedBody."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise MalformedBody(f"Request body nests deeper than {max_depth} levels.") from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedBody("Request body must be a JSON object.") from None
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:  # iterative: a deep document must not exhaust the stack here either
        item, depth = level.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise MalformedBody(f"Request body nests deeper than {max_depth} levels.")
            children = item.values() if isinstance(item, dict) else item
            level.extend((child, depth + 1) for child in children)
    return value


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before the app sees it.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted as
    it arrives and, past the limit, the app's next ``receive()`` is answered with a disconnect while
    the client gets the 413.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = header_map(scope)
        declared = headers.get("content-length")
        if declared is not None:
            size = ascii_int(declared.strip(), low=0, high=2**62)
            if size is None:
                await reply(send, 400, {"detail": "Content-Length is not a number."})
                return
            if size > self.limit:
                await reply(send, 413, {"detail": f"Request body is larger than {self.limit} bytes."})
                return
        state = {"received": 0, "refused": False, "started": False}

        async def counted_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.limit:
                    state["refused"] = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # the 413 below is the response
            if message.get("type") == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)
        if state["refused"] and not state["started"]:
            await reply(send, 413, {"detail": f"Request body is larger than {self.limit} bytes."})


async def reply(
    send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Send a whole JSON response."""
    data = json.dumps(body).encode()
    length = str(len(data)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", length), *headers],
        }
    )
    await send({"type": "http.response.body", "body": data})
