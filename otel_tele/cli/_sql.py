"""``otel-tele sql``: one SQL query over every local store (the catalog of :mod:`otel_tele.sql`).

    otel-tele sql "SELECT name, count(*) FROM spans GROUP BY 1"            # a table
    otel-tele sql --format csv "SELECT * FROM robot_web_requests" > requests.csv
    otel-tele sql --format parquet --output spans.parquet "SELECT * FROM spans"
    otel-tele sql --catalog                                                # views and columns

Read-only unless ``--allow-writes``. Exit 1: the query was refused or failed (one line on stderr);
exit 2: bad usage.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._output import CliError, print_json, print_table

_FORMATS = ("table", "csv", "json", "parquet")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sql",
        help="one SQL query (DuckDB) over every local store; read-only by default",
        description=(
            "Run one DuckDB SELECT over views of every local store: spans, logs, metrics (the general "
            "store), robot_* (telemetry.db), fda_* (run capsules), inference_* (inference store), "
            "flow_* (capture bundles). --catalog lists the views and their columns."
        ),
    )
    parser.add_argument("query", nargs="?", help="the SQL text ('-': read it from stdin)")
    parser.add_argument("--catalog", action="store_true", help="list the views and their columns")
    parser.add_argument(
        "--data-dir", help="the telemetry folder (default: OTEL_TELE_DATA_DIR or ./telemetry)"
    )
    parser.add_argument(
        "--format",
        choices=(*_FORMATS, "markdown"),
        default="table",
        help="table (default), csv, json, parquet (needs --output); markdown: --catalog only",
    )
    parser.add_argument("--output", metavar="FILE", help="write the result to FILE instead of stdout")
    parser.add_argument(
        "--allow-writes",
        action="store_true",
        help="also run statements other than SELECT (DDL, COPY, ATTACH …) and read any file",
    )
    parser.set_defaults(handler=run)


def _usage(message: str) -> int:
    print(f"otel-tele sql: {message}", file=sys.stderr)
    return 2


def _write(path: str, data: bytes) -> None:
    """``data`` to ``path``, whole or not at all (temp file in the same folder, then rename)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise CliError(f"--output folder {str(folder)!r} does not exist")
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise CliError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None


def _emit_text(text: str, output: str | None) -> None:
    if output:
        _write(output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)


def _emit_bytes(data: bytes, output: str | None) -> None:
    if output:
        _write(output, data)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    if args.catalog and args.query:
        return _usage("give a query or --catalog, not both")
    if not args.catalog and not args.query:
        return _usage("a query is required (or --catalog)")
    if args.format == "markdown" and not args.catalog:
        return _usage("--format markdown is for --catalog")
    if args.format == "parquet" and (args.catalog or not args.output):
        return _usage("--format parquet needs --output FILE (and a query)")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise CliError(f"--data-dir {args.data_dir!r} is not a folder")
    query = sys.stdin.read() if args.query == "-" else args.query

    from .. import sql

    try:
        catalog = sql.open_catalog(args.data_dir, allow_writes=args.allow_writes)
    except sql.SqlError as exc:
        raise CliError(str(exc)) from None
    with catalog:
        if args.catalog:
            return _print_catalog(catalog, args)
        try:
            table = catalog.query(query)
        except sql.SqlError as exc:
            raise CliError(str(exc)) from None
    if args.format == "parquet":
        _write(args.output, sql.to_parquet(table))
    elif args.format == "csv":
        _emit_bytes(sql.to_csv(table), args.output)
    else:
        rows = sql.to_rows(table)
        _emit_text(_render(rows if args.format == "json" else (rows, table.column_names)), args.output)
    return 0


def _render(value: Any) -> str:
    """JSON for a list or a dict, an aligned table for (rows, columns)."""
    buffer = io.StringIO()
    if isinstance(value, tuple):
        print_table(value[0], value[1], out=buffer)
    else:
        print_json(value, out=buffer)
    return buffer.getvalue()


def _print_catalog(catalog: Any, args: argparse.Namespace) -> int:
    from ..sql import catalog_markdown

    views = catalog.views()
    if args.format == "markdown":
        _emit_text(catalog_markdown(views, catalog.unavailable), args.output)
    elif args.format == "json":
        document = {
            "views": [
                {
                    "name": v.name,
                    "domain": v.domain,
                    "description": v.description,
                    "reader": v.reader,
                    "columns": [{"name": c, "type": t} for c, t in v.columns],
                }
                for v in views
            ],
            "unavailable": catalog.unavailable,
        }
        _emit_text(_render(document), args.output)
    else:
        rows = [
            {"view": v.name, "domain": v.domain, "columns": len(v.columns), "read by": v.reader}
            for v in views
        ]
        rows += [
            {"view": d, "domain": "", "columns": None, "read by": f"unavailable: {r}"}
            for d, r in catalog.unavailable.items()
        ]
        _emit_text(_render((rows, ["view", "domain", "columns", "read by"])), args.output)
    return 0
