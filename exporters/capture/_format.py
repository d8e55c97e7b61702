"""The writer's side of the bundle format, byte level: value text, CSV, JSON, safe names and files
(the layout itself is declared in :mod:`otel_tele.exporters.capture.schema`).

Everything here mirrors what FlowTime's C# code writes (``TelemetryCapture.cs``,
``CaptureManifestWriter.cs``): G17 invariant number text, ``bin_index,classId,value`` CSVs with LF and
no BOM, ``sha256:<hex>`` of the file bytes, indented camelCase JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .schema import V2_HEADER, BundleFormatError, decode_text


# -- values ----------------------------------------------------------------------------------------
def _g17(value: float) -> str:
    # C's %.17g switches to exponent form at the same thresholds as .NET's G17 (exp < -4 or >= 17)
    # and also pads the exponent to two digits; only the letter's case differs.
    return format(value, ".17G")


def format_value(value: float | None, finite: Callable[[float], str] = _g17) -> str:
    """.NET ``double.ToString("G17", InvariantCulture)`` text (``finite`` picks another format for
    finite numbers); ``None`` (a gap) is an empty cell.

    >>> [format_value(v) for v in (10.0, 0.6, 1e20, float("nan"), float("-inf"), None)]
    ['10', '0.59999999999999998', '1E+20', 'NaN', '-Infinity', '']
    """
    if value is None:
        return ""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return finite(value)


def all_finite(values: Sequence[float | None]) -> bool:
    """No gap, NaN or ±inf — in one C-speed pass: a sum of finite numbers is finite unless it
    overflows, which only sends the series down the general (per-value) path."""
    try:
        return math.isfinite(sum(values))  # type: ignore[arg-type]
    except (TypeError, OverflowError):
        return False


def encode_csv(values: Sequence[float | None], class_id: str) -> bytes:
    """A v2 bundle CSV: header, one ``i,classId,value`` row per bin, LF, UTF-8 without BOM."""
    middle = f",{class_id},"
    if all_finite(values):  # ".17G" is _g17's text for every finite number
        lines = [f"{i}{middle}{v:.17G}" for i, v in enumerate(values)]
    else:
        lines = [f"{i}{middle}{format_value(v)}" for i, v in enumerate(values)]
    return (V2_HEADER + "\n" + "\n".join(lines) + "\n" if lines else V2_HEADER + "\n").encode("utf-8")


# -- names -----------------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_MAX_NAME = 200


def safe_file_name(name: str) -> str:
    """A flat file name that cannot leave the bundle directory.

    FlowTime only replaces spaces; we also replace path separators, NUL and anything outside
    ``[A-Za-z0-9_.-]`` so a hostile node id or ``outputs[].as`` cannot become a path. Ordinary names are
    unchanged.
    """
    cleaned = _UNSAFE.sub("_", name.replace(" ", "_"))
    if cleaned.strip(".") == "":
        cleaned = "series" + cleaned
    if len(cleaned) > _MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (
            (stem[: _MAX_NAME - 20] + "_" + digest + dot + ext)
            if dot
            else cleaned[: _MAX_NAME - 13] + "_" + digest
        )
    return cleaned


def unique_names(names: Iterable[str]) -> list[str]:
    """Make names unique case-insensitively (FlowTime keys files by path, ignoring case)."""
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, n = name, 2
        stem, dot, ext = name.rpartition(".")
        while candidate.lower() in seen:
            candidate = f"{stem}_{n}.{ext}" if dot else f"{name}_{n}"
            n += 1
        seen.add(candidate.lower())
        result.append(candidate)
    return result


# -- JSON ------------------------------------------------------------------------------------------
def dump_json(value: Any) -> bytes:
    """Indented JSON as System.Text.Json writes it (2 spaces, ``"key": value``, no trailing newline)."""
    return json.dumps(value, indent=2, ensure_ascii=True, allow_nan=False).encode("ascii")


class RawNumber(str):
    """A JSON number kept as its source text (System.Text.Json re-emits numbers verbatim)."""


def load_json_raw_numbers(data: bytes, name: str) -> Any:
    try:
        return json.loads(
            decode_text(data, name), parse_int=RawNumber, parse_float=RawNumber, parse_constant=RawNumber
        )
    except json.JSONDecodeError as exc:
        raise BundleFormatError(f"{name}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


_JS_ESCAPES = {
    '"': "\\u0022",
    "\\": "\\\\",
    "&": "\\u0026",
    "'": "\\u0027",
    "+": "\\u002B",
    "<": "\\u003C",
    ">": "\\u003E",
    "`": "\\u0060",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _js_string(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _JS_ESCAPES:
            out.append(_JS_ESCAPES[ch])
        elif code < 0x20 or code > 0x7E:
            data = ch.encode("utf-16-be", "surrogatepass")
            out.extend(f"\\u{data[i]:02X}{data[i + 1]:02X}" for i in range(0, len(data), 2))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def dotnet_double(value: float) -> str:
    """System.Text.Json's text for a double: shortest round-trip, ``E+XX`` exponents."""
    text = repr(float(value))
    if text.endswith(".0"):
        text = text[:-2]
    return text.replace("e", "E")


def dotnet_compact_json(value: Any) -> str:
    """``JsonNode.ToJsonString()`` with default options: compact, JavaScriptEncoder.Default escaping."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return dotnet_double(value)
    if isinstance(value, str):
        return _js_string(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{_js_string(str(k))}:{dotnet_compact_json(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(dotnet_compact_json(v) for v in value) + "]"
    raise TypeError(f"not JSON: {type(value).__name__}")


# -- files -----------------------------------------------------------------------------------------
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class UnsafePath(ValueError):
    """A path under a root that goes through a symbolic link or would leave the root."""


def inside(root: Path, parts: Sequence[str]) -> Path:
    """``root/parts…`` when no existing component below ``root`` is a symbolic link and the path
    resolves inside ``root``; otherwise :class:`UnsafePath`. Parts that do not exist yet are fine.

    The root itself may be a link (an administrator's choice, e.g. ``/tmp`` on macOS); nothing a
    request or a run directory names may be one.
    """
    path = root
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise UnsafePath(f"path component {part[:80]!r} is not allowed")
        path = path / part
        if path.is_symlink():
            raise UnsafePath("the path goes through a symbolic link")
    # On POSIX no ``resolve()`` check is needed: every part is one plain name (no separator, no
    # ``..``) and none that exists is a link, so the path is ``root``'s resolution joined with the
    # parts, by construction (two resolves per file were ~8 % of a 200-series capture). Windows
    # also has drive-relative names (``C:x``), so there the check stays.
    if os.name == "nt" and not path.resolve().is_relative_to(root.resolve()):
        raise UnsafePath("the path leaves its root directory")
    return path


def make_dirs_inside(root: Path, parts: Sequence[str]) -> Path:
    """Create ``root/parts…`` one component at a time, refusing any that is (or became) a link."""
    root.mkdir(parents=True, exist_ok=True)
    path = inside(root, parts)
    current = root
    for part in parts:
        current = current / part
        with _ignore_os_error():
            current.mkdir()
        if current.is_symlink() or not current.is_dir():
            raise UnsafePath("the path goes through a symbolic link or a file")
    return path


def read_inside(root: Path, relative: str) -> bytes | None:
    """The bytes of ``root/relative`` (``/``-separated), ``None`` when it is not a regular file;
    :class:`UnsafePath` when a symbolic link is on the way. The final open does not follow links."""
    path = inside(root, [part for part in relative.split("/") if part not in ("", ".")])
    try:
        # Non-blocking so that a FIFO planted in a run directory cannot hang the reader.
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path.is_symlink():
            raise UnsafePath("the path goes through a symbolic link") from None
        if path.is_dir():
            return None
        raise exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


def stage(path: Path, data: bytes) -> str:
    """``data`` in a new temporary sibling of ``path`` (for ``os.replace`` onto ``path``); its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def write_new(path: Path, data: bytes) -> None:
    """``data`` as the new file ``path`` (never an existing file or a link; mode 0600, as a staged
    file gets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        discard(str(path))
        raise


def discard(temporary: str) -> None:
    with _ignore_os_error():
        os.unlink(temporary)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling and rename it over ``path``: readers see all or nothing."""
    tmp = stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


class _ignore_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, OSError)
