"""The live tail: log records and events as they pass the pipeline, pushed to browsers as
server-sent events. A view, not a sink: it stores nothing, and with no browser watching its
processor returns at once (one attribute test per record)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .._internal import guard
from ._page import Page

#: Lines a slow browser may fall behind before the oldest are skipped (its view, not the store).
SUBSCRIBER_BUFFER = 1000


def _line(record: Any) -> str:
    """One record as a short JSON line: time, severity, event name or body, a few attributes."""
    inner = getattr(record, "log_record", record)
    attributes = dict(getattr(inner, "attributes", None) or {})
    name = getattr(inner, "event_name", None) or attributes.pop("event.name", None)
    body = getattr(inner, "body", None)
    ts = getattr(inner, "timestamp", None) or getattr(inner, "observed_timestamp", None) or time.time_ns()
    shown = {
        k: (v if isinstance(v, int | float | bool) else str(v)[:120]) for k, v in list(attributes.items())[:8]
    }
    return json.dumps(
        {
            "time": time.strftime("%H:%M:%S", time.localtime(ts / 1e9)),
            "severity": getattr(inner, "severity_text", None),
            "name": name,
            "body": None if body is None else str(body)[:200],
            "attributes": shown,
        },
        default=str,
    )


class LiveTail:
    """A log-record processor fanning records out to subscribed event loops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = []

    # -- LogRecordProcessor ------------------------------------------------------------------------
    def on_emit(self, log_record: Any) -> None:
        if self._subscribers:
            self._publish([log_record])

    def on_emit_batch(self, records: list[Any], domain: str | None = None) -> int:
        if self._subscribers:
            self._publish(records)
        return 0

    def shutdown(self) -> None:
        with self._lock:
            self._subscribers.clear()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    # -- fan-out ---------------------------------------------------------------------------------
    def _publish(self, records: list[Any]) -> None:
        with guard("live tail"):
            lines = [_line(record) for record in records[-SUBSCRIBER_BUFFER:]]
            with self._lock:
                subscribers = list(self._subscribers)
            for loop, queue in subscribers:
                for line in lines:
                    loop.call_soon_threadsafe(_offer, queue, line)

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events for one browser until it goes away."""
        queue: asyncio.Queue[str] = asyncio.Queue(SUBSCRIBER_BUFFER)
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.append(entry)
        try:
            yield "event: ready\ndata: {}\n\n"  # subscribed: what is emitted from now on arrives
            while True:
                try:
                    line = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"  # lets a proxy and the browser notice a dead connection
                    continue
                yield f"data: {line}\n\n"
        finally:
            with self._lock:
                self._subscribers.remove(entry)


def _offer(queue: asyncio.Queue[str], line: str) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(line)


def tail_page(telemetry: Any) -> Page:
    def render(_query: Mapping[str, str]) -> str:
        if telemetry is None:
            return '<p class="note">The live tail needs a pipeline: <code>otel-tele serve --http</code>.</p>'
        return (
            '<p class="note">Log records and events as they arrive (newest first).</p>'
            '<ol class="tail" data-tail="/ui/tail/stream" reversed></ol>'
        )

    return Page("tail", "Live tail", render, order=5)
