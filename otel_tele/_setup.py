"""The one line: ``otel_tele.setup(service_name=...)``."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._internal import fork_safe
from ._pipeline import DisabledPipeline, Pipeline
from ._scrub import default_header_sanitizing
from ._settings import resolve

_log = logging.getLogger("otel_tele")
_lock = fork_safe(threading.Lock())
_global: Pipeline | None = None


def setup(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    local: bool = False,
    disabled: bool | None = None,
    traces_exporter: str | list[str] | None = None,
    metrics_exporter: str | list[str] | None = None,
    logs_exporter: str | list[str] | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    otlp_timeout_millis: int | None = None,
    prometheus_host: str | None = None,
    prometheus_port: int | None = None,
    metric_export_interval_millis: int | None = None,
    data_dir: str | Path | None = None,
    sinks: str | list[str] | None = None,
    postgres_dsn: str | None = None,
    sink_options: Mapping[str, Mapping[str, Any]] | None = None,
    **options: Any,
) -> Pipeline:
    """Build the OTel providers, exporters and our sinks; return the :class:`Pipeline` handle.

    Every option is keyword-only and falls back to its environment variable, then to its default
    (``otel-tele doctor`` prints them all). A bad argument raises ``ValueError``; a bad environment
    value is logged and defaulted. A second call warns and returns the first handle.
    ``local=True`` builds a private pipeline that leaves the OTel globals alone.
    ``sink_options`` builds a named sink from keyword arguments of its class instead of from the
    settings (``{"<sink>": {"<argument>": value}}``): a private pipeline writing where its caller says.

    Example::

        import otel_tele
        telemetry = otel_tele.setup(service_name="arm-server")
        ...
        telemetry.shutdown(timeout_millis=5_000)
    """
    arguments = {
        "service_name": service_name,
        "service_version": service_version,
        "disabled": disabled,
        "traces_exporter": traces_exporter,
        "metrics_exporter": metrics_exporter,
        "logs_exporter": logs_exporter,
        "otlp_endpoint": otlp_endpoint,
        "otlp_protocol": otlp_protocol,
        "otlp_timeout_millis": otlp_timeout_millis,
        "prometheus_host": prometheus_host,
        "prometheus_port": prometheus_port,
        "metric_export_interval_millis": metric_export_interval_millis,
        "data_dir": data_dir,
        "sinks": sinks,
        "postgres_dsn": postgres_dsn,
        **options,
    }
    settings = resolve(arguments)
    if settings.scrub:
        default_header_sanitizing()  # before any HTTP instrumentor reads its capture-headers settings

    def build(local: bool = False) -> Pipeline:
        if settings.disabled:
            return DisabledPipeline(settings, local=local)
        return Pipeline(settings, local=local, sink_options=sink_options)

    if local:
        return build(local=True)
    global _global
    with _lock:
        if _global is not None:
            warnings.warn(
                "otel_tele.setup() was already called; returning the existing pipeline",
                RuntimeWarning,
                stacklevel=2,
            )
            return _global
        _global = build()
        return _global


def get_telemetry() -> Pipeline | None:
    """The global pipeline, if ``setup()`` has built one."""
    return _global


def shutdown(timeout_millis: float | None = None) -> bool:
    """Shut the global pipeline down within ``timeout_millis`` (default: the ``shutdown_timeout_millis``
    setting); a no-op without one."""
    telemetry = _global
    return True if telemetry is None else telemetry.shutdown(timeout_millis)


_reset_hooks: list[Callable[[], object]] = []


def on_reset(hook: Callable[[], object]) -> None:
    """Register process-wide state of an instrumentation helper (a default collector, a singleton
    logger) to be dropped by ``otel_tele.testing.reset()`` — core knows no helper by name."""
    _reset_hooks.append(hook)


def run_reset_hooks() -> None:
    for hook in list(_reset_hooks):
        hook()


def _forget_global() -> None:
    """For ``otel_tele.testing.reset()`` only."""
    global _global
    with _lock:
        _global = None
