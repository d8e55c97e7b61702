"""How a queued event holds its context. Emitted inside a span while the row route is on, it queues
that span packed in an int (``_events._span_int``): the queued dict stays untracked by the garbage
collector (a burst's backlog is not walked by every full collection), and a record made of it later
carries the same span. The current context is read as the API reads it (``_events._get_context``)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.context.context import _RuntimeContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from otel_tele import _events

from ._consumers import Seen, capsule_only


def _in_span(span_context: SpanContext, base: Context | None = None) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(span_context), base or Context())


REMOTE = SpanContext(
    trace_id=(1 << 128) - 1, span_id=(1 << 64) - 1, is_remote=True, trace_flags=TraceFlags(0xFF)
)
LOCAL = SpanContext(trace_id=0x1234, span_id=0x99, is_remote=False, trace_flags=TraceFlags(1))


@pytest.mark.parametrize("span_context", [REMOTE, LOCAL], ids=["remote-extremes", "local"])
def test_a_packed_span_becomes_the_same_span_context(span_context: SpanContext, tmp_path: Path) -> None:
    packed = _events._span_int(_in_span(span_context))
    assert type(packed) is int
    telemetry = capsule_only(tmp_path)
    try:
        item: dict[str, Any] = {
            "iter": 1,
            _events._TS_KEY: 1_700_000_000_000_000_000,
            _events._NAME_KEY: "fda.iteration",
            _events._SPAN_KEY: packed,
        }
        (record,) = telemetry.events._records([item])
    finally:
        telemetry.shutdown(10_000)
    assert (record.trace_id, record.span_id, record.trace_flags) == (
        span_context.trace_id,
        span_context.span_id,
        span_context.trace_flags,
    )
    assert trace.get_current_span(record.context).get_span_context() == span_context
    assert dict(record.attributes) == {"iter": 1}  # the key is the queue's, never an attribute


def test_a_context_holding_more_than_its_span_is_kept_whole() -> None:
    assert _events._span_int(_in_span(LOCAL, baggage.set_baggage("tenant", "a"))) is None
    stated = SpanContext(LOCAL.trace_id, LOCAL.span_id, False, LOCAL.trace_flags, TraceState([("k", "v")]))
    assert _events._span_int(_in_span(stated)) is None
    assert _events._span_int(baggage.set_baggage("tenant", "a", Context())) is None


def test_queued_inside_a_span_untracked_with_the_route_on_whole_context_without(tmp_path: Path) -> None:
    telemetry = capsule_only(tmp_path / "rows")
    tracer = TracerProvider().get_tracer("test")
    try:
        telemetry.events.emit("fda.iteration", {"iter": 0})
        assert telemetry.events.force_flush(10_000)  # a batch ran: the route looked, and is on
        with tracer.start_as_current_span("run"):
            queued: dict[str, Any] = {"iter": 1, "fda.run_id": "fda_run_x"}
            telemetry.events.emit("fda.iteration", queued)
            assert type(queued.get(_events._SPAN_KEY)) is int
            assert not gc.is_tracked(queued)
        assert telemetry.events.force_flush(10_000)
        assert _events._SPAN_KEY not in queued  # taken out before the sink saw the row
        seen = Seen()
        telemetry.logger_provider.add_log_record_processor(seen)
        telemetry.events.emit("fda.iteration", {"iter": 2})
        assert telemetry.events.force_flush(10_000)  # the route looked again: off
        with tracer.start_as_current_span("run") as span:
            ctx = otel_context.get_current()
            kept: dict[str, Any] = {"iter": 3}
            telemetry.events.emit("fda.iteration", kept)
            assert _events._SPAN_KEY not in kept and _events._NAME_KEY not in kept  # queued with ctx
        assert telemetry.events.force_flush(10_000)
        (record,) = [r.log_record for r in seen.records if r.log_record.attributes.get("iter") == 3]
        assert record.context is ctx and record.span_id == span.get_span_context().span_id
    finally:
        telemetry.shutdown(10_000)


class _OtherRuntime(_RuntimeContext):
    """A runtime context other than the API's default (what ``OTEL_PYTHON_CONTEXT`` can select)."""

    def __init__(self) -> None:
        self.current = Context()

    def attach(self, context: Context) -> object:
        previous, self.current = self.current, context
        return previous

    def get_current(self) -> Context:
        return self.current

    def detach(self, token: object) -> None:
        self.current = token  # type: ignore[assignment]


def test_the_current_context_is_read_as_the_api_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    read = _events._get_context
    assert read() is otel_context.get_current()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("outer"):
        token = otel_context.attach(baggage.set_baggage("tenant", "a"))
        try:
            assert read() is otel_context.get_current() and read()
        finally:
            otel_context.detach(token)
    other = _OtherRuntime()
    monkeypatch.setattr(otel_context, "_RUNTIME_CONTEXT", other)
    getter = _events._context_getter()
    assert getter is otel_context.get_current  # another runtime context: through the API
    other.attach(baggage.set_baggage("tenant", "b", Context()))
    assert getter() is other.current
