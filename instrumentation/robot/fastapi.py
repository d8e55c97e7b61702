"""FastAPI instrumentation for the robot server (spec 004): every ``/api/`` request → a ``web_requests`` row.

Usage::

    import otel_tele
    from otel_tele.http_robot import debug_router
    from otel_tele.instrumentation.robot.fastapi import instrument_app

    otel_tele.setup(service_name="arm-server")
    app = FastAPI()
    instrument_app(app)                  # before the app starts serving
    app.include_router(debug_router())   # optional: GET /api/debug/query?table=…&limit=…

``instrument_app`` uses ``opentelemetry-instrumentation-fastapi`` with the stable HTTP semantic
conventions (``http.server.request.duration`` in seconds, ``http.route`` templates), then adds a small
ASGI middleware that, for ``/api/`` paths, takes the correlation id from ``X-Correlation-ID`` (or makes
one), echoes it on the response and records the request parameters (query and JSON/form body, with
password/token/api_key/authorization-like fields scrubbed) on the server span. The SQLite sink maps
those server spans to ``web_requests`` (endpoint = route template, response_ms, status_code, ok …).

Configuration: ``prefix`` (default ``/api/``), ``excluded_urls`` (as the OTel instrumentation). The
providers are those of ``telemetry=`` or of the global ``setup()`` pipeline, else of
``get_collector()``'s standalone pipeline. ``uninstrument_app(app)`` restores the app.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from otel_tele._pipeline import Pipeline
from otel_tele._scrub import default_header_sanitizing
from otel_tele._setup import get_telemetry

from ._default import get_collector
from ._middleware import FreshContext, RequestTelemetryMiddleware, current_correlation_id, scrub

try:
    from fastapi import FastAPI
    from opentelemetry.instrumentation import _semconv
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"{exc}; install it with: pip install 'otel-tele[fastapi]'") from exc

__all__ = ["current_correlation_id", "instrument_app", "scrub", "uninstrument_app"]

_log = logging.getLogger("otel_tele")
_MARK = "_otel_tele_instrumented"


def _use_stable_http_semconv() -> None:
    """``http.server.request.duration`` (s) and ``http.route`` need the stable HTTP conventions."""
    os.environ.setdefault(_semconv.OTEL_SEMCONV_STABILITY_OPT_IN, "http")
    stability = _semconv._OpenTelemetrySemanticConventionStability
    stability._initialize()  # type: ignore[no-untyped-call]
    http = _semconv._OpenTelemetryStabilitySignalType.HTTP
    if stability._get_opentelemetry_stability_opt_in_mode(http) is _semconv._StabilityMode.DEFAULT:
        _log.info("switching HTTP instrumentation to the stable semantic conventions")
        stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING[http] = _semconv._StabilityMode.HTTP


def _providers(telemetry: Pipeline | None) -> Pipeline:
    if telemetry is not None:
        return telemetry
    found = get_telemetry()
    if found is not None:
        return found
    return get_collector().telemetry


def instrument_app(
    app: FastAPI,
    *,
    telemetry: Pipeline | None = None,
    prefix: str = "/api/",
    excluded_urls: str | None = None,
) -> FastAPI:
    """Instrument ``app`` (idempotent). Returns the app.

    Example::

        app = instrument_app(FastAPI())
    """
    if getattr(app, _MARK, False):
        _log.warning("instrument_app: app already instrumented")
        return app
    _use_stable_http_semconv()
    default_header_sanitizing()
    pipeline = _providers(telemetry)
    kwargs: dict[str, Any] = {
        "tracer_provider": pipeline.tracer_provider,
        "meter_provider": pipeline.meter_provider,
        "exclude_spans": ["receive", "send"],
    }
    if excluded_urls is not None:
        kwargs["excluded_urls"] = excluded_urls
    FastAPIInstrumentor.instrument_app(app, **kwargs)
    _add_request_telemetry(app, prefix)
    return app


def _add_request_telemetry(app: FastAPI, prefix: str) -> None:
    """otel-tele's part, on an app the OTel FastAPI instrumentation has already instrumented."""
    instrumented_build = app.build_middleware_stack
    app.build_middleware_stack = lambda: FreshContext(instrumented_build())  # type: ignore[method-assign]
    app.add_middleware(RequestTelemetryMiddleware, prefix=prefix)
    setattr(app, _MARK, True)


def instrument_new_apps() -> None:
    """The zero-code path (``opentelemetry-instrument uvicorn app:app``): after the OTel FastAPI
    instrumentor has replaced ``fastapi.FastAPI``, every app constructed from then on also gets what
    :func:`instrument_app` adds (correlation id, scrubbed params on the server span). The distro calls
    this; the HTTP conventions are the stable ones because the distro opts in before instrumentors load.
    """
    import fastapi

    instrumented: Any = fastapi.FastAPI
    if getattr(instrumented, _MARK, False):
        return

    class _RequestTelemetryFastAPI(instrumented):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            _add_request_telemetry(self, "/api/")

    setattr(_RequestTelemetryFastAPI, _MARK, True)
    fastapi.FastAPI = _RequestTelemetryFastAPI  # type: ignore[misc]


def uninstrument_app(app: FastAPI) -> None:
    """Undo :func:`instrument_app`: the app's middleware stack is as it was before."""
    if not getattr(app, _MARK, False):
        return
    vars(app).pop("build_middleware_stack", None)  # our FreshContext wrapper
    FastAPIInstrumentor.uninstrument_app(app)
    app.user_middleware[:] = [m for m in app.user_middleware if m.cls is not RequestTelemetryMiddleware]  # type: ignore[comparison-overlap]
    app.middleware_stack = None
    setattr(app, _MARK, False)
