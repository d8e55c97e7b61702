"""``otel-tele toy pings``: the toy table from the shell (registered through ``Domain.cli``).

Example::

    otel-tele toy pings --limit 10
    otel-tele toy pings --format json --db telemetry/toy.db
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from otel_tele.settings import resolve

from .exporter.options import TOY_DB_NAME
from .query import pings, summary


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("toy", help="the toy domain's pings (test plug-in)")
    commands = parser.add_subparsers(dest="toy_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser("pings", help="list the stored pings and their summary")
    listing.add_argument("--db", type=Path, help="database (default: $OTEL_TELE_DATA_DIR/toy.db)")
    listing.add_argument("--limit", type=int, default=None, help="at most this many pings")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(handler=run_pings)


def run_pings(args: argparse.Namespace) -> int:
    if args.db is not None:
        db = Path(args.db)
    else:  # the same configuration the sink resolves (OTEL_TELE_DATA_DIR, OTEL_TELE_TOY_DB_NAME)
        settings = resolve({})
        db = Path(settings.data_dir) / settings.get(TOY_DB_NAME)
    try:
        rows, totals = pings(db, limit=args.limit), summary(db)
    except sqlite3.Error as exc:
        print(f"otel-tele toy: cannot read {db}: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"database": str(db), "summary": totals, "pings": rows}))
        return 0
    print(
        f"{db}: {totals['pings']} pings, {totals['failed_pings']} not ok, "
        f"mean latency {totals['mean_latency_ms']} ms"
    )
    for row in rows:
        print(f"  seq={row['seq']} latency_ms={row['latency_ms']} ok={row['ok']} note={row['note']}")
    return 0
