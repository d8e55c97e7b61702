"""``otel-tele query …`` and the spec's ``query-telemetry`` tool: the robot database from the shell.

Subcommands (spec 004): summary, commands, joints, gripper, tracking, smoother, requests, latency,
cameras, events, rate, tail [--follow], export [--format csv|json], dbstats. Human tables by default,
``--format json`` for machines (``tail`` streams JSON Lines), ``--db PATH`` to pick the database
(default ``$OTEL_TELE_DATA_DIR/telemetry.db``; ``query-telemetry`` defaults to the spec's
``data/telemetry.db`` unless ``OTEL_TELE_DATA_DIR`` is set). The original tool's short flags work in
both (``tail -n``, ``joints -j -n``, ``events -t``, ``rate -w``, ``smoother -j``, ``tracking-error``).

``export``: ``--format csv|json`` is the *file* format (the spec's spelling), ``--report table|json``
the listing of what was written. ``--out -`` (and ``query-telemetry export`` with no ``--out``, as the
original did) writes to stdout: JSON as one document with a ``summary`` key, CSV as one table
(``--table``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._robot_query import ROBOT_TABLES
from ..robot_query import TelemetryQuery
from ._output import CliError, add_format_option, json_safe, print_json, print_json_line, print_table

Handler = Callable[[TelemetryQuery, argparse.Namespace], int | None]
LEGACY_DB = "data/telemetry.db"


def _ts(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _duration(text: str) -> float:
    """``30``, ``30s``, ``5m``, ``2h`` → seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    raw = text.strip().lower()
    scale = units.get(raw[-1:])
    number = raw[:-1] if scale else raw
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration like 30, 30s, 5m, 2h; got {text!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _joint(text: str) -> int:
    value = int(text) if text.strip().isdigit() else -1
    if not 0 <= value <= 6:
        raise argparse.ArgumentTypeError(f"expected a joint 0-6 (6 is the gripper), got {text!r}")
    return value


def _window(args: argparse.Namespace) -> dict[str, Any]:
    start = args.start
    if getattr(args, "last", None) is not None and start is None:
        start = time.time() - args.last
    return {"start": start, "end": args.end}


def _show(rows: list[dict[str, Any]], args: argparse.Namespace, columns: dict[str, str]) -> None:
    """JSON as stored; human: oldest first, timestamps readable, columns renamed."""
    if args.format == "json":
        print_json(rows)
        return
    table = [
        {title: (_ts(row.get(key)) if key == "ts" else row.get(key)) for key, title in columns.items()}
        for row in reversed(rows)
    ]
    print_table(table, list(columns.values()))


# -- handlers --------------------------------------------------------------------------------
def cmd_summary(q: TelemetryQuery, args: argparse.Namespace) -> None:
    s = q.get_session_summary(**_window(args))
    if args.format == "json":
        print_json(s)
        return
    lines = [
        ("First event", _ts(s["first_event_ts"])),
        ("Last event", _ts(s["last_event_ts"])),
        ("Duration", f"{s['duration_s']:.1f}s"),
        ("Commands", s["total_commands"]),
        ("Feedback", s["total_feedback"]),
        ("Events", s["total_events"]),
        ("Command rate", f"{s['command_rate_hz']:.2f} Hz"),
        ("Feedback rate", f"{s['feedback_rate_hz']:.2f} Hz"),
        ("Errors", s["error_count"]),
    ]
    print("Session Summary")
    print("=" * 40)
    for label, value in lines:
        print(f"  {label + ':':<16}{value}")


def cmd_commands(q: TelemetryQuery, args: argparse.Namespace) -> None:
    rows = q.get_commands(None, args.funcode, args.limit, **_window(args))
    _show(
        rows,
        args,
        {
            "ts": "Timestamp",
            "seq": "Seq",
            "funcode": "Funcode",
            "joint_id": "Joint",
            "target_value": "Target",
            "correlation_id": "Correlation",
            "data_json": "Data",
        },
    )


def cmd_joints(q: TelemetryQuery, args: argparse.Namespace) -> None:
    rows = q.get_joint_history(args.joint, None, args.limit, **_window(args))
    _show(rows, args, {"ts": "Timestamp", "angle": "Angle"})


def cmd_gripper(q: TelemetryQuery, args: argparse.Namespace) -> None:
    rows = q.get_gripper_log(None, args.limit, **_window(args))
    _show(rows, args, {"ts": "Timestamp", "position": "Position", "source": "Source"})


def cmd_tracking(q: TelemetryQuery, args: argparse.Namespace) -> None:
    result = q.get_tracking_error(args.joint, None, args.delay, limit=args.limit, **_window(args))
    if args.format == "json":
        print_json(result)
        return
    samples = result["samples"]
    print(f"Joint {args.joint} tracking error ({samples} samples, feedback at command + {args.delay}s):")
    print(f"  Mean: {result['mean_error_deg']:.4f} deg")
    print(f"  Max:  {result['max_error_deg']:.4f} deg")
    if args.verbose and result["errors"]:
        print_table(
            [
                {"Timestamp": _ts(e["ts"]), "Target": e["target"], "Actual": e["actual"], "Error": e["error"]}
                for e in result["errors"][-20:]
            ]
        )


def cmd_smoother(q: TelemetryQuery, args: argparse.Namespace) -> None:
    rows = q.get_smoother_state(args.joint, limit=args.limit, **_window(args))
    _show(
        rows,
        args,
        {
            "ts": "Timestamp",
            "joint_id": "Joint",
            "target": "Target",
            "current": "Current",
            "sent": "Sent",
            "step_size": "Step",
            "dirty": "Dirty",
        },
    )


def cmd_requests(q: TelemetryQuery, args: argparse.Namespace) -> None:
    rows = q.get_web_requests(None, args.endpoint, args.limit, **_window(args))
    _show(
        rows,
        args,
        {
            "ts": "Timestamp",
            "method": "Method",
            "endpoint": "Endpoint",
            "status_code": "Status",
            "response_ms": "Latency (ms)",
            "ok": "OK",
            "correlation_id": "Correlation",
            "params_json": "Params",
        },
    )


def cmd_latency(q: TelemetryQuery, args: argparse.Namespace) -> None:
    stats = q.get_web_latency_stats(**_window(args))
    if args.endpoint is not None:
        stats = {**stats.get("by_endpoint", {}).get(args.endpoint, {"count": 0}), "by_endpoint": {}}
    if args.format == "json":
        print_json(stats)
        return
    names = ("count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")
    rows = [{"Endpoint": "(all)", **{n: stats.get(n) for n in names}}]
    rows += [
        {"Endpoint": endpoint, **{n: block.get(n) for n in names}}
        for endpoint, block in stats["by_endpoint"].items()
    ]
    print_table(rows)


def cmd_cameras(q: TelemetryQuery, args: argparse.Namespace) -> None:
    rows = q.get_camera_health(args.cam, None, args.limit, **_window(args))
    _show(
        rows,
        args,
        {
            "ts": "Timestamp",
            "camera_id": "Camera",
            "actual_fps": "FPS",
            "target_fps": "Target FPS",
            "drop_count": "Drops",
            "connected": "Connected",
            "stalled": "Stalled",
            "motion_score": "Motion",
        },
    )


_EVENT_COLUMNS = {
    "ts": "Timestamp",
    "level": "Level",
    "event_type": "Type",
    "source": "Source",
    "detail": "Detail",
    "correlation_id": "Correlation",
}


def cmd_events(q: TelemetryQuery, args: argparse.Namespace) -> None:
    rows = q.get_events(args.type, args.source, args.level, None, args.limit, **_window(args))
    _show(rows, args, _EVENT_COLUMNS)


def cmd_rate(q: TelemetryQuery, args: argparse.Namespace) -> None:
    commands, feedback = q.get_command_rate(args.window), q.get_feedback_rate(args.window)
    if args.format == "json":
        print_json({"commands": commands, "feedback": feedback})
        return
    print(f"Rates (last {args.window:g}s window):")
    print(f"  Commands:  {commands['rate_hz']:.1f} Hz ({commands['total_commands']} total)")
    print(f"  Feedback:  {feedback['rate_hz']:.1f} Hz ({feedback['total_feedback']} total)")
    for funcode, hz in sorted(commands["by_funcode"].items()):
        print(f"    command funcode {funcode}: {hz:.1f} Hz")


def cmd_tail(q: TelemetryQuery, args: argparse.Namespace) -> int:
    types = [t for t in (args.types or "").split(",") if t] or None
    last_id: int | None = None
    try:
        while True:
            rows = q.tail(args.limit, types, after_id=last_id)
            for row in reversed(rows):
                if args.format == "json":
                    print_json_line(row)
                else:
                    print(
                        f"[{_ts(row['ts'])}] {row.get('level') or 'info':>7} {row['event_type']:<15} "
                        f"{row.get('source') or '':<10} {row.get('detail') or ''}",
                        flush=True,
                    )
            if rows:
                last_id = rows[0]["id"]
            elif last_id is None:
                last_id = 0
            if not args.follow:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:  # Ctrl-C ends --follow; that is the normal way out
        return 0


def _write_rows(q: TelemetryQuery, table: str, out: Any, fmt: str, window: dict[str, Any]) -> int:
    count = 0
    rows = q.iter_rows(table, **window)
    if fmt == "csv":
        writer: Any = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            count += 1
        if writer is None:  # an empty table still says which columns it has
            csv.writer(out).writerow(q.columns(table))
    else:
        out.write("[")
        for row in rows:
            out.write(("," if count else "") + "\n" + json.dumps(json_safe(row), ensure_ascii=False))
            count += 1
        out.write("\n]\n")
    return count


def _write_table(q: TelemetryQuery, table: str, path: Path, fmt: str, window: dict[str, Any]) -> int:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as out:
            count = _write_rows(q, table, out, fmt, window)
        os.replace(temporary, path)  # a reader never sees half a file
    finally:
        temporary.unlink(missing_ok=True)
    return count


def cmd_export(q: TelemetryQuery, args: argparse.Namespace) -> None:
    tables = [args.table] if args.table else list(ROBOT_TABLES)
    window = {"start": args.start, "end": args.end}
    if (args.out is None and args.legacy) or args.out == "-":
        if args.format == "csv":
            if not args.table:
                raise CliError("CSV on stdout holds one table: add --table NAME, or --out FOLDER for all")
            _write_rows(q, args.table, sys.stdout, "csv", window)
            return
        document: dict[str, Any] = {"summary": q.get_session_summary(**window), "db_stats": q.get_db_stats()}
        for table in tables:
            document[table] = list(q.iter_rows(table, **window))
        print_json(document)
        return
    out = Path(args.out) if args.out else q.db_path.parent / "export"
    out.mkdir(parents=True, exist_ok=True)
    written = [
        {
            "table": t,
            "rows": _write_table(q, t, out / f"{t}.{args.format}", args.format, window),
            "file": str(out / f"{t}.{args.format}"),
        }
        for t in tables
    ]
    if args.report == "json":
        print_json(written)
    else:
        print_table(written, ["table", "rows", "file"])


def cmd_dbstats(q: TelemetryQuery, args: argparse.Namespace) -> None:
    stats = q.get_db_stats()
    if args.format == "json":
        print_json(stats)
    else:
        print_table([{"Item": key, "Value": value} for key, value in stats.items()])


# -- parser ----------------------------------------------------------------------------------
def _time_options(p: argparse.ArgumentParser, *, last: bool = True, limit: int | None = 50) -> None:
    p.add_argument("--start", help="epoch seconds or ISO-8601 (naive = UTC)")
    p.add_argument("--end", help="epoch seconds or ISO-8601 (naive = UTC)")
    if last:
        p.add_argument("--last", type=_duration, metavar="DURATION", help="only the last 30s / 5m / 2h")
    if limit is not None:
        p.add_argument("--limit", "-n", type=_positive_int, default=limit, help=f"rows (default {limit})")


def _specs() -> list[tuple[str, tuple[str, ...], str, Handler, Callable[[argparse.ArgumentParser], None]]]:
    def commands(p: argparse.ArgumentParser) -> None:
        _time_options(p)
        p.add_argument("--funcode", "-f", type=int)

    def joints(p: argparse.ArgumentParser) -> None:
        _time_options(p)
        p.add_argument("--joint", "-j", type=_joint, default=0)

    def tracking(p: argparse.ArgumentParser) -> None:
        _time_options(p, limit=1000)
        p.add_argument("--joint", "-j", type=_joint, default=0)
        p.add_argument("--delay", "-d", type=float, default=0.2, help="feedback delay in s (default 0.2)")
        p.add_argument("--verbose", "-v", action="store_true", help="list the last 20 pairs")

    def smoother(p: argparse.ArgumentParser) -> None:
        _time_options(p)
        p.add_argument("--joint", "-j", type=_joint)

    def endpoint(p: argparse.ArgumentParser, limit: int | None = 50) -> None:
        _time_options(p, limit=limit)
        p.add_argument("--endpoint", "-e")

    def cameras(p: argparse.ArgumentParser) -> None:
        _time_options(p)
        p.add_argument("--cam", "-c")

    def events(p: argparse.ArgumentParser) -> None:
        _time_options(p)
        p.add_argument("--type", "-t")
        p.add_argument("--level", "-l")
        p.add_argument("--source", "-s")

    def rate(p: argparse.ArgumentParser) -> None:
        p.add_argument("--window", "-w", type=_duration, default=10.0, help="seconds (default 10)")

    def tail(p: argparse.ArgumentParser) -> None:
        p.add_argument("--follow", "-f", action="store_true", help="keep polling (Ctrl-C stops)")
        p.add_argument("--limit", "-n", type=_positive_int, default=20)
        p.add_argument("--types", help="comma-separated event types")
        p.add_argument("--interval", type=_duration, default=1.0, help="poll interval (default 1s)")

    def export(p: argparse.ArgumentParser) -> None:
        _time_options(p, last=False, limit=None)
        p.add_argument(
            "--out", "-o", help="folder for one file per table (default: <db folder>/export; - = stdout)"
        )
        p.add_argument("--table", choices=ROBOT_TABLES)
        p.add_argument("--format", choices=("csv", "json"), default="json", help="file format (default json)")
        p.add_argument(
            "--report", choices=("table", "json"), default="table", help="how the written files are listed"
        )

    return [
        ("summary", (), "session summary", cmd_summary, lambda p: _time_options(p, limit=None)),
        ("commands", (), "recent DDS commands", cmd_commands, commands),
        ("joints", (), "joint angle history", cmd_joints, joints),
        ("gripper", (), "gripper commands and feedback", cmd_gripper, _time_options),
        ("tracking", ("tracking-error",), "commanded vs actual angle", cmd_tracking, tracking),
        ("smoother", (), "smoother interpolation history", cmd_smoother, smoother),
        ("requests", (), "web request log", cmd_requests, endpoint),
        ("latency", (), "web request latency stats", cmd_latency, lambda p: endpoint(p, None)),
        ("cameras", (), "camera health log", cmd_cameras, cameras),
        ("events", (), "system events", cmd_events, events),
        ("rate", (), "current command and feedback rates", cmd_rate, rate),
        ("tail", (), "newest system events (--follow polls every second)", cmd_tail, tail),
        ("export", (), "export tables (--format csv|json)", cmd_export, export),
        ("dbstats", (), "database size and row counts", cmd_dbstats, lambda p: None),
    ]


def configure(parser: argparse.ArgumentParser, *, legacy: bool) -> None:
    """Add ``--db`` and the subcommands to ``parser``."""
    shown = f"$OTEL_TELE_DATA_DIR/telemetry.db{', else ' + LEGACY_DB if legacy else ''}"
    parser.add_argument("--db", default=None, metavar="PATH", help=f"telemetry database (default {shown})")
    parser.set_defaults(handler=run, legacy=legacy)
    sub = parser.add_subparsers(dest="query_command", metavar="COMMAND", required=True)
    for name, aliases, text, handler, add in _specs():
        p = sub.add_parser(name, aliases=list(aliases), help=text, description=text)
        add(p)
        if name != "export":  # export's --format is the file format (the spec's spelling)
            add_format_option(p)
        p.add_argument("--db", default=argparse.SUPPRESS, metavar="PATH", help="telemetry database")
        p.set_defaults(query_handler=handler)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "query",
        help="query the robot telemetry database (spec 004)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    configure(parser, legacy=False)


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    from .._settings import resolve

    settings = resolve({})
    if args.legacy and settings.sources["data_dir"] == "default":
        return Path(LEGACY_DB)  # the spec's tool: data/telemetry.db unless a data dir is configured
    return Path(settings.data_dir) / "telemetry.db"


def run(args: argparse.Namespace) -> int:
    prog = "query-telemetry" if args.legacy else "otel-tele query"
    try:
        with TelemetryQuery(_db_path(args)) as q:
            return int(args.query_handler(q, args) or 0)
    except (OSError, CliError) as exc:  # missing file, a folder given as --db, unwritable --out
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2


def legacy_main(argv: Sequence[str] | None = None) -> int:
    """``query-telemetry [--db PATH] COMMAND …`` (the spec's ``tools/query_telemetry.py``)."""
    parser = argparse.ArgumentParser(prog="query-telemetry", description="Query the robot telemetry database")
    configure(parser, legacy=True)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
