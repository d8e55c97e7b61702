"""Writing manifests (TOML) and other small files atomically: readers see the old file or the new one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import tomli_w
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"the capsule sink needs tomli-w: pip install 'otel-tele[capsule]' ({exc})") from exc


def toml_value(value: Any) -> Any:
    """A TOML-representable copy of ``value`` (None dropped, tuples → lists, the rest → str)."""
    if isinstance(value, Mapping):
        return {str(k): toml_value(item) for k, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [toml_value(item) for item in value if item is not None]
    if isinstance(value, bool | int | float | str | datetime):
        return value
    return str(value)


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``path`` through a temp file and a rename: readers see the old or the new file, whole."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_manifest(path: Path, manifest: Mapping[str, Any], *, fsync: bool = True) -> None:
    write_atomic(path, tomli_w.dumps(toml_value(manifest)).encode(), fsync=fsync)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
