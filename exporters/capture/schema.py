"""The FlowTime capture-bundle layout, declared once: file names, CSV columns, manifest fields,
warning codes, the published JSON schema, and how a reader parses what the writer wrote.

A bundle is a flat directory: one CSV per node x metric x class (``bin_index,classId,value``, LF, UTF-8
without BOM, G17 number text, an empty cell for a gap) and ``manifest.json`` (schema v2, validated by
``telemetry-manifest.schema.json`` shipped next to this module). Everything here mirrors FlowTime's C#
code (``TelemetryCapture.cs``, ``CaptureManifestWriter.cs``). The writer (``otel_tele.exporters.capture``)
and the reader (:mod:`otel_tele.bundles`) both take the layout from here; nothing here writes.

Example::

    from otel_tele.exporters.capture import schema
    from otel_tele.semconv import flow
    schema.series_file_name("Order Service", flow.BY_FIELD["queueDepth"])   # 'Order_Service_queuedepth.csv'
    schema.parse_value("NaN")                                                # nan
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from otel_tele.semconv import flow

# -- files -----------------------------------------------------------------------------------------
#: The folder under the data directory where the live sink writes its bundles.
CAPTURES_DIR = "captures"
#: The manifest every bundle has; written last, so a directory with one is a complete bundle.
MANIFEST = "manifest.json"
#: FlowTime's ``TelemetryGenerationMetadata`` next to a manifest made from a run (``autocapture``).
AUTOCAPTURE = "autocapture.json"
#: The JSON Schema of ``manifest.json`` (schema v2), package data of ``SCHEMA_PACKAGE``.
SCHEMA_FILE = "telemetry-manifest.schema.json"
SCHEMA_PACKAGE = "otel_tele.exporters.capture"
SCHEMA_VERSION = 2

#: Columns of a series CSV: v2 (FlowTime with class support) and v1 (before it).
CSV_COLUMNS = ("bin_index", "classId", "value")
V1_CSV_COLUMNS = ("bin_index", "value")
V2_HEADER = ",".join(CSV_COLUMNS)
V1_HEADER = ",".join(V1_CSV_COLUMNS)

#: ``manifest.json`` keys in FlowTime's record order (``classes`` only when classes were captured),
#: and the keys of each ``files[]`` entry.
MANIFEST_FIELDS = (
    "schemaVersion",
    "window",
    "grid",
    "files",
    "warnings",
    "provenance",
    "supportsClassMetrics",
    "classes",
    "classCoverage",
)
FILE_FIELDS = ("nodeId", "metric", "path", "hash", "points", "classId")

#: FlowTime's default series file suffix per flow field: ``<node>_<suffix>.csv``.
FILE_SUFFIX: Mapping[str, str] = {m.field: m.manifest.lower() for m in flow.FLOW_METRICS}

#: FlowTime's fallback binding when a model has no topology: output file-name suffix → flow field.
#: Order matters (``_queue_depth`` before ``_queue``).
FALLBACK_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_arrivals", "arrivals"),
    ("_served", "served"),
    ("_errors", "errors"),
    ("_queue_depth", "queueDepth"),
    ("_queue", "queueDepth"),
    ("_external_demand", "externalDemand"),
    ("_capacity", "capacity"),
)


def series_file_name(node_id: str, metric: flow.FlowMetric) -> str:
    """FlowTime's default name of a node's series file (before class alias and path-safety)."""
    return f"{node_id.replace(' ', '_') or 'node'}_{FILE_SUFFIX[metric.field]}.csv"


def class_alias(alias: str, class_id: str) -> str:
    """The file name of class ``class_id``'s series given the node's (DEFAULT) file name ``alias``."""
    if not class_id.strip() or class_id.upper() == flow.DEFAULT_CLASS:
        return alias
    stem, dot, ext = alias.rpartition(".")
    return f"{stem}_{class_id}.{ext}" if dot and stem else f"{alias}_{class_id}"


# -- grid ------------------------------------------------------------------------------------------
#: Length of one bin per FlowTime time unit, in minutes.
UNIT_MINUTES: dict[str, int] = {"minutes": 1, "hours": 60, "days": 1440, "weeks": 10_080}


@dataclass(frozen=True)
class Grid:
    """A FlowTime time grid: ``bins`` bins of ``bin_size`` ``bin_unit`` each."""

    bins: int
    bin_size: int
    bin_unit: str

    def __post_init__(self) -> None:
        if not (
            isinstance(self.bins, int)
            and self.bins >= 1
            and isinstance(self.bin_size, int)
            and self.bin_size >= 1
            and isinstance(self.bin_unit, str)
            and self.bin_unit
        ):
            raise ValueError(f"invalid grid {self.bins!r} x {self.bin_size!r} {self.bin_unit!r}")

    @property
    def bin_ns(self) -> int:
        """Length of one bin in nanoseconds (``weeks`` included, unlike a manifest's duration)."""
        unit = UNIT_MINUTES.get(self.bin_unit.strip().lower())
        if unit is None:
            raise ValueError(
                f"unsupported bin unit {self.bin_unit!r}; expected one of {', '.join(UNIT_MINUTES)}"
            )
        return self.bin_size * unit * 60 * 1_000_000_000

    @property
    def duration_minutes(self) -> int | None:
        """FlowTime's ``window.durationMinutes``: only minutes, hours and days have one."""
        unit = self.bin_unit.strip().lower()
        return (
            self.bins * self.bin_size * UNIT_MINUTES[unit] if unit in ("minutes", "hours", "days") else None
        )

    def as_json(self) -> dict[str, Any]:
        return {"bins": self.bins, "binSize": self.bin_size, "binUnit": self.bin_unit}


# -- warnings --------------------------------------------------------------------------------------
# Warning codes a capture writes (FlowTime's, plus ours for injection, live windows and overflow).
DATA_GAP = "data_gap"
NAN_FILL = "nan_fill"
NAN_DETECTED = "nan_detected"
LENGTH_MISMATCH = "length_mismatch"
INJECTED_ZERO = "injected_zero"
INJECTED_NAN = "injected_nan"
INJECTED_GAP = "injected_gap"
PARTIAL_WINDOW = "partial_window"
#: Node/class series past the flow meters' cardinality limit were not captured.
CARDINALITY_OVERFLOW = "cardinality_overflow"


@dataclass(frozen=True)
class CaptureWarning:
    """One manifest warning (FlowTime's ``CaptureWarning``; ``bins`` are bin indices)."""

    code: str
    message: str
    node_id: str | None = None
    bins: tuple[int, ...] | None = None
    severity: str = "warning"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.node_id is not None:
            out["nodeId"] = self.node_id
        if self.bins is not None:
            out["bins"] = list(self.bins)
        out["severity"] = self.severity
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CaptureWarning:
        bins = raw.get("bins")
        return cls(
            str(raw.get("code", "")),
            str(raw.get("message", "")),
            raw.get("nodeId"),
            tuple(bins) if isinstance(bins, list) else None,
            str(raw.get("severity", "warning")),
        )


# -- reading ---------------------------------------------------------------------------------------
class BundleFormatError(ValueError):
    """A file does not follow the bundle format (message names the file, never a full path)."""


def parse_value(raw: str) -> float | None:
    """A CSV cell as FlowTime reads it: empty → gap (``None``), ``NaN``/``Infinity`` accepted."""
    text = raw.strip()
    if not text:
        return None
    lowered = text.lower()
    if lowered in ("nan", "infinity", "+infinity", "-infinity", "∞", "-∞"):
        return {"nan": math.nan, "-infinity": -math.inf, "-∞": -math.inf}.get(lowered, math.inf)
    try:
        return float(text.replace(",", "")) if "," in text else float(text)
    except ValueError:
        raise BundleFormatError(f"cannot parse value {text[:40]!r}") from None


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text with or without a BOM (FlowTime's C# writer emits one)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BundleFormatError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_series_rows(data: bytes, name: str) -> tuple[str, list[tuple[int, list[str]]]]:
    """(header, (line number, cells split on commas) per row) of a series CSV; blank lines skipped as
    FlowTime does (line numbers count them, so a message points at the line an editor shows)."""
    text = decode_text(data, name)
    lines = text.split("\n")
    header = lines[0].rstrip("\r").strip() if lines else ""
    rows = [
        (number, line.rstrip("\r").split(",")) for number, line in enumerate(lines[1:], 2) if line.strip()
    ]
    return header, rows


def sha256_of(data: bytes) -> str:
    """A manifest's ``files[].hash``: ``sha256:<hex>`` of the file's bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_sha256(digest: Any, data: bytes, *, bare_hex: bool = False) -> bool:
    """Whether ``digest`` (``"sha256:<hex>"``; with ``bare_hex`` also plain hex, as FlowTime v1
    bundles wrote it) is the SHA-256 of ``data``."""
    if not isinstance(digest, str):
        return False
    expected = sha256_of(data)
    text = digest.strip().lower()
    return text == expected or (bare_hex and text == expected.removeprefix("sha256:"))


def load_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(decode_text(data, name))
    except json.JSONDecodeError as exc:
        raise BundleFormatError(f"{name}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def read_json_file(path: Path, name: str | None = None) -> Any:
    return load_json(path.read_bytes(), name or path.name)


# -- the JSON schema -------------------------------------------------------------------------------
@cache
def manifest_schema() -> dict[str, Any]:
    """The telemetry-manifest JSON Schema we publish (FlowTime's, plus the ``severity`` it writes)."""
    text = resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _is_datetime(value: object) -> bool:
    """date-time per RFC 3339 as Python reads ISO 8601 (without needing rfc3339-validator)."""
    from datetime import datetime

    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@cache
def _validator() -> Any:
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - jsonschema is in the [capture] extra
        raise ImportError(
            "validating capture manifests needs jsonschema: pip install 'otel-tele[capture]'"
        ) from exc
    checker = jsonschema.FormatChecker()
    checker.checks("date-time", raises=ValueError)(_is_datetime)
    return jsonschema.Draft7Validator(manifest_schema(), format_checker=checker)


def schema_errors(manifest: Any) -> list[str]:
    """Every schema violation of ``manifest``, as ``path: message`` lines (empty when valid)."""
    errors = sorted(_validator().iter_errors(manifest), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]
