"""``otel-tele runs list | show <id> | query "<SQL>" | consolidate | prune`` over FDA run capsules."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._output import CliError, add_format_option, emit, print_json, print_table, require_dir

_ROOT_HELP = "capsule root (default <OTEL_TELE_DATA_DIR>/telematry_cfs)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("runs", help="FDA solver runs: list, show, query, consolidate, prune")
    parser.add_argument("--root", help=_ROOT_HELP)
    commands = parser.add_subparsers(dest="runs_command", metavar="SUBCOMMAND", required=True)

    p = commands.add_parser("list", help="runs, newest first")
    p.add_argument("--flow")
    p.add_argument("--mode", choices=("production", "dev", "tuner"))
    p.add_argument("-n", "--limit", type=int, default=50)
    add_format_option(p)
    p.set_defaults(handler=_list)

    p = commands.add_parser("show", help="one run: summary, events, energy trajectory")
    p.add_argument("run_id")
    p.add_argument("--points", type=int, default=12, help="trajectory rows to show")
    add_format_option(p)
    p.set_defaults(handler=_show)

    p = commands.add_parser("query", help='SQL over the views telemetry and events (quote "lambda")')
    p.add_argument("sql")
    add_format_option(p)
    p.set_defaults(handler=_query)

    p = commands.add_parser("consolidate", help="compact flow files, refresh duckdb.db, archive, export")
    p.add_argument(
        "--archive",
        action="append",
        default=[],
        metavar="FLOW",
        help="move this flow's dev runs into run folders (repeatable)",
    )
    p.add_argument("--export", metavar="FILE.parquet", help="also write all telemetry to one Parquet file")
    p.add_argument("--retention-days", type=float, help="override the flows' retention (default 90)")
    add_format_option(p)
    p.set_defaults(handler=_consolidate)

    p = commands.add_parser("prune", help="apply retention: expired runs, old dev/tuner rows, dead temps")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--retention-days", type=float)
    add_format_option(p)
    p.set_defaults(handler=_prune)

    # `runs list --root X` works as well as `runs --root X list`: users put options after the verb.
    for sub in commands.choices.values():
        sub.add_argument("--root", default=argparse.SUPPRESS, help=_ROOT_HELP)


def _runs(args: argparse.Namespace) -> Any:
    from ..runs import Runs

    runs = Runs(args.root)
    what = "capsule root" if args.root else "capsule root (<OTEL_TELE_DATA_DIR>/telematry_cfs)"
    require_dir(runs.root, what)
    return runs


def _maintenance() -> Any:
    from ..exporters.capsule import maintenance

    return maintenance


def _guarded(fn: Any) -> Any:
    """Bad input (a bad id, SQL error, newer schema) is a clear message and exit code 2, not a traceback."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except (BrokenPipeError, CliError):
            raise
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            print(f"otel-tele runs: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # duckdb errors have their own hierarchy
            if type(exc).__module__.startswith(("duckdb", "_duckdb")):
                print(f"otel-tele runs: {exc}", file=sys.stderr)
                return 2
            raise

    return handler


@_guarded
def _list(args: argparse.Namespace) -> int:
    emit(_runs(args).list(flow=args.flow, mode=args.mode, limit=args.limit), args.format)
    return 0


@_guarded
def _show(args: argparse.Namespace) -> int:
    shown = _runs(args).show(args.run_id, points=args.points)
    if args.format == "json":
        print_json(shown)
        return 0
    emit(shown["run"], "table")
    print("\nEnergy trajectory:")
    print_table(shown["trajectory"])
    print("\nEvents:")
    print_table(shown["events"])
    if shown["artifacts"]:
        print("\nArtifacts:")
        print_table(shown["artifacts"])
    return 0


@_guarded
def _query(args: argparse.Namespace) -> int:
    result = _runs(args).query(args.sql)
    rows = [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]
    emit(rows, args.format, result["columns"])
    return 0


@_guarded
def _consolidate(args: argparse.Namespace) -> int:
    report = _maintenance().consolidate(
        _runs(args).root, archive=args.archive, export=args.export, retention_days=args.retention_days
    )
    if args.format == "json":
        print_json(report)
        return 0
    print_table(report["files"])
    for run_id in report["recovered"]:
        print(f"recovered interrupted run: {run_id}")
    print(
        f"archived runs: {len(report['archived'])}; removed temps: {len(report['removed_temps'])}; "
        f"duckdb: {report['duckdb']}"
    )
    if "export" in report:
        print(f"exported {report['export']['rows']} rows to {report['export']['path']}")
    return 0


@_guarded
def _prune(args: argparse.Namespace) -> int:
    report = _maintenance().prune(_runs(args).root, dry_run=args.dry_run, retention_days=args.retention_days)
    if args.format == "json":
        print_json(report)
        return 0
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(report['runs_removed'])} expired run(s), {len(report['temps_removed'])} temp(s)")
    if report["files"]:
        print_table(report["files"])
    return 0
