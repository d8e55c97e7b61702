"""``otel-tele serve``'s OTLP/gRPC receiver: OTLP from any language or collector → our sinks.

Decoded records enter the same processors that records from this process enter, so the sinks'
mapping, batching and accounting apply unchanged.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from . import _otlp_decode as decode
from ._internal import guard
from ._pipeline import Telemetry

_log = logging.getLogger("otel_tele")


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
        receiver = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._ingest("traces", request)
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._ingest("metrics", request)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._ingest("logs", request)
                return logs_service_pb2.ExportLogsServiceResponse()

        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.server)  # type: ignore[no-untyped-call]
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self.server)  # type: ignore[no-untyped-call]
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), self.server)  # type: ignore[no-untyped-call]
        self.port = self.server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {address}")
        self.server.start()

    def _ingest(self, signal: str, request: Any) -> None:
        with guard(f"OTLP {signal} ingest"):
            if signal == "logs":
                self.telemetry.ingest_logs(decode.log_records(request))
            elif signal == "traces":
                self.telemetry.ingest_spans(decode.spans(request))
            else:
                self.telemetry.ingest_metrics(decode.metrics_data(request))

    def stop(self, grace_s: float = 5.0) -> None:
        self.server.stop(grace_s).wait(grace_s + 1)
