"""A real OTLP/gRPC endpoint for tests: keeps every request a collector forwards to it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


class OtlpReceiver:
    """Collects trace, metric and log export requests; ``wait_for`` blocks on a condition."""

    def __init__(self, address: str = "127.0.0.1:0") -> None:
        self.traces: list[Any] = []
        self.metrics: list[Any] = []
        self.logs: list[Any] = []
        self._cond = threading.Condition()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        receiver = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep(receiver.traces, request)
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep(receiver.metrics, request)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep(receiver.logs, request)
                return logs_service_pb2.ExportLogsServiceResponse()

        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self.server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), self.server)
        self.port = self.server.add_insecure_port(address)
        self.server.start()

    def _keep(self, bucket: list[Any], request: Any) -> None:
        with self._cond:
            bucket.append(request)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout_s)

    def stop(self) -> None:
        self.server.stop(grace=None)

    # -- decoded views -------------------------------------------------------------------------
    def spans(self) -> Iterator[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) for every span received."""
        with self._cond:
            requests = list(self.traces)
        for request in requests:
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        yield resource, span

    def log_records(self) -> Iterator[tuple[dict[str, Any], Any]]:
        with self._cond:
            requests = list(self.logs)
        for request in requests:
            for rl in request.resource_logs:
                resource = attributes(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        yield resource, record

    def metric_names(self) -> set[str]:
        with self._cond:
            requests = list(self.metrics)
        return {
            metric.name
            for request in requests
            for rm in request.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        }

    def metric_resources(self) -> list[dict[str, Any]]:
        with self._cond:
            requests = list(self.metrics)
        return [attributes(rm.resource.attributes) for request in requests for rm in request.resource_metrics]
