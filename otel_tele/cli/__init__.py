"""The ``otel-tele`` command: ``--version``, ``doctor``, and one subcommand group per domain.

Each command module declares ``register(subparsers)``; its handlers return the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._internal import optional_module
from .._version import __version__
from ._output import CliError

#: Command modules, in help order. A module not present in this build is skipped.
COMMAND_MODULES: tuple[str, ...] = (
    "otel_tele.cli._doctor",
    "otel_tele.cli._serve",  # OTLP receiver into the sinks (+ HTTP query routes)
    "otel_tele.cli._query",  # robot SQLite queries (spec 004)
    "otel_tele.cli._runs",  # FDA run capsules (spec 000)
    "otel_tele.cli._inference",  # model-serving statistics (spec 002)
    "otel_tele.cli._capture",  # flow capture bundles (specs 001/003)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-tele", description="otel-tele telemetry tools")
    parser.add_argument("--version", action="version", version=f"otel-tele {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = optional_module(name)
        if module is not None:
            module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except CliError as exc:
        print(f"otel-tele {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otel-tele … | head`
        sys.stderr.close()
        return 0
