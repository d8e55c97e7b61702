"""``otel-tele inference stats | footprint | prune``: model-serving statistics (spec 002).

Reads ``OTEL_TELE_POSTGRES_DSN`` (or ``--dsn``), else the embedded ``<data dir>/inference.db``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._scrub import LOG_FILTER
from ._output import CliError, add_format_option, print_json, print_table, require_dir, require_file


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inference", help="model-serving telemetry: efficiency, footprint, pruning"
    )
    commands = parser.add_subparsers(dest="inference_command", metavar="COMMAND", required=True)

    stats = commands.add_parser("stats", help="efficiency ranking over a window and 60-day trends")
    stats.add_argument("--hours", type=float, default=24, help="efficiency window in hours (default 24)")
    stats.add_argument("--component", help="only this model/component (both tables)")
    stats.add_argument("--days", type=int, default=None, help="trend window in days (default: retention, 60)")
    footprint = commands.add_parser("footprint", help="table sizes, row count, oldest record, alerts")
    prune = commands.add_parser("prune", help="delete rows older than the retention window, in short batches")
    prune.add_argument("--retention-days", type=int, default=None, help="keep this many days (default 60)")
    prune.add_argument("--max-batches", type=int, default=None, help="stop after this many delete batches")
    for sub, handler in ((stats, _stats), (footprint, _footprint), (prune, _prune)):
        sub.add_argument(
            "--dsn", help="PostgreSQL DSN (default: OTEL_TELE_POSTGRES_DSN; none: embedded store)"
        )
        sub.add_argument("--data-dir", help="folder of the embedded store (default: OTEL_TELE_DATA_DIR)")
        add_format_option(sub)
        sub.set_defaults(handler=lambda args, h=handler: _run(args, h))


def _run(args: argparse.Namespace, handler: Any) -> int:
    from otel_tele.inference_stats import InferenceStats

    try:
        stats = InferenceStats.open(dsn=args.dsn, data_dir=args.data_dir)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        embedded = getattr(stats.store, "path", None)  # the embedded store's file; None for PostgreSQL
        if embedded is not None:
            require_dir(embedded.parent, "data folder")
            require_file(embedded, "inference store")
        code: int = handler(stats, args)
        return code
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the store is unreachable or broken: say where, never the password
        detail = LOG_FILTER.redact(str(exc))
        print(f"error: cannot read {stats.store.location}: {type(exc).__name__}: {detail}", file=sys.stderr)
        return 1
    finally:
        stats.close()


def ranking_rows(efficiency: dict[str, Any]) -> list[dict[str, Any]]:
    """The efficiency ranking as table rows (shared with the demo's summary)."""
    return [
        {
            "rank": m["rank"],
            "model": m["model"],
            "inferences": m["inferences"],
            "tokens": m["tokens_generated"],
            "ms/token (weighted)": m["weighted_efficiency_ms_per_token"],
            "ms/token (mean)": m["mean_efficiency_ms_per_token"],
            "tokens/s": m["tokens_per_second"],
            "zero-token": m["zero_token_inferences"],
            "failures": m["failures"],
            "TTFT p50 s": m["ttft_p50_s"],
            "TTFT p95 s": m["ttft_p95_s"],
        }
        for m in efficiency["models"]
    ]


def _stats(stats: Any, args: argparse.Namespace) -> int:
    efficiency = stats.aggregated_efficiency(component=args.component, hours=args.hours)
    trends = stats.statistics_60day(days=args.days, component=args.component)
    if args.format == "json":
        print_json({"efficiency": efficiency, "statistics": trends})
        return 0
    print(
        f"Efficiency ranking, last {args.hours:g} h (ms per generated token, token-weighted; lower is better)"
    )
    print_table(ranking_rows(efficiency))
    print(f"\nLoad latency, last {args.hours:g} h")
    print_table(efficiency["load_latency"])
    print(f"\n{trends['window_days']}-day trends (best first)")
    print_table(
        [
            {
                "model": t["model"],
                "inferences": t["inferences"],
                "ms/token (weighted)": t["weighted_efficiency_ms_per_token"],
                "last 24 h": t["recent_24h_efficiency_ms_per_token"],
                "baseline": t["baseline_efficiency_ms_per_token"],
                "change": t["efficiency_change"],
                "first day": t["first_day"],
                "last day": t["last_day"],
            }
            for t in trends["model_trends"]
        ]
    )
    _print_alerts(trends["alerts"])
    return 0


def _footprint(stats: Any, args: argparse.Namespace) -> int:
    footprint = stats.footprint()
    if args.format == "json":
        print_json(footprint)
        return 0
    print(f"Inference store: {footprint['backend']} {footprint['location']}")
    print_table(
        footprint["table_sizes"],
        ["table", "size_bytes", "table_bytes", "index_bytes", "rows", "rows_estimate"],
    )
    print(
        f"\nrows: {footprint['row_count']}  oldest: {footprint['oldest_record']}  "
        f"newest: {footprint['newest_record']}  retention: {footprint['retention_days']} days"
    )
    _print_alerts(footprint["alerts"])
    return 0


def _prune(stats: Any, args: argparse.Namespace) -> int:
    from otel_tele.exporters.postgres import maintenance

    result = maintenance.prune_location(
        dsn=args.dsn, data_dir=args.data_dir, retention_days=args.retention_days, max_batches=args.max_batches
    )
    if args.format == "json":
        print_json(result)
    else:
        print_table([result])
    return 0


def _print_alerts(alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        print(f"ALERT {alert['alert']}: {alert['message']}")
