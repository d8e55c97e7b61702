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

from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

from ._internal import guard


class OtelTeleDistro(BaseDistro):  # type: ignore[misc]
    """Nothing to pre-set: defaults live in setup()'s option table."""

    def _configure(self, **kwargs: Any) -> None:
        return None


class OtelTeleConfigurator(_BaseConfigurator):
    """Builds the global pipeline from the environment when auto-instrumentation starts."""

    def _configure(self, **kwargs: Any) -> None:
        from ._setup import setup

        with guard("opentelemetry-instrument configuration"):
            setup()
