"""``otel-tele serve``'s OTLP/gRPC receiver: OTLP from any language or collector → our sinks.

Decoded records enter the same processors that records from this process enter, so the sinks'
mapping, batching and accounting apply unchanged.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from . import _otlp_decode as decode
from ._internal import guard
from ._pipeline import Telemetry
from ._sink import count_points
from ._stats import SinkStats

_log = logging.getLogger("otel_tele")
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


class OtlpGrpcReceiver:
    """Serves the OTLP trace, metrics and logs services on ``address`` into ``telemetry``'s sinks.

    Example::

        import otel_tele
        from otel_tele._receiver import OtlpGrpcReceiver

        telemetry = otel_tele.setup(local=True, sinks=["sqlite"], traces_exporter="none",
                                    logs_exporter="none", metrics_exporter="none")
        receiver = OtlpGrpcReceiver(telemetry, "127.0.0.1:0")
        receiver.stop()
        telemetry.shutdown(5_000)
    """

    def __init__(self, telemetry: Telemetry, address: str, *, max_workers: int = 4) -> None:
        self.telemetry = telemetry
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otlp-recv"),
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
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
                            # Our parser: a request with bad UTF-8 is repaired, not refused as a whole.
                            request_deserializer=lambda data, request=request: decode.parse(request, data),
                            response_serializer=response.SerializeToString,
                        )
                    },
                )
                for signal, service, request, response in _SERVICES
            )
        )
        self.port = self.server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {address}")
        self.server.start()

    def _handler(self, signal: str, response: Any) -> Any:
        def export(request: Any, context: Any) -> Any:
            self._ingest(signal, request)
            return response()

        return export

    def _ingest(self, signal: str, request: Any) -> None:
        with guard(f"OTLP {signal} ingest"):
            if signal == "logs":
                records, failed = decode.log_records(request)
                self.telemetry.ingest_logs(records)
                decoded = len(records)
            elif signal == "traces":
                spans, failed = decode.spans(request)
                self.telemetry.ingest_spans(spans)
                decoded = len(spans)
            else:
                data, failed = decode.metrics_data(request)
                self.telemetry.ingest_metrics(data)
                decoded = count_points(data)
            self.stats[signal].passed_through(exported=decoded, failed=failed)

    def stop(self, grace_s: float = 5.0) -> None:
        self.server.stop(grace_s).wait(grace_s + 1)
