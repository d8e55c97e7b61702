"""The ``otel-tele`` command: ``--version``, ``doctor``, ``serve``, and one subcommand group per
registered domain (:mod:`otel_tele._registry`).

Each command module declares ``register(subparsers)``; its handlers return the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._internal import optional_module
from .._registry import domains
from .._version import __version__
from ._output import CliError

#: The commands every build has, before the domains' own groups.
CORE_COMMAND_MODULES: tuple[str, ...] = (
    "otel_tele.cli._doctor",
    "otel_tele.cli._serve",
    "otel_tele.cli._ui",
    "otel_tele.cli._sql",
)


def command_modules() -> tuple[str, ...]:
    """Command modules in help order: the core ones, then each registered domain's."""
    return CORE_COMMAND_MODULES + tuple(d.cli for d in domains() if d.cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-tele", description="otel-tele telemetry tools")
    parser.add_argument("--version", action="version", version=f"otel-tele {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
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
