"""Toy vocabulary: one event, ``toy.ping``, with typed attributes, and the counter it feeds."""

from otel_tele.semconv import Attr, AttrType, Event, Metric

# Attribute keys
SEQ = "toy.seq"
LATENCY_MS = "toy.latency_ms"
NOTE = "toy.note"
OK = "toy.ok"

# Event names
PING = "toy.ping"

EVENTS: tuple[Event, ...] = (
    Event(
        PING,
        (
            Attr(SEQ, AttrType.INT, doc="sequence number of the ping (required)"),
            Attr(LATENCY_MS, AttrType.FLOAT, "ms"),
            Attr(NOTE, AttrType.STR),
            Attr(OK, AttrType.BOOL),
        ),
        doc="one ping of the toy domain",
    ),
)

METRICS: tuple[Metric, ...] = (Metric("toy.pings", "counter", "{ping}", "pings emitted", PING, labels=(OK,)),)
