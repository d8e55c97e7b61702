"""The FDA domain's HTTP routes (spec 000), as a FastAPI ``APIRouter``: list, show and query runs,
download artifacts. Read-only, over the same query API as ``otel-tele runs`` (:class:`otel_tele.runs.Runs`).

- ``GET /v1/fda/runs?flow=&mode=&limit=`` — runs newest first (``otel-tele runs list``).
- ``GET /v1/fda/runs/{run_id}`` — one run: summary, manifest, events, trajectory and ``artifacts``
  (name, kind, size, sha256) (``otel-tele runs show``).
- ``GET /v1/fda/runs/{run_id}/iterations?columns=iter,E&phase=&from_iter=&to_iter=&limit=&offset=``
  — the run's iteration rows in recording order, a page at a time: ``{"columns", "rows",
  "next_offset"}`` (the query ``otel-tele runs query`` answers with SQL, without taking SQL text:
  columns are checked against the schema and every value is bound).
- ``GET /v1/fda/runs/{run_id}/artifacts/{name}`` — the artifact's bytes, streamed from disk, with its
  sha256 in ``Digest``-style header ``X-Content-SHA256``.

400 ``{"error": …}`` for an unsafe run id or artifact name (no path ever leaves the capsule root), an
unknown column or a bad page; 404 ``{"error": …}`` for an unknown run or artifact. JSON has no NaN or
infinity: such values (a diverging solver's energy) are sent as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``. ``otel-tele serve --http`` mounts the router behind serve's Host
and token rules.

Example::

    from fastapi import FastAPI
    from otel_tele.http_fda import runs_router

    app = FastAPI()
    app.include_router(runs_router(root="telemetry/telematry_cfs"))
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

try:
    from fastapi import APIRouter
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the FDA run HTTP routes need FastAPI: pip install 'otel-tele[fastapi]'") from exc

from .runs import MAX_ITERATIONS, Runs

__all__ = ["runs_router"]

_log = logging.getLogger("otel_tele")
#: The most runs one list request returns.
MAX_LIST = 1000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float as a string (JSON cannot carry NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(item) for k, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def runs_router(*, root: str | Path | None = None, prefix: str = "") -> APIRouter:
    """The routes above over the capsule root ``root`` (default ``<OTEL_TELE_DATA_DIR>/telematry_cfs``)."""
    runs = Runs(root)
    router = APIRouter(prefix=prefix, tags=["fda"])

    @router.get("/v1/fda/runs")
    async def list_runs(flow: str | None = None, mode: str | None = None, limit: int = 50) -> Any:
        if not 1 <= limit <= MAX_LIST:
            return _error(400, f"limit must be 1-{MAX_LIST}")
        if not (runs.root / "runs").is_dir() and not (runs.root / "flows").is_dir():
            return {"runs": []}
        return _finite({"runs": await run_in_threadpool(runs.list, flow=flow, mode=mode, limit=limit)})

    @router.get("/v1/fda/runs/{run_id}")
    async def show_run(run_id: str) -> Any:
        try:
            return _finite(await run_in_threadpool(runs.show, run_id))
        except ValueError as exc:
            return _error(400, str(exc))
        except KeyError:
            return _error(404, f"no run {run_id[:80]!r}")
        except Exception as exc:  # an unreadable capsule: say what failed, never where
            _log.exception("GET /v1/fda/runs/%s failed", run_id[:80])
            return _error(500, f"run could not be read ({type(exc).__name__})")

    @router.get("/v1/fda/runs/{run_id}/iterations")
    async def run_iterations(
        run_id: str,
        columns: str | None = None,
        phase: str | None = None,
        from_iter: int | None = None,
        to_iter: int | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> Any:
        if not 1 <= limit <= MAX_ITERATIONS:
            return _error(400, f"limit must be 1-{MAX_ITERATIONS}")
        chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        try:
            page = await run_in_threadpool(
                runs.iterations,
                run_id,
                columns=chosen,
                phase=phase,
                from_iter=from_iter,
                to_iter=to_iter,
                limit=limit,
                offset=offset,
            )
        except ValueError as exc:
            return _error(400, str(exc))
        except KeyError:
            return _error(404, f"no run {run_id[:80]!r}")
        except Exception as exc:  # an unreadable capsule: say what failed, never where
            _log.exception("GET /v1/fda/runs/%s/iterations failed", run_id[:80])
            return _error(500, f"run could not be read ({type(exc).__name__})")
        return _finite(page)

    @router.get("/v1/fda/runs/{run_id}/artifacts/{name}")
    async def download_artifact(run_id: str, name: str) -> Any:
        try:
            path, entry = await run_in_threadpool(runs.artifact, run_id, name)
        except ValueError as exc:
            return _error(400, str(exc))
        except KeyError:
            return _error(404, f"run {run_id[:80]!r} has no artifact {name[:80]!r}")
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=name,
            headers={"X-Content-SHA256": str(entry.get("sha256") or "")},
        )

    return router
