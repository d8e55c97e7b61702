"""Toy instrumentation: speaks only otel-tele's public API and the toy vocabulary.

Example::

    import otel_tele
    from toy_tele.instrumentation import ping

    otel_tele.setup(service_name="pinger", sinks=["toy"])
    ping(1, latency_ms=2.5, note="hello")
"""

from __future__ import annotations

import otel_tele

from .semconv import LATENCY_MS, NOTE, OK, PING, SEQ


def ping(
    seq: int,
    *,
    latency_ms: float | None = None,
    note: str | None = None,
    ok: bool = True,
    telemetry: otel_tele.Pipeline | None = None,
) -> bool:
    """Emit one ``toy.ping`` event (a deque append; the telemetry thread types and routes it).

    ``telemetry`` defaults to the global pipeline of ``otel_tele.setup()``; without one nothing is
    recorded and the call returns False (as OTel's API is a no-op before an SDK is installed).
    """
    telemetry = telemetry or otel_tele.get_telemetry()
    if telemetry is None:
        return False
    telemetry.events.emit(PING, {SEQ: seq, LATENCY_MS: latency_ms, NOTE: note, OK: ok})
    return True
