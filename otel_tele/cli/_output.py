"""What every command shares: aligned human tables or JSON (``--format json``), and one-line errors.

JSON output rule (one for every command): a command prints ONE JSON document — an array when it lists
rows, an object when it reports one thing — except ``query tail``, which streams JSON Lines (one
object per line, oldest first) so ``--follow`` can be read line by line. Values keep their types
(numbers, booleans, null); NaN and infinities are written as the strings ``"NaN"``, ``"Infinity"``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO


class CliError(Exception):
    """A user error (a wrong path, an impossible range): one line on stderr and exit code 1."""


def require_dir(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path if it is an existing folder; else :class:`CliError` naming ``what``."""
    folder = Path(path)
    if not folder.exists():
        raise CliError(f"{what} {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CliError(f"{what} {str(folder)!r} is not a folder")
    return folder


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path if it is an existing regular file; else :class:`CliError` naming ``what``."""
    file = Path(path)
    if not file.exists():
        raise CliError(f"{what} {str(file)!r} not found")
    if file.is_dir():
        raise CliError(f"{what} {str(file)!r} is a folder, not a file")
    return file


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


def json_safe(value: Any) -> Any:
    """``value`` with NaN/infinities as strings (strict JSON parsers reject the bare tokens)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def print_json(value: Any, out: TextIO | None = None) -> None:
    """One JSON document (see the module's output rule)."""
    json.dump(json_safe(value), out or sys.stdout, indent=2, default=str, allow_nan=False)
    print(file=out or sys.stdout)


def print_json_line(value: Any, out: TextIO | None = None) -> None:
    """One JSON Lines record, flushed (streaming commands only)."""
    print(json.dumps(json_safe(value), default=str, allow_nan=False), file=out or sys.stdout, flush=True)


def emit(value: Any, fmt: str, columns: Sequence[str] | None = None) -> None:
    """Print ``value`` (rows, or one mapping shown as key/value rows) in the chosen format."""
    if fmt == "json":
        print_json(value)
    elif isinstance(value, Mapping):
        print_table([{"key": k, "value": v} for k, v in value.items()])
    else:
        print_table(list(value), columns)
