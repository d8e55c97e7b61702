"""Output shared by every command: aligned human tables or JSON (``--format json``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def add_format_option(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument(
        "--format",
        choices=("table", "json", *choices),
        default="table",
        help="human table (default) or machine-readable JSON",
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def print_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, out: TextIO | None = None
) -> None:
    """Columns aligned to their widest cell; numbers right-aligned."""
    out = out or sys.stdout
    if not rows:
        print("(no rows)", file=out)
        return
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(col), int | float) or row.get(col) is None for row in rows) for col in columns
    ]
    print(
        "  ".join(
            c.rjust(w) if n else c.ljust(w) for c, w, n in zip(columns, widths, numeric, strict=True)
        ).rstrip(),
        file=out,
    )
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print(
            "  ".join(
                c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, numeric, strict=True)
            ).rstrip(),
            file=out,
        )


def print_json(value: Any, out: TextIO | None = None) -> None:
    json.dump(value, out or sys.stdout, indent=2, default=str, allow_nan=True)
    print(file=out or sys.stdout)


def emit(value: Any, fmt: str, columns: Sequence[str] | None = None) -> None:
    """Print ``value`` (rows, or one mapping shown as key/value rows) in the chosen format."""
    if fmt == "json":
        print_json(value)
    elif isinstance(value, Mapping):
        print_table([{"key": k, "value": v} for k, v in value.items()])
    else:
        print_table(list(value), columns)
