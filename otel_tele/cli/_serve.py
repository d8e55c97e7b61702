"""``otel-tele serve``: receive OTLP (gRPC, and HTTP with ``--otlp-http``) from any language or
collector into our sinks, and serve the query routes over HTTP.

Access (see ``otel_tele._http_guard``): with a token (``--token-file`` or ``OTEL_TELE_SERVE_TOKEN``)
every HTTP route and OTLP call needs ``Authorization: Bearer <token>``; without one, serve binds
loopback only and answers read-only routes there, never state-changing ones. TLS for both with
``--tls-cert``/``--tls-key``."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .._http_guard import TOKEN_ENV, Access, AccessError, HttpGuard, access_for, grpc_credentials, load_token
from .._http_limits import BodyLimit
from .._internal import optional_module
from .._registry import domains

_log = logging.getLogger("otel_tele")
#: ``--otlp-http`` without an address: the port the OTLP specification gives OTLP/HTTP. Off unless
#: asked, because ``serve`` without options must keep binding only what it bound before (4317).
OTLP_HTTP_DEFAULT = "127.0.0.1:4318"


def routers() -> tuple[tuple[str, str], ...]:
    """Query routers mounted by ``--http``, one per registered domain that has one: module and
    factory (called with no arguments: each reads the settings), or an ``APIRouter`` instance."""
    found = []
    for domain in domains():
        if domain.router:
            module_name, _, attr = domain.router.partition(":")
            found.append((module_name, attr))
    return tuple(found)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="OTLP/gRPC and OTLP/HTTP receiver into the sinks (+ HTTP query routes)",
        description="Receive OTLP/gRPC (and OTLP/HTTP with --otlp-http) into the sinks and serve the "
        "query routes. Without a token, "
        "serve binds loopback addresses only, and there the read-only routes (GET: robot debug query, "
        "inference stats, runs, /docs, /openapi.json) and OTLP answer anyone on this machine; "
        "state-changing routes (POST captures) need a token. With a token every route and every OTLP "
        "call needs 'Authorization: Bearer <token>'.",
    )
    parser.add_argument(
        "--otlp-grpc",
        default="127.0.0.1:4317",
        metavar="HOST:PORT",
        help="where to receive OTLP/gRPC (default 127.0.0.1:4317)",
    )
    parser.add_argument(
        "--otlp-http",
        nargs="?",
        const=OTLP_HTTP_DEFAULT,
        default=None,
        metavar="HOST:PORT",
        help=f"also receive OTLP/HTTP (protobuf or JSON) here; alone: {OTLP_HTTP_DEFAULT}, the OTLP "
        "default port (off unless given)",
    )
    parser.add_argument("--http", default=None, metavar="HOST:PORT", help="also serve the query routes here")
    parser.add_argument(
        "--otlp-max-message-bytes",
        type=int,
        default=None,
        metavar="N",
        help="largest OTLP request accepted (default 16 MiB)",
    )
    parser.add_argument(
        "--otlp-max-inflight-bytes",
        type=int,
        default=None,
        metavar="N",
        help="OTLP bytes decoded at once, both transports together; beyond it requests get "
        "RESOURCE_EXHAUSTED (gRPC) or 429 (HTTP) and clients retry (default 16 MiB; decoding memory "
        "stays under ~33x this)",
    )
    parser.add_argument(
        "--otlp-dedup-window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a request re-sent within this many seconds (a collector retrying after a timeout) is "
        "acknowledged, not stored again; the window is kept in the data folder across clean "
        "restarts (default 600; 0: off)",
    )
    parser.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help=f"bearer token required by every route and OTLP call (or set {TOKEN_ENV}); "
        "needed to bind a non-loopback address",
    )
    parser.add_argument("--tls-cert", default=None, metavar="PEM", help="serve HTTP and OTLP over TLS")
    parser.add_argument("--tls-key", default=None, metavar="PEM", help="private key of --tls-cert")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this Host header (default: loopback names and the bound address)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow cross-origin reads, and OTLP/HTTP exports from a browser SDK, from this origin "
        "(default: no CORS)",
    )
    parser.set_defaults(handler=run)


def build_http_app(access: Access | None = None, telemetry: Any = None) -> Any:
    """A FastAPI app with every domain's query router that this build has and the dashboard under
    ``/ui/`` (with ``telemetry``, its live books), behind ``access`` (default: loopback Host names,
    no token, no CORS)."""
    from fastapi import APIRouter, FastAPI
    from fastapi.exceptions import RequestValidationError

    app = FastAPI(title="otel-tele")
    for module_name, attr in routers():
        module = optional_module(module_name)
        if module is None:
            continue
        router = getattr(module, attr)
        app.include_router(router if isinstance(router, APIRouter) else router())
    from ..dashboard import dashboard_router

    app.include_router(dashboard_router(telemetry))
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_middleware(BodyLimit)
    access = access or Access()
    if access.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(access.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )
    app.add_middleware(HttpGuard, access=access)  # outermost: nothing runs before it
    return app


async def _bad_request(_request: Any, exc: Exception) -> Any:
    """Malformed parameters are a 400 naming the parameter (FastAPI's default is 422 and echoes input)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    names = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "body" for e in errors})
    return JSONResponse({"detail": f"invalid request parameter: {', '.join(names) or 'request'}"}, 400)


class ServeError(Exception):
    """A condition the user must fix (an address that is busy or malformed): one line, exit 1."""


def parse_address(option: str, value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) or raise :class:`ServeError` naming the option."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ServeError(f"{option} {value!r}: expected HOST:PORT, e.g. 127.0.0.1:4317")
    return host, int(port)


def _bind(option: str, host: str, port: int) -> socket.socket:
    """Bind a listening address here, so that a busy port is one clear error before anything starts."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: uvicorn writes a response's head and body separately,
        # and Nagle held the body for the client's delayed ACK (~40 ms per small OTLP/JSON reply).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise ServeError(f"{option} {host}:{port}: cannot listen ({exc.strerror or exc})") from None
    return sock


def _start_http(sock: socket.socket, app: Any, tls: tuple[str, str] | None, option: str) -> Any:
    """Serve the ASGI ``app`` on the bound ``sock`` (uvicorn, in a daemon thread) once it started."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"otel-tele{option[1:]}", daemon=True
    )
    thread.start()
    while not server.started:  # uvicorn exposes no readiness event
        if not thread.is_alive():
            raise ServeError(f"{option} on {sock.getsockname()}: the HTTP server did not start")
        time.sleep(0.01)
    return server


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ServeError as exc:
        print(f"otel-tele serve: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    import otel_tele

    from .._otlp_dedup import DEFAULT_WINDOW_S, FILE_NAME, RecentRequests
    from .._receiver import OtlpGrpcReceiver, OtlpIngest
    from .._receiver_http import OtlpHttpApp

    grpc_host, grpc_port = parse_address("--otlp-grpc", args.otlp_grpc)
    otlp_http_address = parse_address("--otlp-http", args.otlp_http) if args.otlp_http else None
    http_address = parse_address("--http", args.http) if args.http else None
    try:  # every access check before anything listens
        access = access_for(
            [args.otlp_grpc, *(a for a in (args.otlp_http, args.http) if a)],
            token=load_token(args.token_file),
            extra_hosts=args.allow_host,
            cors_origins=args.cors_origin,
        )
        tls = _tls_files(args.tls_cert, args.tls_key)
    except AccessError as exc:
        print(f"otel-tele serve: {exc}", file=sys.stderr)
        return 2
    window = DEFAULT_WINDOW_S if args.otlp_dedup_window is None else args.otlp_dedup_window
    if not math.isfinite(window) or window < 0:
        print("otel-tele serve: --otlp-dedup-window must be 0 or more seconds", file=sys.stderr)
        return 2
    if grpc_port:  # probe first: grpc's own bind failure also prints a C-core log line
        _bind("--otlp-grpc", grpc_host, grpc_port).close()
    otlp_http_sock = _bind("--otlp-http", *otlp_http_address) if otlp_http_address else None
    http_sock = _bind("--http", *http_address) if http_address else None
    # The server's own telemetry stays here: forwarding what it receives would loop, and its own
    # metrics go to its sinks and its /metrics, over OTLP only when OTEL_METRICS_EXPORTER asks.
    # Every record that arrives is also kept in the general store, unless OTEL_TELE_SINKS says
    # otherwise (setup() alone does not attach it: README, General store).
    from .._settings import DEFAULT_SINKS

    serve_sinks = None if os.environ.get("OTEL_TELE_SINKS", "").strip() else [*DEFAULT_SINKS, "store"]
    telemetry = otel_tele.setup(
        local=True,
        sinks=serve_sinks,
        service_name="otel-tele-serve",
        traces_exporter="none",
        logs_exporter="none",
        metrics_exporter=None if os.environ.get("OTEL_METRICS_EXPORTER", "").strip() else "prometheus",
    )
    limits = {
        "max_message_bytes": args.otlp_max_message_bytes,
        "max_inflight_bytes": args.otlp_max_inflight_bytes,
    }
    recent = (
        RecentRequests(window, path=Path(telemetry.settings.data_dir) / FILE_NAME) if window > 0 else None
    )
    servers: list[Any] = []
    receiver = None
    try:
        if "prometheus" in telemetry.settings.metrics_exporter and telemetry.prometheus_address is None:
            raise ServeError("the Prometheus endpoint could not start (OTEL_EXPORTER_PROMETHEUS_PORT)")
        # One ingest for both transports: one memory budget, one set of books.
        ingest = OtlpIngest(telemetry, recent=recent, **{k: v for k, v in limits.items() if v is not None})
        try:
            receiver = OtlpGrpcReceiver(
                telemetry,
                f"{grpc_host}:{grpc_port}",
                authorize=access.grpc_authorized if access.token is not None else None,
                credentials=grpc_credentials(*tls) if tls else None,
                ingest=ingest,
            )
        except (OSError, RuntimeError) as exc:
            raise ServeError(f"--otlp-grpc {args.otlp_grpc}: {exc}") from None
        addresses = [f"OTLP/gRPC on {grpc_host}:{receiver.port}"]
        scheme = "https" if tls else "http"
        if otlp_http_sock is not None:
            servers.append(_start_http(otlp_http_sock, OtlpHttpApp(ingest, access), tls, "--otlp-http"))
            host, port = otlp_http_sock.getsockname()[:2]
            addresses.append(f"OTLP/HTTP on {scheme}://{host}:{port}")
        if http_sock is not None:
            servers.append(_start_http(http_sock, build_http_app(access, telemetry), tls, "--http"))
            host, port = http_sock.getsockname()[:2]
            addresses.append(f"HTTP on {scheme}://{host}:{port}")
        if telemetry.prometheus_address is not None:
            host, port = telemetry.prometheus_address
            addresses.append(f"Prometheus on http://{host}:{port}/metrics")
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        sinks = ", ".join(telemetry.sinks) or "none"
        print(f"otel-tele serve: {'; '.join(addresses)}; sinks: {sinks}", flush=True)
        stop.wait()
    finally:
        for server in servers:
            server.should_exit = True
        if receiver is not None:
            receiver.stop(grace_s=0.5)
        telemetry.shutdown()
        if recent is not None:
            recent.save()  # after the sinks drained: what it names is stored
    return 0


def _tls_files(cert: str | None, key: str | None) -> tuple[str, str] | None:
    if cert is None and key is None:
        return None
    if not cert or not key:
        raise AccessError("TLS needs both --tls-cert and --tls-key")
    for path in (cert, key):
        if not Path(path).is_file():
            raise AccessError(f"TLS file not found: {Path(path).name}")
    return cert, key
