"""``otel-tele capture``: a FlowTime run directory → a schema v2 capture bundle (spec 001 FR1).

Mirrors ``flowtime telemetry capture``: ``--run-dir DIR [--output DIR] [--dry-run] [--gap-fill-nan]
[--gap-detect | --gap-fill-gaps]``, plus ``--inject FILE`` (gap injection for replay tests). Exit codes
as FlowTime's: 0 success, 2 usage error, 1 failure, 130 cancelled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ._output import add_format_option, print_json, print_table

#: Files at which the progress bar appears on a terminal.
PROGRESS_THRESHOLD = 200


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "capture",
        help="capture a FlowTime run directory into a telemetry bundle",
        description="Capture a FlowTime run directory into a schema v2 telemetry capture bundle.",
    )
    parser.add_argument(
        "--run-dir", required=True, type=Path, help="the run directory (run.json, series/, spec.yaml)"
    )
    parser.add_argument(
        "--output",
        "--out",
        type=Path,
        default=None,
        help="bundle directory (default: $OTEL_TELE_DATA_DIR/captures/<runId>)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print planned files and warnings; write nothing"
    )
    parser.add_argument(
        "--gap-fill-nan", action="store_true", help="replace NaN/∞ with 0 (nan_fill warnings)"
    )
    gaps = parser.add_mutually_exclusive_group()
    gaps.add_argument("--gap-detect", action="store_true", help="report missing values (data_gap warnings)")
    gaps.add_argument("--gap-fill-gaps", action="store_true", help="replace missing values with 0 (data_gap)")
    parser.add_argument(
        "--inject",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON/YAML gap injections (mode zero|nan|gap, bins or fraction) for replay tests",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"progress bar (default: on a terminal for {PROGRESS_THRESHOLD}+ files)",
    )
    add_format_option(parser)
    parser.set_defaults(handler=run)


class ProgressBar:
    """A one-line bar on ``out`` (stderr), redrawn at most once per percent. ``force`` None shows it
    only on a terminal and for large captures."""

    def __init__(self, out: TextIO, *, force: bool | None = None, width: int = 30) -> None:
        self.out = out
        self.force = force
        self.width = width
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        if self.force is None:
            self.force = self.out.isatty() and total >= PROGRESS_THRESHOLD
        if not self.force:
            return
        percent = 100 * done // max(total, 1)
        if percent == self._shown and done != total:
            return
        self._shown = percent
        filled = self.width * done // max(total, 1)
        self.out.write(f"\rcapturing [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} files")
        if done == total:
            self.out.write("\n")
        self.out.flush()


def run(args: argparse.Namespace) -> int:
    from ..exporters import capture

    try:
        injections = capture.load_injections(args.inject) if args.inject is not None else ()
        options = capture.gap_options(
            fill_nan=args.gap_fill_nan,
            inject=injections,
            gaps="warn" if args.gap_detect else "fill_zero" if args.gap_fill_gaps else "ignore",
        )
        result = capture.capture_run(
            args.run_dir,
            args.output,
            options=options,
            dry_run=args.dry_run,
            progress=ProgressBar(sys.stderr, force=args.progress),
        )
    except KeyboardInterrupt:
        print("Telemetry capture cancelled.", file=sys.stderr)
        return 130
    except (capture.CaptureError, OSError, ValueError) as exc:
        print(f"Telemetry capture failed: {exc}", file=sys.stderr)
        return 1
    _report(result, args)
    return 0


def _report(result: Any, args: argparse.Namespace) -> None:
    files = [
        {"nodeId": f.node_id, "metric": f.metric, "classId": f.class_id, "file": f.path, "source": f.source}
        for f in result.files
    ]
    warnings = [
        {"code": w.code, "nodeId": w.node_id or "", "bins": list(w.bins or ()), "message": w.message}
        for w in result.warnings
    ]
    from ..exporters.capture.schema import MANIFEST

    manifest = None if args.dry_run else str(result.directory / MANIFEST)
    if args.format == "json":
        print_json(
            {
                "runId": result.run_id,
                "dryRun": args.dry_run,
                "output": str(result.directory),
                "files": files,
                "warnings": warnings,
                "manifest": manifest,
                "schemaErrors": result.schema_errors,
            }
        )
        return
    print(f"Run {result.run_id}: {len(files)} file(s) {'planned (dry run)' if args.dry_run else 'captured'}")
    print_table(files)
    print(f"\nWarnings ({len(warnings)}):")
    if warnings:
        print_table(warnings)
    for problem in result.schema_errors:
        print(f"schema: {problem}", file=sys.stderr)
    if manifest is not None:
        print(f"\nManifest written: {manifest}")
    else:
        print(f"\nWould write to: {result.directory}")
