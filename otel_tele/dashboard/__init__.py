"""The built-in dashboard: server-rendered pages over every domain's stores and the pipeline's books.

Mounted by ``otel-tele serve --http`` under ``/ui/`` (behind serve's Host allow-list and token), and
by ``otel-tele ui`` over a data directory alone. Each registered domain adds its page through its
registry entry (``Domain.dashboard``); the core pages are the pipeline's health, the live tail and
the SQL console (:mod:`otel_tele.sql`). Charts are drawn
by uPlot (vendored in ``static/`` with its licence: small, fast on 100k-point series, no
dependencies); pages work without JavaScript except for the charts. Nothing is fetched from a CDN.

Example::

    from fastapi import FastAPI
    from otel_tele.dashboard import dashboard_router

    app = FastAPI()
    app.include_router(dashboard_router(data_dir="telemetry"))
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse

from .._http_guard import SESSION_COOKIE
from .._registry import domains
from .._settings import resolve
from ._health import BooksHistory, health_page
from ._page import Page, PageError, esc
from ._tail import LiveTail, tail_page

try:
    from .. import sql as _sql_api
    from . import _sql
except ImportError:  # pragma: no cover - a build without duckdb/pyarrow: no SQL page
    _sql = _sql_api = None  # type: ignore[assignment]

__all__ = ["Page", "PageError", "dashboard_router"]

_log = logging.getLogger("otel_tele")

#: Served from the package, by name only (nothing else is reachable under /ui/static/).
STATIC = {
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
    "app.js": "text/javascript",
    "app.css": "text/css",
}
#: No inline script, no third-party origin, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def domain_pages(settings: Any) -> list[Page]:
    """Each registered domain's page (a domain whose page cannot load here is left out, logged)."""
    pages = []
    for domain in domains():
        if not domain.dashboard:
            continue
        module_name, _, attr = domain.dashboard.partition(":")
        try:
            factory: Callable[[Any], Page] = getattr(importlib.import_module(module_name), attr)
            pages.append(factory(settings))
        except ImportError as exc:
            _log.info("otel-tele ui: no %s page in this build (%s)", domain.name, exc)
    return pages


def _layout(pages: list[Page], current: Page, body: str) -> str:
    nav = "".join(
        f'<a href="/ui/{esc(p.slug)}"{" aria-current=page" if p is current else ""}>{esc(p.title)}</a>'
        for p in pages
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1"><link rel=icon href="data:,">'
        f"<title>{esc(current.title)} · otel-tele</title>"
        '<link rel=stylesheet href="/ui/static/uPlot.min.css"><link rel=stylesheet href="/ui/static/app.css">'
        '<script src="/ui/static/uPlot.iife.min.js" defer></script>'
        '<script src="/ui/static/app.js" defer></script>'
        f"</head><body><header><b>otel-tele</b><nav>{nav}</nav></header><main><h1>{esc(current.title)}</h1>"
        f"{body}</main></body></html>"
    )


def _static_text(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def standalone(current: Page, body: str) -> str:
    """``body`` as a page that needs nothing else: the stylesheets and scripts inlined."""
    # "</script" cannot occur inside the inlined code: uPlot and app.js carry none.
    scripts = "".join(f"<script>{_static_text(n)}</script>" for n in ("uPlot.iife.min.js", "app.js"))
    styles = "".join(f"<style>{_static_text(n)}</style>" for n in ("uPlot.min.css", "app.css"))
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(current.title)} · otel-tele"
        f"</title>{styles}{scripts}</head><body><main><h1>{esc(current.title)}</h1>{body}</main></body></html>"
    )


def dashboard_router(
    telemetry: Any = None, *, data_dir: str | Path | None = None, sample_interval_s: float = 2.0
) -> Any:
    """A FastAPI ``APIRouter`` serving the dashboard under ``/ui/``.

    ``telemetry`` (what ``otel_tele.setup()`` returned) adds the live books; without it the pages
    read the stores under ``data_dir`` (default: the ``OTEL_TELE_DATA_DIR`` setting) only.
    """
    settings = (
        telemetry.settings
        if telemetry is not None
        else resolve({} if data_dir is None else {"data_dir": data_dir})
    )
    root = Path(data_dir) if data_dir is not None else Path(settings.data_dir)
    history = BooksHistory(telemetry, interval_s=sample_interval_s) if telemetry is not None else None
    if history is not None:
        history.start()
    tail = LiveTail()
    if telemetry is not None:
        telemetry.logger_provider.add_log_record_processor(tail)
    core_pages = [health_page(telemetry, root, history, settings), tail_page(telemetry)]
    sql_settings = settings if data_dir is None else resolve({"data_dir": data_dir})
    if _sql is not None:
        core_pages.append(_sql.sql_page(sql_settings))
    pages = sorted([*core_pages, *domain_pages(settings)], key=lambda p: p.order)
    by_slug = {page.slug: page for page in pages}
    router = APIRouter(tags=["dashboard"])
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    @router.get("/ui", include_in_schema=False)
    def index() -> Any:
        return RedirectResponse("/ui/health", status_code=307)

    @router.get("/ui/login", include_in_schema=False)
    def login() -> Any:
        body = (
            '<form id="login" method="post" data-login><label>Serve token '
            '<input type="password" name="token" '
            'autocomplete="current-password" required></label> <button type="submit">Sign in</button> '
            '<span data-login-status role="status"></span></form>'
            '<p class="note">The token is the one <code>otel-tele serve</code> was started with '
            "(<code>--token-file</code> or <code>OTEL_TELE_SERVE_TOKEN</code>). It is kept in an HttpOnly, "
            "same-site cookie for this server only.</p>"
        )
        return HTMLResponse(_layout(pages, Page("login", "Sign in", lambda _: ""), body), headers=headers)

    @router.post("/ui/session", include_in_schema=False)
    def session(request: Request) -> Any:
        # serve's guard has checked the bearer token before this runs: keep it as the session cookie.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return PlainTextResponse(
                "send the token as Authorization: Bearer", status_code=400, headers=headers
            )
        response = Response(status_code=204, headers=headers)
        response.set_cookie(
            SESSION_COOKIE,
            token.strip(),
            httponly=True,
            samesite="strict",
            path="/",
            secure=request.url.scheme == "https",
        )
        return response

    @router.get("/ui/tail/stream", include_in_schema=False)
    def tail_stream() -> Any:
        return StreamingResponse(
            tail.stream(), media_type="text/event-stream", headers={**headers, "Cache-Control": "no-store"}
        )

    @router.get("/ui/sql/download", include_in_schema=False)
    def sql_download(request: Request) -> Any:
        if _sql is None:
            return PlainTextResponse("SQL needs duckdb and pyarrow in this build", 404, headers=headers)
        try:
            body, media_type, name = _sql.download(sql_settings, request.query_params)
        except (PageError, _sql_api.SqlError) as exc:
            return PlainTextResponse(str(exc), status_code=400, headers=headers)
        return Response(
            body,
            media_type=media_type,
            headers={
                **headers,
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )

    @router.get("/ui/static/{name}", include_in_schema=False)
    def static(name: str) -> Any:
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404, headers=headers)
        data = resources.files(__package__).joinpath("static", name).read_bytes()
        return Response(data, media_type=STATIC[name], headers={**headers, "Cache-Control": "max-age=3600"})

    def _render(current: Page, query: Mapping[str, str]) -> Any:
        try:
            body = current.render(query)
            status = 200
        except PageError as exc:
            body, status = f'<p class="error">{esc(exc)}</p>', 400
        except KeyError as exc:
            body, status = f'<p class="error">not found: {esc(exc.args[0] if exc.args else "")}</p>', 404
        except Exception as exc:  # a store that cannot be read: say so on the page, keep serving
            _log.warning("otel-tele ui: page %s failed: %s", current.slug, type(exc).__name__)
            body, status = (
                f'<p class="error">this page could not read its store ({esc(type(exc).__name__)})</p>',
                500,
            )
        return HTMLResponse(_layout(pages, current, body), status_code=status, headers=headers)

    @router.get("/ui/{slug}", include_in_schema=False)
    def page(slug: str, request: Request) -> Any:
        current = by_slug.get(slug)
        if current is None:
            return PlainTextResponse("no such page", status_code=404, headers=headers)
        if request.query_params.get("export") == "html":
            return _export(current, request.query_params)
        return _render(current, request.query_params)

    def _export(current: Page, query: Any) -> Any:
        """The page as one self-contained HTML file (styles, uPlot and app.js inlined): a run's page
        can be mailed or archived and opens from disk, offline."""
        try:
            body = current.render(query)
        except PageError as exc:
            return PlainTextResponse(str(exc), status_code=400, headers=headers)
        except KeyError as exc:
            return PlainTextResponse(f"not found: {exc.args[0] if exc.args else ''}", 404, headers=headers)
        html = standalone(current, body)
        name = "".join(
            c if c.isalnum() or c in "-_" else "_" for c in "-".join([current.slug, *query.values()])
        )
        return Response(
            html.encode("utf-8"),
            media_type="text/html; charset=utf-8",
            headers={**headers, "Content-Disposition": f'attachment; filename="{name[:120]}.html"'},
        )

    return router
