"""HTTP routes over FDA runs (spec 000), as a FastAPI ``APIRouter``: list, show, artifact download.

- ``GET /v1/fda/runs?flow=&mode=&limit=`` — runs newest first (``otel-tele runs list``).
- ``GET /v1/fda/runs/{run_id}`` — one run: summary, manifest, events, trajectory and ``artifacts``
  (name, kind, size, sha256) (``otel-tele runs show``).
- ``GET /v1/fda/runs/{run_id}/artifacts/{name}`` — the artifact's bytes, streamed from disk, with its
  sha256 in ``Digest``-style header ``X-Content-SHA256``.

400 ``{"error": …}`` for an unsafe run id or artifact name (no path ever leaves the capsule root),
404 ``{"error": …}`` for an unknown run or artifact. ``otel-tele serve --http`` mounts it behind serve's
Host and token rules.

Example::

    from fastapi import FastAPI
    from otel_tele.http_runs import runs_router

    app = FastAPI()
    app.include_router(runs_router(root="telemetry/telematry_cfs"))
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

try:
    from fastapi import APIRouter
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the FDA run HTTP routes need FastAPI: pip install 'otel-tele[fastapi]'") from exc

from .runs import Runs

__all__ = ["runs_router"]

_log = logging.getLogger("otel_tele")
#: The most runs one list request returns.
MAX_LIST = 1000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
        return {"runs": await run_in_threadpool(runs.list, flow=flow, mode=mode, limit=limit)}

    @router.get("/v1/fda/runs/{run_id}")
    async def show_run(run_id: str) -> Any:
        try:
            return await run_in_threadpool(runs.show, run_id)
        except ValueError as exc:
            return _error(400, str(exc))
        except KeyError:
            return _error(404, f"no run {run_id[:80]!r}")
        except Exception as exc:  # an unreadable capsule: say what failed, never where
            _log.exception("GET /v1/fda/runs/%s failed", run_id[:80])
            return _error(500, f"run could not be read ({type(exc).__name__})")

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
