"""``otel-tele serve``'s OTLP/gRPC receiver: OTLP from any language or collector → our sinks.

Decoded records enter the same processors that records from this process enter, so the sinks'
mapping, batching and accounting apply unchanged.

Memory has a ceiling. A request's wire size is admitted against a budget *before* it is parsed
(in the gRPC deserializer): while the requests being decoded hold ``max_inflight_bytes`` of wire
bytes, the next one is answered ``RESOURCE_EXHAUSTED`` and the client retries it later (OTLP
exporters and collectors do). One request may be at most ``max_message_bytes``. Parsing and
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
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from . import _otlp_decode as decode
from ._internal import fork_safe, guard
from ._pipeline import Telemetry
from ._sink import count_points
from ._stats import SinkStats

_log = logging.getLogger("otel_tele")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_INFLIGHT_BYTES = 16 * 1024 * 1024
#: (signal, gRPC service, request class, response class) of the three OTLP services.
_SERVICES: tuple[tuple[str, str, Any, Any], ...] = (
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
#: The OTLP partial-success field that tells a sender how many of its records were dropped.
_REJECTED_FIELD = {"traces": "rejected_spans", "logs": "rejected_log_records"}


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


class _Refused:
    pass


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
    parsed (``otel-tele serve`` passes its bearer-token check); ``credentials`` (optional) serves TLS.

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
        telemetry: Telemetry,
        address: str,
        *,
        max_workers: int = 4,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
        authorize: Callable[[dict[str, str]], bool] | None = None,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.budget = ByteBudget(max(max_inflight_bytes, max_message_bytes))
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otlp-recv"),
            options=[("grpc.max_receive_message_length", max_message_bytes)],
            interceptors=[_Authorization(authorize)] if authorize is not None else None,
        )
        #: Per signal: records decoded and handed on (``exported``) or not decodable (``failed``); also
        #: in ``telemetry.sink_stats()``.
        self.stats = {signal: SinkStats("otlp-receiver", signal) for signal, *_ in _SERVICES}
        telemetry._stats.extend(self.stats.values())
        self.server.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(
                    service,
                    {
                        "Export": grpc.unary_unary_rpc_method_handler(
                            self._handler(signal, response),
                            request_deserializer=self._deserializer(request),
                            response_serializer=response.SerializeToString,
                        )
                    },
                )
                for signal, service, request, response in _SERVICES
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

    def _deserializer(self, request_type: Any) -> Callable[[bytes], Any]:
        def parse(data: bytes) -> Any:
            # Admission happens here, on wire bytes, before the protobuf objects exist.
            if not self.budget.try_take(len(data)):
                return _Refused()
            try:
                # Our parser: a request with bad UTF-8 is repaired, not refused as a whole.
                return _Admitted(decode.parse(request_type, data), len(data))
            except BaseException:
                self.budget.give_back(len(data))
                raise

        return parse

    def _handler(self, signal: str, response: Any) -> Any:
        def export(request: Any, context: grpc.ServicerContext) -> Any:
            if not isinstance(request, _Admitted):
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "otel-tele serve is decoding as much as its memory budget allows; retry later",
                )
            reply = response()
            try:
                rejected = self._ingest(signal, request.request)
            finally:
                request.request = None
                self.budget.give_back(request.size)
            if rejected and signal in _REJECTED_FIELD:
                _partial(reply, _REJECTED_FIELD[signal], rejected)
            return reply

        return export

    def _ingest(self, signal: str, request: Any) -> int:
        """Decode and hand over one request; returns how many records a sink could not take."""
        dropped = 0
        with guard(f"OTLP {signal} ingest"):
            if signal == "logs":
                records, failed = decode.log_records(request)
                dropped = self.telemetry.ingest_logs(records)
                decoded = len(records)
            elif signal == "traces":
                spans, failed = decode.spans(request)
                dropped = self.telemetry.ingest_spans(spans)
                decoded = len(spans)
            else:
                data, failed = decode.metrics_data(request)
                self.telemetry.ingest_metrics(data)
                decoded = count_points(data)
            self.stats[signal].passed_through(exported=decoded, failed=failed)
        return dropped

    def stop(self, grace_s: float = 5.0) -> None:
        self.server.stop(grace_s).wait(grace_s + 1)


def _partial(response: Any, field: str, rejected: int) -> None:
    """OTLP partial success: the sender learns what was dropped under overload (and must not retry)."""
    if rejected:
        setattr(response.partial_success, field, rejected)
        response.partial_success.error_message = (
            f"otel-tele serve overloaded: {rejected} records dropped after the overload wait"
        )
