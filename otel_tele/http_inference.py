"""``GET /telemetry/footprint``, ``/telemetry/60day`` and ``/telemetry/efficiency`` (spec 002).

A FastAPI ``APIRouter`` over the same query API as the CLI (without the store's location: no
response carries a path or connection details). Read-only: GET routes only; query
parameters are validated (``hours`` a positive number up to 400 days, ``component`` at most 256
characters) and bound as SQL parameters, never spliced into SQL.

Example::

    from fastapi import FastAPI
    from otel_tele.http_inference import inference_router

    app = FastAPI()
    app.include_router(inference_router())   # the process's TelemetryLogger
"""

from __future__ import annotations

from typing import Annotated, Any

try:
    from fastapi import APIRouter, HTTPException, Query
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"{exc}; the telemetry routes need pip install 'otel-tele[fastapi]'") from exc

from .exporters.postgres.schema import MAX_KEY_CHARS

_MAX_HOURS = 24 * 400


def inference_router(logger: Any = None, *, prefix: str = "/telemetry") -> APIRouter:
    """Routes reading through ``logger`` (a ``TelemetryLogger``; default: the process's one).

    Each request flushes the pipeline first, then queries; FastAPI runs these sync handlers in its
    thread pool, so the event loop never waits on the database.
    """
    router = APIRouter(prefix=prefix, tags=["telemetry"])

    def query(method: str, *args: Any) -> dict[str, Any]:
        from otel_tele.instrumentation.inference import get_telemetry_logger

        try:
            result: dict[str, Any] = (logger or get_telemetry_logger()).query(method, *args)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        return result

    @router.get("/footprint", summary="Database storage metrics of the inference telemetry")
    def footprint() -> dict[str, Any]:
        # Where the store lives (a file path, a DSN's host and database) is the operator's to see
        # with the CLI, never an HTTP client's.
        return {k: v for k, v in query("footprint").items() if k != "location"}

    @router.get("/60day", summary="60-day performance trends per model (best efficiency first)")
    def sixty_day(
        component: Annotated[str | None, Query(max_length=MAX_KEY_CHARS)] = None,
    ) -> dict[str, Any]:
        return query("statistics_60day", None, component)

    @router.get("/efficiency", summary="Token-weighted efficiency per model over a window")
    def efficiency(
        hours: Annotated[float, Query(gt=0, le=_MAX_HOURS)] = 24,
        component: Annotated[str | None, Query(max_length=MAX_KEY_CHARS)] = None,
    ) -> dict[str, Any]:
        return query("aggregated_efficiency", component, hours)

    return router
