"""``otel-tele serve``'s OTLP/gRPC receiver (and :class:`OtlpIngest`, the half it shares with the
OTLP/HTTP receiver in ``_receiver_http``): OTLP from any language or collector → our sinks.

Decoded records enter the same processors that records from this process enter, so the sinks'
mapping, batching and accounting apply unchanged.

Memory has a ceiling. A request's wire size is admitted against a budget *before* it is parsed
(in the gRPC deserializer): while the requests being decoded hold ``max_inflight_bytes`` of wire
bytes, the next one is answered ``RESOURCE_EXHAUSTED`` (HTTP: 429) and the client retries it
later (OTLP exporters and collectors do). One request may be at most ``max_message_bytes``. Parsing and
decoding expand wire bytes up to ~33 times (measured by ``python -m bench.bench_receiver_memory``
on minimal log records, the worst case: 5.4 MB of wire bytes grew the process by ~180 MB), so
decoding holds at most about ``33 x max_inflight_bytes`` (~530 MB at the 16 MiB default), plus the
sinks' bounded queues.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from . import _otlp_decode as decode
from . import _otlp_raw
from ._internal import fork_safe, guard
from ._otlp_columns import ColumnRoute
from ._otlp_dedup import RecentRequests, digest
from ._pipeline import Pipeline
from ._registry import WAIT
from ._sink import count_points
from ._stats import SinkStats

_log = logging.getLogger("otel_tele")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_INFLIGHT_BYTES = 16 * 1024 * 1024
#: (signal, gRPC service, request class, response class) of the three OTLP services.
SERVICES: tuple[tuple[str, str, Any, Any], ...] = (
    (
        "traces",
        "opentelemetry.proto.collector.trace.v1.TraceService",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    (
        "metrics",
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    (
        "logs",
        "opentelemetry.proto.collector.logs.v1.LogsService",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
)
#: The OTLP partial-success field that tells a sender how many of its records were refused.
REJECTED_FIELD = {
    "traces": "rejected_spans",
    "logs": "rejected_log_records",
    "metrics": "rejected_data_points",
}
#: What a retryable refusal asks the sender to wait (gRPC RetryInfo, HTTP Retry-After), seconds.
RETRY_AFTER_S = {"budget": 1, "queues": 5}


BUDGET_FULL = "otel-tele serve is decoding as much as its memory budget allows; retry later"
RESPONSES = {signal: response for signal, _service, _request, response in SERVICES}
REQUESTS = {signal: request for signal, _service, request, _response in SERVICES}


class ByteBudget:
    """Wire bytes of the requests being decoded; ``try_take`` never waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.refused = 0
        self._lock = fork_safe(threading.Lock())

    def try_take(self, size: int) -> bool:
        with self._lock:
            if self.used + size > self.limit:
                self.refused += 1
                return False
            self.used += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self.used -= size


@dataclass
class _Admitted:
    request: Any
    size: int
    key: bytes | None = None  # the request's digest, when re-sent requests are recognised


@dataclass
class _Refused:
    status: Any  # grpc.StatusCode
    message: str


@dataclass(frozen=True)
class Outcome:
    """What became of one request's records: ``rejected`` were refused (``message`` says why) and
    the rest taken; ``retry``: nothing was taken because the queues stayed full, send it again."""

    rejected: int = 0
    message: str = ""
    retry: bool = False


class OtlpIngest:
    """The transport-neutral half of a receiver: the wire-byte budget, the books, and decoding a
    parsed request into the pipeline. Both transports of one ``serve`` share one (one budget).

    Example::

        import otel_tele
        from otel_tele._receiver import OtlpIngest
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        telemetry = otel_tele.setup(local=True, sinks="none", traces_exporter="none",
                                    logs_exporter="none", metrics_exporter="none")
        assert OtlpIngest(telemetry).ingest("logs", ExportLogsServiceRequest()).rejected == 0
        telemetry.shutdown(5_000)
    """

    def __init__(
        self,
        telemetry: Pipeline,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
        recent: RecentRequests | None = None,
        rows: bool = True,
    ) -> None:
        self.telemetry = telemetry
        #: Per signal, the path straight into a sink's rows, taken while its consumers allow it
        #: (``_otlp_columns``); ``rows=False`` keeps every signal on the generic path.
        self.routes: dict[str, ColumnRoute] = {}
        if rows:
            for signal in ("logs", "traces"):
                with guard(f"the row path for OTLP {signal}"):
                    route = ColumnRoute.of(telemetry, signal)
                    if route is not None:
                        self.routes[signal] = route
        #: Requests taken lately (``_otlp_dedup``): a re-sent one is answered, not stored again.
        self.recent = recent
        self.max_message_bytes = max_message_bytes
        self.budget = ByteBudget(max(max_inflight_bytes, max_message_bytes))
        #: Per signal: records decoded and handed on (``exported``) or not decodable (``failed``); also
        #: in ``telemetry.sink_stats()``.
        self.stats = {signal: SinkStats("otlp-receiver", signal) for signal, *_ in SERVICES}
        telemetry._stats.extend(self.stats.values())
        if recent is not None:
            with guard("the receiver's duplicate-request counter"):
                telemetry.meter("otel_tele").create_observable_counter(
                    "otel_tele.receiver.duplicates",
                    callbacks=[self._observe_duplicates],
                    unit="{request}",
                    description="re-sent OTLP requests answered from the recent window, not stored again",
                )

    def _observe_duplicates(self, _options: CallbackOptions) -> list[Observation]:
        recent = self.recent
        seen = dict(recent.duplicates) if recent is not None else {}
        return [Observation(count, {"otel_tele.signal": signal}) for signal, count in seen.items()]

    def parse(self, signal: str, data: bytes) -> Any:
        """A protobuf request body of ``signal``, parsed as its consumers need it: with attributes
        as wire bytes for a row path (``_otlp_raw``), else the real message. Bad UTF-8 is repaired;
        other damage raises ``DecodeError``."""
        route = self.routes.get(signal)
        if route is not None and route.active():
            return _otlp_raw.parse(signal, data)
        return decode.parse(REQUESTS[signal], data)

    def key(self, signal: str, body: bytes) -> bytes | None:
        """The digest a re-sent twin of this request body would have; ``None`` without a window."""
        return digest(signal, body) if self.recent is not None else None

    def ingest(
        self,
        signal: str,
        request: Any,
        failed_already: int = 0,
        reasons: list[str] | None = None,
        *,
        key: bytes | None = None,
    ) -> Outcome:
        """Decode ``request`` and hand its records over; ``failed_already`` records (and their
        ``reasons``) were left out by the transport's own parsing (OTLP/JSON). ``key`` (from
        :meth:`key`): a request taken before under the same key is answered as it was then and
        not ingested again."""
        recent = self.recent if key is not None else None
        if recent is None or key is None:
            return self._ingest(signal, request, failed_already, reasons)
        twin = recent.begin(key, signal)
        if twin is not None:
            if not twin.finished:
                return Outcome(retry=True, message="the same request is still being taken; retry later")
            return Outcome(twin.rejected, twin.message)
        try:
            outcome = self._ingest(signal, request, failed_already, reasons)
        except BaseException:
            recent.forget(key)
            raise
        if outcome.retry:
            recent.forget(key)  # nothing was taken: its retry must be
        else:
            recent.finish(key, outcome.rejected, outcome.message)
        return outcome

    def _ingest(self, signal: str, request: Any, failed_already: int, reasons: list[str] | None) -> Outcome:
        reasons = list(reasons or ())
        dropped = decoded = 0
        failed = failed_already
        route = self.routes.get(signal)
        if route is not None and not route.active():
            request = _otlp_raw.real(signal, request)  # parsed while the row path applied
            route = None
        with guard(f"OTLP {signal} ingest"):
            if route is not None:
                taken = route.ingest(request, reasons)
                decoded, bad, dropped = taken.decoded, taken.failed, taken.dropped
            elif signal == "logs":
                records, bad = decode.log_records(request, reasons)
                dropped = self.telemetry.ingest_logs(records) if records else 0
                decoded = len(records)
            elif signal == "traces":
                spans, bad = decode.spans(request, reasons)
                dropped = self.telemetry.ingest_spans(spans) if spans else 0
                decoded = len(spans)
            else:
                data, bad = decode.metrics_data(request, reasons)
                self.telemetry.ingest_metrics(data)
                decoded = count_points(data)
            failed += bad
            self.stats[signal].passed_through(exported=decoded, failed=failed)
        if decoded and dropped >= decoded and self.telemetry.overload.modes.get("otlp") == WAIT:
            # Nothing fitted after the full overload wait: a retryable refusal loses nothing, as the
            # sender keeps the request (the records are counted dropped here all the same).
            return Outcome(retry=True, message="otel-tele serve's queues are full; retry later")
        if dropped:
            reasons.append(f"{dropped} records dropped: the sinks' queues stayed full (overload)")
        rejected = failed + dropped
        if not rejected:
            return Outcome()
        return Outcome(rejected, f"otel-tele serve refused {rejected} of the records: " + "; ".join(reasons))

    def response(self, signal: str, outcome: Outcome) -> Any:
        """The OTLP Export response for ``outcome`` (a partial success when records were refused)."""
        reply = RESPONSES[signal]()
        if outcome.rejected:
            setattr(reply.partial_success, REJECTED_FIELD[signal], outcome.rejected)
            reply.partial_success.error_message = outcome.message
        return reply


class _Authorization(grpc.ServerInterceptor):  # type: ignore[misc]
    """Checks a call's metadata before its request is even parsed; refuses with UNAUTHENTICATED."""

    def __init__(self, authorize: Callable[[dict[str, str]], bool]) -> None:
        self._authorize = authorize
        self._refuse = grpc.unary_unary_rpc_method_handler(self._abort)

    @staticmethod
    def _abort(_request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        metadata = {
            key.lower(): value for key, value in (details.invocation_metadata or ()) if isinstance(value, str)
        }
        return continuation(details) if self._authorize(metadata) else self._refuse


class OtlpGrpcReceiver:
    """Serves the OTLP trace, metrics and logs services on ``address`` into ``telemetry``'s sinks.

    ``authorize(metadata) -> bool`` (optional) checks each call's metadata before its request is
    parsed (``otel-tele serve`` passes its bearer-token check); ``credentials`` (optional) serves TLS;
    ``ingest`` (optional) is shared with an OTLP/HTTP receiver, and then its limits apply.

    Status codes: ``RESOURCE_EXHAUSTED`` with a RetryInfo while the byte budget is spent,
    ``UNAVAILABLE`` when nothing fitted in the queues after the overload wait (both retryable),
    ``INVALID_ARGUMENT`` for a request that is not OTLP protobuf; otherwise OK, with a partial success
    counting the records that were refused (undecodable, or dropped under overload) and saying why.

    Example::

        import otel_tele
        from otel_tele._receiver import OtlpGrpcReceiver

        telemetry = otel_tele.setup(local=True, sinks=["sqlite"], traces_exporter="none",
                                    logs_exporter="none", metrics_exporter="none")
        receiver = OtlpGrpcReceiver(telemetry, "127.0.0.1:0")
        receiver.stop()
        telemetry.shutdown(5_000)
    """

    def __init__(
        self,
        telemetry: Pipeline,
        address: str,
        *,
        max_workers: int = 4,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
        authorize: Callable[[dict[str, str]], bool] | None = None,
        credentials: grpc.ServerCredentials | None = None,
        ingest: OtlpIngest | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.ingest = ingest or OtlpIngest(
            telemetry, max_message_bytes=max_message_bytes, max_inflight_bytes=max_inflight_bytes
        )
        self.budget = self.ingest.budget
        self.stats = self.ingest.stats
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otlp-recv"),
            options=[("grpc.max_receive_message_length", self.ingest.max_message_bytes)],
            interceptors=[_Authorization(authorize)] if authorize is not None else None,
        )
        self.server.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(
                    service,
                    {
                        "Export": grpc.unary_unary_rpc_method_handler(
                            self._handler(signal, response),
                            request_deserializer=self._deserializer(signal, request),
                            response_serializer=response.SerializeToString,
                        )
                    },
                )
                for signal, service, request, response in SERVICES
            )
        )
        try:
            if credentials is not None:
                self.port = self.server.add_secure_port(address, credentials)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:  # grpcio raises RuntimeError("Failed to bind …") for a busy port
            raise OSError(f"cannot listen on {address}: {exc}") from None
        if not self.port:
            raise OSError(f"cannot listen on {address}")
        self.server.start()

    def _deserializer(self, signal: str, request_type: Any) -> Callable[[bytes], Any]:
        def parse(data: bytes) -> Any:
            # Admission happens here, on wire bytes, before the protobuf objects exist.
            if not self.budget.try_take(len(data)):
                return _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, BUDGET_FULL)
            try:
                # Our parser: a request with bad UTF-8 is repaired, not refused as a whole.
                request = self.ingest.parse(signal, data)
                return _Admitted(request, len(data), self.ingest.key(signal, data))
            except message.DecodeError as exc:
                self.budget.give_back(len(data))
                return _Refused(
                    grpc.StatusCode.INVALID_ARGUMENT, f"not a valid OTLP protobuf request ({exc})"
                )
            except BaseException:
                self.budget.give_back(len(data))
                raise

        return parse

    def _handler(self, signal: str, response: Any) -> Any:
        def export(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Refused):
                if request.status == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    _retry_info(context, request.status, RETRY_AFTER_S["budget"])
                context.abort(request.status, request.message)
            try:
                outcome = self.ingest.ingest(signal, request.request, key=request.key)
            finally:
                request.request = None
                self.budget.give_back(request.size)
            if outcome.retry:
                _retry_info(context, grpc.StatusCode.UNAVAILABLE, RETRY_AFTER_S["queues"])
                context.abort(grpc.StatusCode.UNAVAILABLE, outcome.message)
            return self.ingest.response(signal, outcome)

        return export

    def stop(self, grace_s: float = 5.0) -> None:
        self.server.stop(grace_s).wait(grace_s + 1)


def _retry_info(context: grpc.ServicerContext, code: grpc.StatusCode, seconds: int) -> None:
    """OTLP/gRPC: RESOURCE_EXHAUSTED is retryable only with a RetryInfo in the status details."""
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2, status_pb2

    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))
    status = status_pb2.Status(code=code.value[0], details=[detail])
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
