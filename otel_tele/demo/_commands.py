"""Commands the demo prints: spelled so that they work as printed, from the folder the demo ran in."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` as the user would type it: relative to the current folder when under it."""
    absolute = Path(os.path.abspath(path))  # not resolve(): a venv's python is a symlink to keep
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def program(name: str = "otel-tele") -> str:
    """How to call one of our console scripts: its bare name when PATH finds this installation's,
    else its path (``.venv/bin/otel-tele`` from the repository root)."""
    ours = Path(sys.executable).parent / name
    found = shutil.which(name)
    if found is not None and Path(found).resolve() == ours.resolve():
        return name
    return shown(ours)


def command(*args: str | os.PathLike[str]) -> str:
    """A printable ``$ otel-tele …`` line; path arguments are shown as :func:`shown` spells them."""
    words = [shown(arg) if isinstance(arg, os.PathLike) else arg for arg in args]
    return "$ " + shlex.join([program(), *words])
