"""Zero-code setup: ``opentelemetry-instrument python app.py`` builds the otel-tele pipeline.

The distro and configurator are registered under the ``opentelemetry_distro`` and
``opentelemetry_configurator`` entry-point groups; the configurator calls :func:`otel_tele.setup`,
so every ``OTEL_*`` and ``OTEL_TELE_*`` variable applies exactly as with the one line, including our
exporters chosen by name (``OTEL_LOGS_EXPORTER=otel_tele_sqlite,otlp``).

Example::

    OTEL_SERVICE_NAME=arm-server OTEL_LOGS_EXPORTER=otel_tele_sqlite,otlp \\
        opentelemetry-instrument python app.py
"""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

from ._internal import guard


class OtelTeleDistro(BaseDistro):  # type: ignore[misc]
    """Pre-sets only what instrumentors read before setup() could: the stable HTTP semantic
    conventions, so ``opentelemetry-instrument`` emits what ``instrument_app`` emits
    (``http.server.request.duration`` in seconds). Every other default lives in setup()'s option table."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        super().load_instrumentor(entry_point, **kwargs)
        if entry_point.name == "fastapi":
            with guard("FastAPI request telemetry"):
                from otel_tele.instrumentation.robot.fastapi import instrument_new_apps

                instrument_new_apps()


class OtelTeleConfigurator(_BaseConfigurator):
    """Builds the global pipeline from the environment when auto-instrumentation starts."""

    def _configure(self, **kwargs: Any) -> None:
        from ._setup import setup

        with guard("opentelemetry-instrument configuration"):
            setup()
