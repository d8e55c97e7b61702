"""``otel-tele ui``: the dashboard over a data directory, read-only, without receiving anything.

The same app as ``serve --http`` (every domain's routes and ``/ui/``, behind the same Host and
token rules), minus the pipeline: the pipeline-health page says so. Loopback unless a token is set.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .._http_guard import AccessError, access_for, load_token
from ._serve import ServeError, _bind, _start_http, build_http_app


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ui",
        help="the dashboard over a data directory (read-only; serve --http shows it live)",
        description="Open the dashboard on http://HOST:PORT/ui/ over the telemetry in --data-dir.",
    )
    parser.add_argument(
        "--data-dir", help="the telemetry folder (default: OTEL_TELE_DATA_DIR or ./telemetry)"
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:8008", metavar="HOST:PORT", help="default 127.0.0.1:8008"
    )
    parser.add_argument(
        "--token-file", help="require this bearer token (else OTEL_TELE_SERVE_TOKEN, else none)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.data_dir:
        folder = Path(args.data_dir)
        if not folder.is_dir():  # a path that does not exist is a failure (1), as for every command
            print(f"otel-tele ui: --data-dir {folder.name!r} is not a folder", file=sys.stderr)
            return 1
        # Every reader resolves the data directory from the settings: one place to point them all.
        os.environ["OTEL_TELE_DATA_DIR"] = str(folder.resolve())
    host, _, port = args.listen.rpartition(":")
    try:
        access = access_for([args.listen], token=load_token(args.token_file))
        sock = _bind("--listen", host or "127.0.0.1", int(port))
    except (AccessError, ServeError, ValueError) as exc:  # a bad --listen or token: a usage error
        print(f"otel-tele ui: {exc}", file=sys.stderr)
        return 2
    server = _start_http(sock, build_http_app(access), None, "--listen")
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"otel-tele ui: http://{bound_host}:{bound_port}/ui/ (read-only)", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.should_exit = True
    return 0
