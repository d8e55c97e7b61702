"""A setting's declaration (:class:`Option`) and the parsers of common value types.

Registry layer (imports nothing of otel-tele): a domain declares its sinks' and instrumentation's
options in its registry entry module (``otel_tele/domains/<domain>.py``) with these, and names the
tuple in ``Domain.options``; :mod:`otel_tele._settings` joins them to the core's table and resolves
them all alike (argument, then environment, then default).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def parse_names(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))


def parse_positive_int(raw: str) -> int:
    value = int(raw.strip())
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {raw!r}")
    return value


def parse_port(raw: str) -> int:
    value = int(raw.strip())
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a TCP port (0-65535), got {raw!r}")
    return value


def parse_positive_float(raw: str) -> float:
    value = float(raw.strip())
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"expected a positive number, got {raw!r}")
    return value


def parse_path(raw: str) -> Path:
    return Path(parse_str(raw))


def parse_str(raw: str) -> str:
    value = raw.strip()
    if not value or "\x00" in value:
        raise ValueError(f"expected a non-empty string, got {raw!r}")
    return value


@dataclass(frozen=True)
class Option(Generic[T]):
    """One setting: where it comes from and how a raw string becomes a value of type ``T``.

    The core declares its own in ``otel_tele._settings.OPTIONS``; a domain declares its own in its
    registry entry module and names the tuple in ``Domain.options``. Read one, typed, with
    ``Settings.get``.

    Example::

        FLUSH_ROWS: Option[int] = Option(
            "capsule_flush_rows", "OTEL_TELE_CAPSULE_FLUSH_ROWS", parse_positive_int, 65_536, "rows per flush"
        )
        settings.get(FLUSH_ROWS)  # int: the argument, else the environment, else 65536
    """

    name: str
    env: str | None
    parse: Callable[[str], T]
    default: T
    doc: str
    secret: bool = False
