"""One telemetry pipeline: resource, the three SDK providers, their exporters, sinks and the event path."""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import platform
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypedDict, cast

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk._logs import Logger as SdkLogger
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OsResourceDetector,
    ProcessResourceDetector,
    Resource,
    get_aggregated_resources,
)
from opentelemetry.sdk.trace import TracerProvider

from . import _components as components
from . import _overload
from ._event_rows import EventRoute
from ._events import BatchingMultiProcessor, DomainEvents, NoopDomainEvents
from ._internal import (
    Incomplete,
    RebuiltAfterFork,
    at_fork_in_child,
    bad_input_log,
    describe_error,
    guard,
    notice,
    run_with_deadline,
)
from ._otlp_health import ExportHealth, HealthMetricExporter, quiet_sdk_retry_logs
from ._processor import BatchingProcessor, ExportFn, LogBatchProcessor, SpanBatchProcessor
from ._reader import PushMetricReader
from ._received_metrics import ReceivedMetrics
from ._registry import domains, load
from ._scrub import Scrubber, ScrubbingMetricExporter
from ._settings import Settings
from ._sink import Sink, SinkLogExporter, SinkMetricExporter, SinkSpanExporter, close_once
from ._stats import SinkStats, StatsSnapshot

_log = logging.getLogger("otel_tele")
_SIGNALS = ("traces", "logs", "metrics")


def build_resource(settings: Settings) -> Resource:
    """service.name/version from settings, OTEL_RESOURCE_ATTRIBUTES, host, OS and process."""
    ours: dict[str, Any] = {"host.name": socket.gethostname(), "host.arch": platform.machine()}
    detected = get_aggregated_resources([ProcessResourceDetector(), OsResourceDetector()], Resource(ours))
    explicit: dict[str, Any] = {}
    if settings.service_name:
        explicit[SERVICE_NAME] = settings.service_name
    if settings.service_version:
        explicit[SERVICE_VERSION] = settings.service_version
    return detected.merge(Resource.create(explicit))


def _standard_export(
    exporter: Any, signal: str, stats: SinkStats, health: ExportHealth | None = None
) -> ExportFn:
    """Export through any OTel exporter. Log processors queue the records as emitted (our sinks read
    them as they are); a standard exporter gets the SDK's ``ReadableLogRecord`` it is written for."""

    def send(batch: list[Any]) -> int:
        """Records exported. An exporter raises before it sends, on a record it cannot encode (a
        body of an unknown type, an integer past 64 bits): halves are sent until that record is
        alone, and it alone fails."""
        try:
            ok = getattr(exporter.export(batch), "name", "") == "SUCCESS"
        except Exception as exc:
            if len(batch) == 1:
                bad_input_log.warning(
                    f"{stats.sink} export",
                    "%s/%s: a record the exporter cannot take counted as failed (%s)",
                    stats.sink,
                    signal,
                    describe_error(exc),
                )
                stats.note_error(f"a record the exporter cannot take ({describe_error(exc)})")
                return 0
            half = len(batch) // 2
            return send(batch[:half]) + send(batch[half:])
        if health is not None:
            health.record(ok=ok, count=len(batch))
        if ok:
            return len(batch)
        stats.export_failed("the collector refused the batch or did not answer in time")
        return 0

    def export(batch: list[Any]) -> tuple[int, int]:
        if signal == "logs":
            batch = [_readable(record) for record in batch]
        refusals = stats.failed_exports
        exported = send(batch)
        if not exported and len(batch) > 1 and stats.failed_exports == refusals:
            # Every record raised alone: the exporter or its channel is broken, not a record.
            stats.export_failed("the exporter could not encode or send any record of the batch")
            if health is not None:
                health.record(ok=False, count=len(batch))
        return exported, len(batch) - exported

    return export


def _readable(record: Any) -> ReadableLogRecord:
    if isinstance(record, ReadableLogRecord):
        return record
    return ReadableLogRecord(
        log_record=record.log_record,
        resource=record.resource,
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )


class _QueueOptions(TypedDict):
    max_queue_size: int
    schedule_delay_millis: float
    max_export_batch_size: int


class Pipeline:
    """The telemetry pipeline ``setup()`` returns: providers, the domain-event path, and the lifecycle.

    Example::

        import otel_tele

        telemetry = otel_tele.setup(service_name="arm-server")
        with telemetry.tracer("arm").start_as_current_span("move"):
            telemetry.events.emit("robot.system.event", {"robot.system.event_type": "enable"})
        telemetry.force_flush(timeout_millis=5_000)
    """

    def __init__(
        self,
        settings: Settings,
        *,
        local: bool = False,
        extra_exporters: Mapping[str, Sequence[Any]] | None = None,
        sink_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self._sink_options = dict(sink_options or {})
        self.local = local
        self.resource = build_resource(settings)
        #: Applied to every span, log record, event and metric on the exporting threads, before any
        #: sink and before OTLP.
        self.scrubber = Scrubber.from_settings(settings)
        self.sinks: dict[str, Sink] = {}
        self.destinations: list[tuple[str, str, str]] = []  # (signal, name, where) for doctor
        self.prometheus_address: tuple[str, int] | None = None
        self._prometheus_server: Any = None
        self._batchers: list[BatchingProcessor[Any]] = []
        self._remote_batchers: list[BatchingProcessor[Any]] = []  # behind a network exporter
        self._health: list[ExportHealth] = []
        self._push_readers: list[MetricReader] = []
        self._push_exporters: list[tuple[MetricExporter, float | None]] = []  # readers built later
        self._span_batchers: list[BatchingProcessor[Any]] = []
        self._sink_metric_exporters: list[SinkMetricExporter] = []
        self._stats: list[SinkStats] = []
        #: Metrics received over OTLP (``ingest_metrics``), shown on the Prometheus endpoint.
        self.received_metrics: ReceivedMetrics | None = None
        self._shut = False
        self.overload = _overload.Overload(
            settings.overload,
            max_wait_ms=settings.overload_max_wait_ms,
            journal_dir=_overload.journal_dir(settings) if settings.sinks else None,
            service=settings.service_name,
        )
        self._kept_local: list[str] = []  # signals whose default otlp exporter was left out
        self.tracer_provider = TracerProvider(resource=self.resource, shutdown_on_exit=False)
        # The SDK keeps one tracer per scope, but finding it costs a scope object, a warnings filter
        # and a lock per call: a timed inference asked on every call (issue 14). Cached per pipeline
        # (so a new setup() gets its own); emptied in a forked child (see _reinit_after_fork).
        self._tracers: dict[tuple[str, str | None], trace.Tracer] = {}
        self._log_processors = BatchingMultiProcessor()  # type: ignore[no-untyped-call]
        self.logger_provider = LoggerProvider(
            resource=self.resource, shutdown_on_exit=False, multi_log_record_processor=self._log_processors
        )
        readers: list[MetricReader] = []
        for name in settings.sinks:
            self._attach_named_sink(name, readers, explicit=settings.sources.get("sinks") != "default")
        for signal in _SIGNALS:
            for name in self._exporter_names(signal):
                with guard(f"{signal} exporter {name}"):
                    self._attach_exporter(signal, name, readers)
        for signal, exporters in (extra_exporters or {}).items():
            for exporter in exporters:
                self._attach_instance(signal, exporter, type(exporter).__name__, "in process", readers)
        # A push reader's ticker starts when it is built: build them only now, so that no tick (a
        # "not registered on a MeterProvider" warning) can come before the provider, however slowly
        # the sinks above imported. Sink readers come first: the provider shuts them down first.
        self._push_readers = [
            PushMetricReader(
                ScrubbingMetricExporter(exporter, self.scrubber),
                export_interval_millis=interval or settings.metric_export_interval_millis,
                export_timeout_millis=settings.metric_export_timeout_millis,
            )
            for exporter, interval in self._push_exporters
        ]
        self.meter_provider = MeterProvider(
            resource=self.resource,
            metric_readers=[*self._push_readers, *readers],
            shutdown_on_exit=False,
            views=_domain_views(settings),
        )
        #: Whether a metric point recorded on this pipeline reaches anything (a reader: an exporter,
        #: a sink, Prometheus). Fixed for the pipeline's life: the SDK takes readers only here.
        self.metrics_observed = bool(self._push_readers or readers)
        meter = self.meter_provider.get_meter("otel_tele")
        self.events = DomainEvents(
            cast(SdkLogger, self.logger_provider.get_logger("otel_tele.events")),
            self._log_processors,
            self.meter_provider.get_meter("otel_tele.events"),
            queue_size=settings.event_queue_size,
            overload=self.overload,
            metric_cardinality_limit=settings.metric_cardinality_limit,
            metrics_observed=self.metrics_observed,
        )
        self._stats.append(self.events.stats)
        self.events.route = EventRoute.of(self)
        self._register_self_metrics(meter)
        if not local:
            trace.set_tracer_provider(self.tracer_provider)
            metrics.set_meter_provider(self.meter_provider)
            _logs.set_logger_provider(self.logger_provider)
        at_fork_in_child(self._reinit_after_fork)
        weak_shutdown = weakref.WeakMethod(self.shutdown)
        atexit.register(lambda: (m := weak_shutdown()) and m())
        if self._kept_local and not local:
            notice(self._local_first_notice())

    # -- building --------------------------------------------------------------------------------
    def _exporter_names(self, signal: str) -> tuple[str, ...]:
        names, kept_local = components.exporter_names(signal, self.settings)
        if kept_local:
            self._kept_local.append(signal)
        return names

    def _local_first_notice(self) -> str:
        kept = [f"sinks ({', '.join(self.sinks)}) under {self.settings.data_dir}"] if self.sinks else []
        if self.prometheus_address is not None:
            host, port = self.prometheus_address
            kept.append(f"Prometheus at http://{host}:{port}/metrics")
        return (
            "otel-tele: no OTLP endpoint configured, so telemetry stays local"
            f" ({'; '.join(kept) or 'nothing attached'}); to ship it to a collector, set"
            " OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4317) or setup(otlp_endpoint=...)"
        )

    def _attach_named_sink(self, name: str, readers: list[MetricReader], *, explicit: bool) -> None:
        if name in self.sinks:
            return
        try:
            sink = components.build_sink(name, self.settings, self._sink_options.get(name))
        except components.ComponentUnavailable as exc:
            if explicit:
                _log.error("%s", exc)
            else:
                _log.debug("default %s", exc)
            return
        self.sinks[name] = sink
        for signal in sorted(sink.signals):
            exporter: Any = {
                "traces": SinkSpanExporter,
                "logs": SinkLogExporter,
                "metrics": SinkMetricExporter,
            }[signal](sink)
            if signal == "metrics":
                self._add_reader(
                    readers, exporter, name, interval=getattr(sink, "export_interval_millis", None)
                )
            else:
                # The sink is closed once by shutdown(), after every signal feeding it has drained.
                self._add_batcher(
                    signal,
                    exporter,
                    sink.stats[signal],
                    self._sink_export(signal, exporter),
                    None,
                    overload=True,
                )
            self.destinations.append((signal, f"sink:{name}", sink.location()))

    def _attach_exporter(self, signal: str, name: str, readers: list[MetricReader]) -> None:
        if name == "none":
            return
        if signal == "metrics" and name == "prometheus":
            self._start_prometheus(readers)
            return
        health = None
        if name == "otlp":
            exporter = RebuiltAfterFork(functools.partial(components.otlp_exporter, signal, self.settings))
            where = str(
                getattr(exporter, "_endpoint", "") or self.settings.otlp_endpoint or "default endpoint"
            )
            quiet_sdk_retry_logs()
            health = ExportHealth(f"OTLP {signal}", where)
            self._health.append(health)
        elif name == "console":
            exporter, where = components.console_exporter(signal), "stdout"
        else:
            try:
                cls = components.exporter_entry_point(signal, name)
            except components.ComponentUnavailable as exc:
                _log.error("%s", exc)
                return
            sink_name = components.sink_name_of(cls)
            if sink_name is not None:  # one of ours: share the sink instance with its other signals
                self._attach_named_sink(sink_name, readers, explicit=True)
                return
            exporter, where = cls(), name
        self._attach_instance(signal, exporter, name, where, readers, health)

    def _attach_instance(
        self,
        signal: str,
        exporter: Any,
        name: str,
        where: str,
        readers: list[MetricReader],
        health: ExportHealth | None = None,
    ) -> None:
        if isinstance(exporter, MetricReader):
            readers.append(exporter)
        elif signal != "metrics" and isinstance(exporter, SinkSpanExporter | SinkLogExporter):
            self._add_batcher(
                signal,
                exporter,
                exporter.stats,
                self._sink_export(signal, exporter),
                exporter.shutdown,
                overload=True,
            )
        elif signal == "metrics":
            self._add_reader(readers, HealthMetricExporter(exporter, health) if health else exporter, name)
        else:
            stats = SinkStats(name, signal)
            self._add_batcher(
                signal,
                exporter,
                stats,
                _standard_export(exporter, signal, stats, health),
                lambda timeout_millis: exporter.shutdown(),
                remote=True,
            )
        self.destinations.append((signal, name, where))

    def _sink_export(self, signal: str, exporter: SinkSpanExporter | SinkLogExporter) -> ExportFn:
        prefix = "bsp" if signal == "traces" else "blrp"
        timeout_s = getattr(self.settings, f"{prefix}_export_timeout_millis") / 1000
        return lambda batch: exporter.export_counted(batch, len(batch), timeout_s)

    def _add_batcher(
        self,
        signal: str,
        exporter: Any,
        stats: SinkStats,
        export: ExportFn,
        on_shutdown: Callable[[float], object] | None,
        *,
        overload: bool = False,
        remote: bool = False,
    ) -> None:
        batcher: BatchingProcessor[Any] = BatchingProcessor(
            export,
            stats,
            on_shutdown=on_shutdown,
            prepare=self.scrubber.spans if signal == "traces" else self.scrubber.log_records,
            overload=self.overload if overload else None,
            **self._queue_options(signal),
        )
        self._batchers.append(batcher)
        if remote:
            self._remote_batchers.append(batcher)
        self._stats.append(stats)
        if signal == "traces":
            self._span_batchers.append(batcher)
            self.tracer_provider.add_span_processor(SpanBatchProcessor(batcher))
        else:
            self.logger_provider.add_log_record_processor(LogBatchProcessor(batcher))

    def _queue_options(self, signal: str) -> _QueueOptions:
        """The bound, delay and batch size of a sink's queue for ``signal`` (``OTEL_BSP_*``,
        ``OTEL_BLRP_*``)."""
        prefix = "bsp" if signal == "traces" else "blrp"
        return _QueueOptions(
            max_queue_size=getattr(self.settings, f"{prefix}_max_queue_size"),
            schedule_delay_millis=getattr(self.settings, f"{prefix}_schedule_delay_millis"),
            max_export_batch_size=getattr(self.settings, f"{prefix}_max_export_batch_size"),
        )

    def attach_feed(self, signal: str, export: ExportFn, stats: SinkStats) -> BatchingProcessor[Any]:
        """A sink's queue fed from outside the providers (rows of received OTLP, a domain's event
        dicts: ``_otlp_columns``, ``_event_rows``): the options and overload policy of the sink's
        record queue for ``signal``, flushed and shut down with the sinks' own; its books ``stats``."""
        batcher: BatchingProcessor[Any] = BatchingProcessor(
            export, stats, overload=self.overload, **self._queue_options(signal)
        )
        self._batchers.append(batcher)
        return batcher

    def _add_reader(
        self, readers: list[MetricReader], exporter: MetricExporter, name: str, interval: float | None = None
    ) -> None:
        self._push_exporters.append((exporter, interval))
        if isinstance(exporter, SinkMetricExporter):
            self._stats.append(exporter.stats)
            self._sink_metric_exporters.append(exporter)

    def _start_prometheus(self, readers: list[MetricReader]) -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=True)
        host, port = self.settings.prometheus_host, self.settings.prometheus_port
        try:
            server, _thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            _log.error(
                "Prometheus endpoint not started: cannot listen on %s:%s (%s); "
                "set OTEL_EXPORTER_PROMETHEUS_PORT to a free port",
                host,
                port,
                exc,
            )
            return
        scrub = self.scrubber.metrics

        class ScrubbedPrometheusReader(PrometheusMetricReader):
            """Scrubs each collection on the scrape's thread, like every other exporter."""

            def _receive_metrics(self, metrics_data: Any, timeout_millis: float = 10_000, **kw: Any) -> None:
                if metrics_data is not None:
                    super()._receive_metrics(scrub(metrics_data), timeout_millis, **kw)

        readers.append(ScrubbedPrometheusReader(registry=registry))
        self.received_metrics = ReceivedMetrics()
        registry.register(self.received_metrics)
        self._prometheus_server = server
        self.prometheus_address = (host, server.server_address[1])
        self.destinations.append(
            ("metrics", "prometheus", f"http://{host}:{self.prometheus_address[1]}/metrics")
        )

    def _register_self_metrics(self, meter: Meter) -> None:
        def observe(field: str) -> Callable[[CallbackOptions], list[Observation]]:
            def callback(_options: CallbackOptions) -> list[Observation]:
                return [
                    Observation(getattr(s, field), {"otel_tele.sink": s.sink, "otel_tele.signal": s.signal})
                    for s in self.sink_stats()
                ]

            return callback

        for field, what in (
            ("exported", "written"),
            ("dropped", "refused before export"),
            ("failed", "not persisted after export attempts"),
            ("not_routed", "of a kind the sink does not store"),
        ):
            meter.create_observable_counter(
                f"otel_tele.sink.{field}",
                callbacks=[observe(field)],
                unit="{record}",
                description=f"records {what}, per sink",
            )

        def overload(field: str) -> Callable[[CallbackOptions], list[Observation]]:
            def callback(_options: CallbackOptions) -> list[Observation]:
                return [
                    Observation(seen[field], {"otel_tele.domain": domain, "otel_tele.policy": seen["policy"]})
                    for domain, seen in self.overload.snapshot().items()
                ]

            return callback

        def metric_overflow(_options: CallbackOptions) -> list[Observation]:
            overflowed = self.events.metric_overflow.items()
            return [Observation(count, {"otel_tele.metric": name}) for name, count in overflowed]

        for name, callback, unit, what in (
            (
                "otel_tele.overload.dropped",
                overload("dropped"),
                "{record}",
                "records dropped because a queue was full, per overload domain",
            ),
            (
                "otel_tele.overload.wait",
                overload("waited_s"),
                "s",
                "time recording calls and sink queues waited for room (policy 'wait'), per domain",
            ),
            (
                "otel_tele.metric.overflow",
                metric_overflow,
                "{update}",
                "event-fed metric updates folded into the otel.metric.overflow=true series",
            ),
        ):
            meter.create_observable_counter(name, callbacks=[callback], unit=unit, description=what)
        meter.create_observable_gauge(
            "otel_tele.sink.queue_depth",
            callbacks=[observe("queued")],
            unit="{record}",
            description="records queued or in flight, per sink",
        )
        meter.create_observable_gauge(
            "otel_tele.sink.pending",
            callbacks=[observe("pending")],
            unit="{record}",
            description="records a sink holds that are not yet durable, per sink",
        )

    def _reinit_after_fork(self) -> None:
        """A forked worker is a new process: its telemetry must say so (process.pid, parent pid), and
        its metrics start from zero — the parent's not yet exported measurements are the parent's to
        export (a child reporting them too would count them twice), and a lock a parent thread held
        in the SDK's metric storage or instrument registry at the fork would never be released."""
        self._tracers = {}  # the SDK's tracers carry on, but the child asks its provider afresh
        with guard("resource refresh after fork"):
            fresh = ProcessResourceDetector().detect()
            self.resource = self.resource.merge(fresh)
            for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
                provider._update_resource(fresh)  # what the SDK's own at-fork hooks call
        with guard("metric storage after fork"):
            consumer = self.meter_provider._measurement_consumer
            consumer._lock = threading.Lock()
            for reader in list(consumer._reader_storages):  # fresh, empty storage per reader
                consumer.remove_metric_reader(reader)
                consumer.add_metric_reader(reader)
            for meter in list(self.meter_provider._meters.values()):  # the SDK renews the provider's only
                meter._instrument_registration_lock = threading.Lock()
                meter._instrument_ids_lock = threading.Lock()
                # A parent thread forked half-way through creating an instrument leaves its id
                # registered with no instrument behind it; every later create of that instrument in
                # the child would raise KeyError. Forget such ids: the child creates them anew.
                for instrument_id in list(meter._instrument_ids):
                    if instrument_id not in meter._instrument_id_instrument:
                        del meter._instrument_ids[instrument_id]

    # -- use ------------------------------------------------------------------------------------
    def tracer(self, name: str, version: str | None = None) -> trace.Tracer:
        """The pipeline's tracer for ``name`` (looked up once, then a dict lookup per call)."""
        tracer = self._tracers.get((name, version))
        if tracer is None:
            # Two threads racing here both get the SDK's one tracer for the scope: no lock needed.
            tracer = self._tracers[(name, version)] = self.tracer_provider.get_tracer(name, version)
        return tracer

    def spans_observed(self) -> bool:
        """Whether a span ended now would reach anything: a processor on the pipeline's tracer
        provider (an exporter, a sink, the live tail, a user's processor). Asked per call, so a
        processor added later counts from then on; a helper recording a span that already ended
        need not build one nobody receives.

        Example: ``if telemetry.spans_observed(): tracer.start_span(...).end(end_time=t)``."""
        try:
            return bool(self.tracer_provider._active_span_processor._span_processors)
        except AttributeError:  # not the SDK's provider as we know it: assume someone listens
            return True

    def meter(self, name: str, version: str | None = None) -> Meter:
        return self.meter_provider.get_meter(name, version)

    def logger(self, name: str, version: str | None = None) -> _logs.Logger:
        return self.logger_provider.get_logger(name, version)

    def sink_stats(self) -> list[StatsSnapshot]:
        """Reconciling counts per sink and signal (the event stage is ``events``)."""
        return [stats.snapshot() for stats in self._stats]

    def export_health(self) -> list[dict[str, Any]]:
        """Reachability of each collector exporter: ``what``, ``where``, ``down`` and how many records
        were not delivered during the current outage (``lost_while_down``)."""
        return [
            {"what": h.what, "where": h.where, "down": h.down, "lost_while_down": h.lost_while_down}
            for h in self._health
        ]

    # -- records from elsewhere (OTLP receiver) --------------------------------------------------
    def ingest_logs(self, records: list[Any]) -> int:
        """Hand decoded log records to every log processor, as if they had been emitted here, under
        the ``otlp`` overload policy; returns how many some sink could not take (counted dropped)."""
        dropped = self._log_processors.on_emit_batch(records, "otlp")
        with guard("overload report"):
            self.overload.report()
        return dropped

    def ingest_spans(self, spans: list[Any]) -> int:
        """As ``ingest_logs``, for spans."""
        dropped = 0
        for batcher in self._span_batchers:
            dropped = max(dropped, batcher.put_many(spans, "otlp"))
        return dropped

    def ingest_metrics(self, data: Any) -> None:
        """Metrics go straight to the sinks that consume metrics (they bin or store them)."""
        data = self.scrubber.metrics(data)
        for exporter in self._sink_metric_exporters:
            exporter.export(data)
        if self.received_metrics is not None:
            with guard("received metrics for Prometheus"):
                self.received_metrics.update(data)

    # -- lifecycle ------------------------------------------------------------------------------
    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        """Push everything recorded so far to every exporter. False if the deadline passed first, or
        if any export during the flush failed or timed out (an OTLP collector that refused or did not
        answer, a sink that gave up): those records are booked ``failed``, not delivered. It logs
        nothing itself — a dead collector would otherwise add a warning per flush to its own one."""
        deadline = time.monotonic() + timeout_millis / 1000

        def remaining_ms() -> float:
            return max(0.0, (deadline - time.monotonic()) * 1000)

        def flush() -> None:
            ok = self.events.force_flush(remaining_ms())
            for batcher in self._batchers:
                ok = batcher.force_flush(remaining_ms()) and ok
            if isinstance(self.events.route, EventRoute):
                self.events.route.settle()
            # Push readers only: collecting a pull reader (Prometheus) here would make its next scrape
            # report every series twice.
            for reader in self._push_readers:
                try:
                    ok = reader.force_flush(remaining_ms()) and ok
                except Exception as exc:  # e.g. MetricsTimeoutError: the deadline, not a bug
                    _log.debug("force_flush of a metric reader: %r", exc)
                    ok = False
            if not ok:
                raise Incomplete("incomplete: the deadline passed first, or an export failed")

        return run_with_deadline(flush, remaining_ms() / 1000, "force_flush", quiet=True)

    def flush_sink(self, name: str, timeout_millis: float = 30_000) -> bool:
        """Push what was recorded so far into the sink ``name`` only: the event stage, then that
        sink's own processors — never OTLP or another sink, so a dead or hung collector or database
        elsewhere costs this call nothing. What a domain helper calls before it reads its own
        storage (the end of an ``fda.run``, inference queries, robot reads). False if the deadline
        passed first or an export to that sink failed; with no such sink, only the event stage.

        Example::

            telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 1})
            telemetry.flush_sink("sqlite", timeout_millis=5_000)  # now in telemetry.db
        """
        deadline = time.monotonic() + timeout_millis / 1000

        def remaining_ms() -> float:
            return max(0.0, (deadline - time.monotonic()) * 1000)

        def flush() -> None:
            ok = self.events.force_flush(remaining_ms())
            # Looked up after the event stage: it may have started a queue of the sink's (_event_rows).
            batchers = [batcher for batcher in self._batchers if batcher.stats.sink == name]
            for batcher in batchers:
                ok = batcher.force_flush(remaining_ms()) and ok
            route = self.events.route
            if ok and isinstance(route, EventRoute) and route.sink.name == name:
                route.settle()
            if not ok:
                raise Incomplete(f"incomplete: sink {name}")

        return run_with_deadline(flush, remaining_ms() / 1000, f"flush of sink {name}", quiet=True)

    def shutdown(self, timeout_millis: float | None = None) -> bool:
        """Flush and stop everything within one deadline (default ``shutdown_timeout_millis``, also
        used at interpreter exit). Idempotent; after it, records are dropped. If the deadline passes,
        one WARNING line says what was not exported, per sink or exporter."""
        if self._shut:
            return True
        self._shut = True
        if timeout_millis is None:
            timeout_millis = float(self.settings.shutdown_timeout_millis)
        before = {(snap.sink, snap.signal): snap for snap in self.sink_stats()}
        for health in self._health:
            health.quiet = True
        deadline = time.monotonic() + timeout_millis / 1000

        def remaining_ms() -> float:
            return max(0.0, (deadline - time.monotonic()) * 1000)

        def steps() -> Iterator[tuple[str, Callable[[], object]]]:
            yield ("events", lambda: self.events.shutdown(remaining_ms()))
            # The queues are listed once the event stage has stopped: its last batches may have
            # started a queue of a sink's own (``_event_rows``), which must drain before the sink closes.
            yield from _after_events()

        def _after_events() -> list[tuple[str, Callable[[], object]]]:
            # Local before remote: a dead collector may use up the deadline, but never at the cost of
            # the files on this machine (sink rows written, databases checkpointed, bundles closed).
            # The meter provider shuts its readers in order: sink readers (which close their sink) first.
            local = [b for b in self._batchers if b not in self._remote_batchers]
            batcher_steps = [
                (f"{b.stats.sink}/{b.stats.signal}", lambda b=b: b.shutdown(remaining_ms()))
                for b in local + self._remote_batchers
            ]
            close_steps = [
                (f"sink {name}", lambda sink=sink: close_once(sink)) for name, sink in self.sinks.items()
            ]
            return [
                *batcher_steps[: len(local)],
                *(
                    step
                    for step, sink in zip(close_steps, self.sinks.values(), strict=True)
                    if "metrics" not in sink.signals
                ),
                ("prometheus endpoint", self._stop_prometheus),
                ("meter provider", lambda: self.meter_provider.shutdown(timeout_millis=remaining_ms())),
                *batcher_steps[len(local) :],
                ("tracer provider", self.tracer_provider.shutdown),
                ("logger provider", self.logger_provider.shutdown),
                *close_steps,
            ]

        failed: list[str] = []

        def stop() -> None:
            for name, step in steps():  # one failing part must not keep the others from stopping
                try:
                    if step() is False:  # a part that reports it did not finish in time
                        failed.append(name)
                except Exception as exc:  # named in the summary line
                    _log.debug("shutdown of %s: %s", name, exc)
                    failed.append(name)
            if failed:
                raise Incomplete(f"incomplete: {', '.join(failed)}")

        done = run_with_deadline(stop, remaining_ms() / 1000, "shutdown", quiet=True)
        if not done:
            # Past the deadline nothing may stay booked queued: the process may exit right after us.
            self.events.drop_unfinished("shutdown deadline passed")
            for batcher in self._batchers:
                batcher.drop_unfinished("shutdown deadline passed")
            _log.warning(_shutdown_summary(timeout_millis, before, self.sink_stats(), failed))
        return done

    def _stop_prometheus(self) -> None:
        server = self._prometheus_server
        if server is None:
            return
        # shutdown() waits for serve_forever()'s next 0.5 s poll; a connection wakes it at once.
        stopping = threading.Thread(target=server.shutdown, name="otel-tele-prometheus-stop", daemon=True)
        stopping.start()
        with contextlib.suppress(OSError):
            socket.create_connection(self.prometheus_address or ("127.0.0.1", 0), timeout=0.2).close()
        stopping.join()
        server.server_close()


def _shutdown_summary(
    timeout_millis: float,
    before: Mapping[tuple[str, str], StatsSnapshot],
    after: Sequence[StatsSnapshot],
    unfinished: Sequence[str],
) -> str:
    """The one line a shutdown that ran out of time leaves: what was not exported, where."""
    lost = []
    for snap in after:
        earlier = before.get((snap.sink, snap.signal))
        dropped = snap.dropped - (earlier.dropped if earlier is not None else 0)
        failed = snap.failed - (earlier.failed if earlier is not None else 0)
        parts = [f"{dropped} dropped"] if dropped else []
        parts += [f"{failed} failed"] if failed else []
        parts += [f"{snap.queued} in flight"] if snap.queued else []
        if parts:
            lost.append(f"{snap.sink}/{snap.signal} {' and '.join(parts)}")
    head = (
        f"otel-tele shutdown stopped at its {timeout_millis / 1000:g} s deadline (OTEL_TELE_SHUTDOWN_TIMEOUT)"
    )
    what = f"; not exported: {', '.join(lost)}" if lost else "; every record was exported"
    parts_left = f"; unfinished: {', '.join(unfinished)}" if unfinished else ""
    return head + what + parts_left


class DisabledPipeline(Pipeline):
    """``OTEL_SDK_DISABLED=true``: the same handle over no-op providers."""

    def __init__(self, settings: Settings, *, local: bool = False) -> None:
        self.settings = settings
        self.local = local
        self.resource = Resource.get_empty()
        self.sinks = {}
        self.destinations = []
        self.prometheus_address = None
        self.received_metrics = None
        self._stats = []
        self.overload = _overload.Overload()
        self.tracer_provider = trace.NoOpTracerProvider()  # type: ignore[assignment]
        self._tracers = {}
        self.meter_provider = metrics.NoOpMeterProvider()  # type: ignore[assignment]
        self.metrics_observed = False
        self.logger_provider = _logs.NoOpLoggerProvider()  # type: ignore[assignment]
        self.events = NoopDomainEvents()

    def spans_observed(self) -> bool:
        return False

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return True

    def flush_sink(self, name: str, timeout_millis: float = 30_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float | None = None) -> bool:
        return True


def _domain_views(settings: Settings) -> list[View]:
    """The metric Views every registered domain asks for (``Domain.views``); a domain whose views
    cannot be built is logged and left out (its instruments keep the SDK's defaults)."""
    views: list[View] = []
    for domain in domains():
        if domain.views:
            with guard(f"metric views of domain {domain.name}"):
                views.extend(load(domain.views)(settings))
    return views


#: The handle's name before it was called what it is (``otel_tele.Telemetry``); deprecated, kept so
#: code written against it runs on. New code says :class:`Pipeline`.
Telemetry = Pipeline
