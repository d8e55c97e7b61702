"""HTTP routes for explicit telemetry generation (spec 003), as a FastAPI ``APIRouter``.

- ``POST /v1/telemetry/captures`` — body
  ``{"source": {"type": "run", "runId": "…"},
  "output": {"captureKey": "…", "directory": null, "overwrite": false}}``;
  200 ``{"capture": {generated, alreadyExists, generatedAtUtc, sourceRunId, warnings, supportsClassMetrics,
  classCoverage, classes}}``; 409 (same shape, ``alreadyExists: true``) when a bundle exists and
  ``overwrite`` is false; 400 ``{"error": …}`` (also for a body nested deeper than 32 levels);
  413 ``{"error": …}`` for a body over 64 KiB; 404 ``{"error": …}``; 500 problem details.
- ``GET /v1/flow/runs`` and ``GET /v1/flow/runs/{runId}`` — FlowTime run facts with
  ``telemetry: {available, generatedAtUtc, warningCount, sourceRunId}``; also at spec 003's own paths
  ``GET /v1/runs`` and ``GET /v1/runs/{runId}``, kept for its clients. The ``flow`` prefix tells them
  from the FDA solver runs (``/v1/fda/runs``, ``otel-tele runs``).

No response carries a filesystem path. The capture goes to ``<telemetry_root>/<captureKey>``,
``<telemetry_root>/<directory>`` (relative only), or the run's ``model/telemetry``.

Example::

    from fastapi import FastAPI
    from otel_tele.http_capture import capture_router

    app = FastAPI()
    app.include_router(capture_router(runs_root="data/runs", telemetry_root="data/captures"))
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

try:
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the capture HTTP routes need FastAPI: pip install 'otel-tele[fastapi]'") from exc

from ._capture_service import CaptureService, InvalidRequest
from ._http_limits import BodyTooLarge, MalformedBody, load_json, read_body
from .exporters.capture import CaptureError, RunNotFound

__all__ = ["capture_router"]

_log = logging.getLogger("otel_tele")
_SOURCE_ERROR = "source.type must be 'run' and source.runId is required."
#: A capture request is a few hundred bytes; anything near this is not one.
MAX_CAPTURE_BODY_BYTES = 64 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _problem(detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": "Telemetry generation failed", "status": 500, "detail": detail},
        status_code=500,
        media_type="application/problem+json",
    )


def _parse(raw: bytes) -> tuple[str, dict[str, Any]]:
    """(runId, output) from the request body, or InvalidRequest with FlowTime's messages."""
    if not raw.strip():
        raise InvalidRequest("Request body is required.")
    try:
        body = load_json(raw)
    except MalformedBody as exc:
        raise InvalidRequest(str(exc)) from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body is required.")
    source = body.get("source")
    if (
        not isinstance(source, dict)
        or source.get("type") not in (None, "run")
        or not isinstance(source.get("runId"), str)
        or not source["runId"].strip()
    ):
        raise InvalidRequest(_SOURCE_ERROR)
    output = body.get("output")
    if output is None:
        output = {}
    if not isinstance(output, dict):
        raise InvalidRequest("output must be an object.")
    for key in ("captureKey", "directory"):
        if output.get(key) is not None and not isinstance(output[key], str):
            raise InvalidRequest(f"output.{key} must be a string.")
    if not isinstance(output.get("overwrite", False), bool):
        raise InvalidRequest("output.overwrite must be true or false.")
    return source["runId"], output


def _scrub(message: str, *roots: Path | None) -> str:
    for root in roots:
        if root is not None:
            for form in {str(root), str(root.resolve())}:
                message = message.replace(form, "<root>")
    return message


def capture_router(
    *,
    runs_root: str | Path | None = None,
    telemetry_root: str | Path | None = None,
    prefix: str = "",
    max_body_bytes: int = MAX_CAPTURE_BODY_BYTES,
) -> APIRouter:
    """The routes above over ``runs_root`` (default ``<data_dir>/runs``) and ``telemetry_root``
    (default ``<data_dir>/captures``). A POST body over ``max_body_bytes`` is a 413, one nested
    deeper than 32 levels a 400."""
    from ._settings import resolve

    data_dir = Path(resolve({}).data_dir)
    generator = CaptureService(
        Path(runs_root) if runs_root is not None else data_dir / "runs",
        Path(telemetry_root) if telemetry_root is not None else data_dir / "captures",
    )
    router = APIRouter(prefix=prefix, tags=["telemetry"])

    @router.post("/v1/telemetry/captures")
    async def create_capture(request: Request) -> JSONResponse:
        try:
            run_id, output = _parse(await read_body(request.stream(), request.headers, max_body_bytes))
            result = await run_in_threadpool(
                generator.generate,
                run_id,
                capture_key=output.get("captureKey"),
                directory=output.get("directory"),
                overwrite=bool(output.get("overwrite", False)),
            )
        except (InvalidRequest, MalformedBody) as exc:
            return _error(400, str(exc))
        except BodyTooLarge as exc:
            return _error(413, str(exc))
        except RunNotFound as exc:
            return _error(404, str(exc))
        except CaptureError as exc:
            _log.error("telemetry generation failed: %s", exc)
            return _problem(_scrub(str(exc), generator.runs_root, generator.telemetry_root))
        except Exception as exc:
            _log.exception("telemetry generation failed")
            return _problem(f"internal error ({type(exc).__name__}); see the server log")
        return JSONResponse(result.as_json(), status_code=409 if result.already_exists else 200)

    @router.get("/v1/flow/runs")
    @router.get("/v1/runs")  # spec 003's path
    async def list_runs() -> JSONResponse:
        items = await run_in_threadpool(generator.runs)
        return JSONResponse({"items": items, "totalCount": len(items)})

    @router.get("/v1/flow/runs/{run_id:path}")
    @router.get("/v1/runs/{run_id:path}")  # spec 003's path
    async def get_run(run_id: str) -> JSONResponse:
        try:
            run_dir = generator.run_dir(run_id)
        except InvalidRequest as exc:
            return _error(400, str(exc))
        except RunNotFound as exc:
            return _error(404, str(exc))
        return JSONResponse(await run_in_threadpool(generator.summary, run_dir))

    return router
