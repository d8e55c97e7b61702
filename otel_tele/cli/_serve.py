"""``otel-tele serve``: receive OTLP from any language or collector into our sinks, and serve the
query routes over HTTP."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from .._http_limits import BodyLimit
from .._internal import optional_module

_log = logging.getLogger("otel_tele")

#: Query routers mounted by ``--http``: module and factory (called with no arguments: each reads the
#: settings), or an ``APIRouter`` instance.
ROUTERS: tuple[tuple[str, str], ...] = (
    ("otel_tele.instrumentation.fastapi", "debug_router"),
    ("otel_tele.http_inference", "inference_router"),
    ("otel_tele.http_capture", "capture_router"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="OTLP/gRPC receiver into the sinks (+ HTTP query routes)")
    parser.add_argument(
        "--otlp-grpc",
        default="127.0.0.1:4317",
        metavar="HOST:PORT",
        help="where to receive OTLP/gRPC (default 127.0.0.1:4317)",
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
        help="OTLP wire bytes decoded at once; beyond it requests get RESOURCE_EXHAUSTED and "
        "clients retry (default 16 MiB; decoding memory stays under ~33x this)",
    )
    parser.set_defaults(handler=run)


def build_http_app() -> Any:
    """A FastAPI app with every domain's query router that this build has."""
    from fastapi import APIRouter, FastAPI
    from fastapi.exceptions import RequestValidationError

    app = FastAPI(title="otel-tele")
    for module_name, attr in ROUTERS:
        module = optional_module(module_name)
        if module is None:
            continue
        router = getattr(module, attr)
        app.include_router(router if isinstance(router, APIRouter) else router())
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_middleware(BodyLimit)
    return app


async def _bad_request(_request: Any, exc: Exception) -> Any:
    """Malformed parameters are a 400 naming the parameter (FastAPI's default is 422 and echoes input)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    names = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "body" for e in errors})
    return JSONResponse({"detail": f"invalid request parameter: {', '.join(names) or 'request'}"}, 400)


def run(args: argparse.Namespace) -> int:
    import otel_tele

    from .._receiver import OtlpGrpcReceiver

    # The server's own pipeline writes only to the sinks: forwarding what it receives would loop.
    telemetry = otel_tele.setup(
        local=True, service_name="otel-tele-serve", traces_exporter="none", logs_exporter="none"
    )
    limits = {
        "max_message_bytes": args.otlp_max_message_bytes,
        "max_inflight_bytes": args.otlp_max_inflight_bytes,
    }
    receiver = OtlpGrpcReceiver(
        telemetry, args.otlp_grpc, **{k: v for k, v in limits.items() if v is not None}
    )
    host = args.otlp_grpc.rsplit(":", 1)[0]
    sinks = ", ".join(telemetry.sinks) or "none"
    print(f"otel-tele serve: OTLP/gRPC on {host}:{receiver.port}; sinks: {sinks}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    http_server = None
    if args.http:
        import uvicorn

        http_host, _, http_port = args.http.rpartition(":")
        http_server = uvicorn.Server(
            uvicorn.Config(build_http_app(), host=http_host, port=int(http_port), log_level="warning")
        )
        threading.Thread(target=http_server.run, name="otel-tele-http", daemon=True).start()
        print(f"otel-tele serve: HTTP on {args.http}", flush=True)
    stop.wait()
    if http_server is not None:
        http_server.should_exit = True
    receiver.stop()
    telemetry.shutdown(30_000)
    return 0
