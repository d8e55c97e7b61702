"""Exporters and sinks by name — the one table ``setup()``, the distro and ``doctor`` resolve from.

Names follow ``OTEL_*_EXPORTER``: ``otlp``, ``console``, ``prometheus`` (metrics), ``none``, or any
entry point of the ``opentelemetry_<signal>_exporter`` groups (our sinks register as
``otel_tele_sqlite`` …). Our sinks by short name (``OTEL_TELE_SINKS``) come from :data:`SINKS`, derived
from the domain registry (:mod:`otel_tele._registry`).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from ._registry import SinkSpec, domain_of_sink, load, sink_specs
from ._settings import Settings
from ._sink import Sink

_log = logging.getLogger("otel_tele")


#: Every registered domain's sinks by short name (kept as a name for the sink tests' parametrisation).
SINKS: Mapping[str, SinkSpec] = sink_specs()


class ComponentUnavailable(Exception):
    """A named component cannot be loaded here (not installed, or not part of this build)."""


def load_sink_class(name: str) -> type[Sink]:
    """The :class:`Sink` subclass registered as ``name``; raises ComponentUnavailable with a hint."""
    entry = SINKS[name]
    domain = domain_of_sink(name)
    distribution = (domain.distribution if domain else "") or "otel-tele"
    try:
        sink_class = load(entry.target)
    except ImportError as exc:
        hint = f" (pip install '{distribution}[{entry.extra}]')" if entry.extra else ""
        raise ComponentUnavailable(f"sink {name!r} is unavailable: {exc}{hint}") from exc
    except AttributeError as exc:  # a plug-in's descriptor names a class its module lacks
        raise ComponentUnavailable(f"sink {name!r} of {distribution}: {exc}") from exc
    if not (isinstance(sink_class, type) and issubclass(sink_class, Sink)):
        raise ComponentUnavailable(f"sink {name!r} of {distribution}: {entry.target} is not a Sink subclass")
    return sink_class


def build_sink(name: str, settings: Settings, options: Mapping[str, Any] | None = None) -> Sink:
    """The sink ``name``, built from ``settings`` — or, given ``options``, from those keyword arguments
    of its class (``setup(sink_options=...)``)."""
    sink_class = load_sink_class(name)
    return sink_class(**options) if options is not None else sink_class.from_settings(settings)


def close_sink(sink: Sink) -> None:
    from ._sink import close_once

    close_once(sink)


def exporter_entry_point(signal: str, name: str) -> Any:
    """The class registered under ``name`` for ``signal``; raises ComponentUnavailable."""
    group = f"opentelemetry_{signal}_exporter"
    for ep in entry_points(group=group, name=name):
        try:
            return ep.load()
        except ImportError as exc:
            raise ComponentUnavailable(f"{signal} exporter {name!r} failed to import: {exc}") from exc
    raise ComponentUnavailable(f"no {signal} exporter named {name!r} (entry-point group {group})")


def sink_name_of(exporter_class: Any) -> str | None:
    """The short sink name behind one of our exporter classes, if it is one."""
    sink_class = getattr(exporter_class, "sink_class", None)
    return getattr(sink_class, "name", None)


#: The official OTLP exporter classes per protocol and signal, as import paths.
_OTLP_CLASSES: dict[str, dict[str, str]] = {
    "grpc": {
        "traces": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter",
        "logs": "opentelemetry.exporter.otlp.proto.grpc._log_exporter:OTLPLogExporter",
        "metrics": "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter",
    },
    "http/protobuf": {
        "traces": "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter",
        "logs": "opentelemetry.exporter.otlp.proto.http._log_exporter:OTLPLogExporter",
        "metrics": "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
    },
}


def otlp_endpoint_configured(
    signal: str, settings: Settings, environ: Mapping[str, str] | None = None
) -> bool:
    """Is a collector named for ``signal``: ``otlp_endpoint`` (argument or the generic variable) or the
    signal's own ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT``?"""
    environ = os.environ if environ is None else environ
    own = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    return bool(settings.otlp_endpoint or own)


def exporter_names(
    signal: str, settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], bool]:
    """The exporters ``setup()`` attaches for ``signal``, and whether it left a default ``otlp`` out.

    Local first: the default lists name ``otlp``, but with no endpoint configured nothing listens at the
    exporter's default address on a laptop, so that signal stays local. ``otlp`` named explicitly
    (argument or ``OTEL_<SIGNAL>_EXPORTER``) is always attached.
    """
    names: tuple[str, ...] = getattr(settings, f"{signal}_exporter")
    if (
        "otlp" in names
        and settings.sources.get(f"{signal}_exporter") == "default"
        and not otlp_endpoint_configured(signal, settings, environ)
    ):
        return tuple(name for name in names if name != "otlp"), True
    return names, False


def otlp_exporter(signal: str, settings: Settings, environ: Mapping[str, str] | None = None) -> Any:
    """The official OTLP exporter for ``signal``.

    Precedence, as the OTel spec has it: a ``setup()`` argument, then the signal's own variable
    (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``_PROTOCOL``, used as given), then the generic one.
    """
    environ = os.environ if environ is None else environ
    kwargs: dict[str, Any] = {"timeout": settings.otlp_timeout_millis / 1000}
    protocol = settings.otlp_protocol
    own_protocol = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "").strip().lower()
    if settings.sources.get("otlp_protocol") != "argument" and own_protocol in _OTLP_CLASSES:
        protocol = own_protocol
    own_endpoint = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if settings.otlp_endpoint and (settings.sources.get("otlp_endpoint") == "argument" or not own_endpoint):
        # Over HTTP the base endpoint gets the signal path, as the spec says for OTEL_EXPORTER_OTLP_ENDPOINT.
        base = settings.otlp_endpoint
        kwargs["endpoint"] = base if protocol == "grpc" else f"{base.rstrip('/')}/v1/{signal}"
    module_name, _, attr = _OTLP_CLASSES[protocol][signal].partition(":")
    return getattr(importlib.import_module(module_name), attr)(**kwargs)


def console_exporter(signal: str) -> Any:
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return {
        "traces": ConsoleSpanExporter,
        "logs": ConsoleLogRecordExporter,
        "metrics": ConsoleMetricExporter,
    }[signal]()
