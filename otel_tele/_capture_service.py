"""Explicit telemetry generation for a run (spec 003; FlowTime's ``TelemetryGenerationService``).

Behind ``POST /v1/telemetry/captures`` and the run summaries of ``GET /v1/flow/runs`` (``/v1/runs``).
Names that become paths (run ids, capture keys, ``directory``) are checked here, once: one safe path
segment each (``[A-Za-z0-9][A-Za-z0-9._-]*``, matched against the whole string). Every path the
service reads, writes or deletes - the run's own ``model/telemetry`` included - is checked against its
root with no symbolic link anywhere below the root, and clearing a capture directory never follows a
link.
The exists-check and the write happen under one lock per capture directory (a thread lock plus an
``flock`` on a lock file), so of N identical concurrent requests exactly one generates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._internal import fork_safe
from .exporters.capture import CaptureError, GapOptions, RunNotFound
from .exporters.capture._bundle import utc_timestamp, write_autocapture, write_bundle
from .exporters.capture._format import (
    UnsafePath,
    atomic_write,
    dump_json,
    inside,
    make_dirs_inside,
    read_inside,
)
from .exporters.capture._rundir import autocapture_for, bundle_source, read_run
from .exporters.capture.schema import AUTOCAPTURE, MANIFEST, BundleFormatError, CaptureWarning, load_json

_log = logging.getLogger("otel_tele")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}")
_MAX_DEPTH = 8
TELEMETRY_MANIFEST = "telemetry-manifest.json"


class InvalidRequest(ValueError):
    """A 400: the message says what is wrong and never contains a server path."""


def check_segment(value: Any, what: str) -> str:
    """``value`` as one safe path segment, or :class:`InvalidRequest`."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{what} must be a non-empty string.")
    if not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise InvalidRequest(
            f"{what} {value[:80]!r} is not allowed: use letters, digits, '.', '_' and '-' "
            f"(at most 128, starting with a letter or digit; no '/', '..', '%' or NUL)."
        )
    return value


def contained(root: Path, segments: list[str], what: str) -> Path:
    """``root/segments…`` when no existing component is a symlink and it resolves inside ``root``."""
    try:
        path: Path = inside(root, segments)
    except UnsafePath as exc:
        raise InvalidRequest(f"{what}: {exc}.") from None
    return path


@dataclass
class GenerationResult:
    """FlowTime's ``TelemetryGenerationResult`` with its manifest snapshot."""

    generated: bool
    already_exists: bool
    generated_at: str | None
    source_run_id: str
    warnings: list[CaptureWarning] = field(default_factory=list)
    supports_class_metrics: bool = False
    class_coverage: str | None = None
    classes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "capture": {
                "generated": self.generated,
                "alreadyExists": self.already_exists,
                "generatedAtUtc": self.generated_at,
                "sourceRunId": self.source_run_id,
                "warnings": [
                    {"code": w.code, "message": w.message, "severity": w.severity, "nodeId": w.node_id}
                    for w in self.warnings
                ],
                "supportsClassMetrics": self.supports_class_metrics,
                "classCoverage": self.class_coverage,
                "classes": self.classes,
            }
        }


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = fork_safe(threading.Lock())
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class _Target:
    """A capture directory as its root and the checked segments below it."""

    root: Path
    parts: list[str]

    @property
    def path(self) -> Path:
        return contained(self.root, self.parts, "the capture directory")

    def make(self) -> Path:
        try:
            path: Path = make_dirs_inside(self.root, self.parts)
        except UnsafePath as exc:
            raise InvalidRequest(f"the capture directory: {exc}.") from None
        return path


@contextlib.contextmanager
def _exclusive(target: _Target) -> Iterator[None]:
    """One writer per capture directory, across threads and processes."""
    directory = target.path
    key = str(directory.resolve())
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(key, fork_safe(threading.Lock()))
    with lock:
        parent = _Target(target.root, target.parts[:-1]).make()
        # O_NOFOLLOW: a lock file planted as a link must not create or open anything elsewhere.
        try:
            fd = os.open(parent / f".{directory.name}.capture-lock", _LOCK_FLAGS, 0o600)
        except OSError:
            raise InvalidRequest("the capture directory's lock file is not a regular file.") from None
        with os.fdopen(fd, "a+b") as handle:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows: the thread lock still serialises this process
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class CaptureService:
    """Generate capture bundles for FlowTime runs under ``runs_root`` into ``telemetry_root`` (or the
    run), and summarise those runs (``GET /v1/flow/runs``)."""

    def __init__(self, runs_root: Path, telemetry_root: Path | None) -> None:
        self.runs_root = Path(runs_root)
        self.telemetry_root = Path(telemetry_root) if telemetry_root is not None else None

    def run_dir(self, run_id: Any) -> Path:
        path = contained(self.runs_root, [check_segment(run_id, "runId")], "runId")
        if not path.is_dir():
            raise RunNotFound(f"Run '{run_id}' was not found.")
        return path

    def capture_target(self, run_dir: Path, capture_key: Any, directory: Any) -> _Target:
        if directory is not None:
            if not isinstance(directory, str) or not directory:
                raise InvalidRequest("output.directory must be a non-empty relative path.")
            if directory.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", directory):
                raise InvalidRequest("output.directory must be relative to the telemetry root, not absolute.")
            segments = [check_segment(s, "output.directory segment") for s in re.split(r"[/\\]", directory)]
            if len(segments) > _MAX_DEPTH:
                raise InvalidRequest(f"output.directory is deeper than {_MAX_DEPTH} levels.")
            contained(self._root(), segments, "output.directory")
            return _Target(self._root(), segments)
        if capture_key is not None:
            segments = [check_segment(capture_key, "output.captureKey")]
            contained(self._root(), segments, "output.captureKey")
            return _Target(self._root(), segments)
        return self._run_telemetry(run_dir)

    def _run_telemetry(self, run_dir: Path) -> _Target:
        target = _Target(self.runs_root, [run_dir.name, "model", "telemetry"])
        contained(target.root, target.parts, "the run's model/telemetry")
        return target

    def _root(self) -> Path:
        if self.telemetry_root is None:
            raise CaptureError("TelemetryRoot is not configured; cannot resolve captureKey.")
        return self.telemetry_root

    def generate(
        self, run_id: Any, *, capture_key: Any = None, directory: Any = None, overwrite: bool = False
    ) -> GenerationResult:
        """Capture run ``run_id``; ``already_exists`` (a 409) when a bundle is there and not overwritten."""
        run_dir = self.run_dir(run_id)
        target = self.capture_target(run_dir, capture_key, directory)
        run_scoped = target == self._run_telemetry(run_dir)
        with _exclusive(target):
            path = target.path  # checked again under the lock: the tree may have changed meanwhile
            if _read_optional(path, MANIFEST) is not None and not overwrite:
                _log.info("telemetry bundle already exists for run %s (captureKey=%s)", run_id, capture_key)
                return self._existing(path, str(run_id))
            _log.info("generating telemetry bundle for run %s (captureKey=%s)", run_id, capture_key)
            path = target.make()
            if overwrite:
                _clear(path, keep=TELEMETRY_MANIFEST if run_scoped else None)
            return self._write(run_dir, path, capture_key)

    def _write(self, run_dir: Path, target: Path, capture_key: Any) -> GenerationResult:
        run = read_run(run_dir)
        generated_at = utc_timestamp()
        written = write_bundle(bundle_source(run), target, options=GapOptions(), captured_at=generated_at)
        document = autocapture_for(run, capture_key=capture_key, generated_at=generated_at)
        write_autocapture(target, document)
        telemetry_dir = self._run_telemetry(run_dir).make()
        # Written, not copied: rename replaces a planted link instead of writing through it.
        atomic_write(telemetry_dir / TELEMETRY_MANIFEST, dump_json(written.manifest))
        _log.info(
            "telemetry bundle generated for run %s (templateId=%s, captureKey=%s, files=%d, warnings=%d)",
            run.run_id,
            document["templateId"],
            capture_key,
            len(written.plan.files),
            len(written.plan.warnings),
        )
        manifest = written.manifest
        return GenerationResult(
            True,
            False,
            generated_at,
            run.run_id,
            list(written.plan.warnings),
            manifest["supportsClassMetrics"],
            manifest.get("classCoverage"),
            list(manifest.get("classes") or ()),
        )

    def _existing(self, target: Path, run_id: str) -> GenerationResult:
        manifest = _read_optional(target, MANIFEST) or {}
        autocapture = _read_optional(target, AUTOCAPTURE) or {}
        generated_at = autocapture.get("generatedAtUtc")
        return GenerationResult(
            False,
            True,
            generated_at if isinstance(generated_at, str) else None,
            run_id,
            [],
            manifest.get("supportsClassMetrics") is True,
            manifest.get("classCoverage"),
            [c for c in manifest.get("classes") or () if isinstance(c, str) and c.strip()],
        )

    # -- run summaries --------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        if not self.runs_root.is_dir():
            return []
        out = []
        for path in sorted(self.runs_root.iterdir()):
            if (
                _SEGMENT.fullmatch(path.name)
                and not path.is_symlink()
                and _read_optional(path, "run.json") is not None
            ):
                out.append(self.summary(path))
        return out

    def summary(self, run_dir: Path) -> dict[str, Any]:
        """Run facts without any filesystem path, plus the telemetry summary."""
        run = _read_optional(run_dir, "run.json") or {}
        metadata = _read_optional(run_dir, "model/metadata.json") or {}
        grid = run.get("grid") if isinstance(run.get("grid"), dict) else None
        return {
            "runId": run.get("runId", run_dir.name),
            "templateId": metadata.get("templateId"),
            "createdUtc": run.get("createdUtc"),
            "grid": {k: grid.get(k) for k in ("bins", "binSize", "binUnit")} if grid else None,
            "telemetry": telemetry_summary(run_dir),
        }


def telemetry_summary(run_dir: Path) -> dict[str, Any]:
    """``{available, generatedAtUtc, warningCount, sourceRunId}`` from ``model/telemetry``."""
    folder = "model/telemetry/"
    manifest = _read_optional(run_dir, folder + TELEMETRY_MANIFEST) or _read_optional(
        run_dir, folder + MANIFEST
    )
    if manifest is None:
        return {"available": False, "generatedAtUtc": None, "warningCount": 0, "sourceRunId": None}
    provenance: dict[str, Any] = (
        manifest["provenance"] if isinstance(manifest.get("provenance"), dict) else {}
    )
    autocapture = _read_optional(run_dir, folder + AUTOCAPTURE) or {}
    warnings = manifest.get("warnings")
    return {
        "available": True,
        "generatedAtUtc": autocapture.get("generatedAtUtc") or provenance.get("capturedAtUtc"),
        "warningCount": len(warnings) if isinstance(warnings, list) else 0,
        "sourceRunId": autocapture.get("sourceRunId") or provenance.get("runId"),
    }


def _read_optional(root: Path, relative: str) -> dict[str, Any] | None:
    """A JSON object under ``root``; ``None`` when missing, unreadable, not JSON or behind a link."""
    try:
        data = read_inside(root, relative)
        value = load_json(data, relative) if data is not None else None
    except (OSError, BundleFormatError, UnsafePath):
        return None
    return value if isinstance(value, dict) else None


def _clear(directory: Path, *, keep: str | None) -> None:
    """Delete the regular files directly in ``directory``; links (and what they point to) are left.

    The directory is opened without following a link and files are unlinked relative to that
    descriptor, so swapping the directory for a link after the check deletes nothing elsewhere.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
    try:
        with os.scandir(fd) as entries:
            names = [e.name for e in entries if e.is_file(follow_symlinks=False) and e.name != keep]
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
