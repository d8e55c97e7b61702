"""Run artifacts (spec 000: checkpoints, config snapshots, QA logs), streamed and hashed while copied.

An ``fda.artifact`` log record names a local file (or carries up to 1 MiB inline); the capsule sink
copies it into the folder of its run — the production run's temp folder (published with the run, so
no run folder is ever visible without its artifacts) or ``flows/<flow>/artifacts/<run_id>/`` for a
dev/tuner run. A copy goes through ``.part-<name>`` in fixed-size chunks (memory does not grow with
the file) and is renamed to ``<name>`` once whole and synced; then one line is appended to the
folder's ``artifacts.jsonl`` index (name, kind, size, sha256). A writer killed mid-copy leaves a
``.part-`` file that :func:`listing` ignores and :func:`clean` removes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otel_tele._internal import PROCESS_TOKEN
from otel_tele.semconv import fda as v

from . import _flow as flows
from .schema import ARTIFACT_INDEX as INDEX
from .schema import ARTIFACT_PART_PREFIX as PART_PREFIX
from .schema import ARTIFACTS_DIR, is_run_file
from .schema import artifact_listing as listing

_log = logging.getLogger("otel_tele")
#: Chunk of a streamed copy: large enough for full-speed I/O, small enough to be no memory at all.
CHUNK_BYTES = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class ArtifactError(ValueError):
    """An artifact record that cannot be stored (bad name, unreadable or changed source)."""


def store(folder: Path, attrs: Mapping[str, Any], *, fsync: bool) -> dict[str, Any]:
    """Copy the artifact ``attrs`` describes into ``folder``; returns its index entry."""
    name = v.check_artifact_name(attrs.get(v.ARTIFACT_NAME))
    kind = attrs.get(v.ARTIFACT_KIND) or "file"
    if kind not in v.ARTIFACT_KINDS:
        raise ArtifactError(f"artifact {name!r}: unknown kind {str(kind)[:40]!r}")
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{PART_PREFIX}{name}"
    content = attrs.get(v.ARTIFACT_CONTENT)
    source = attrs.get(v.ARTIFACT_SOURCE)
    if isinstance(content, str):
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ArtifactError(f"artifact {name!r}: inline content is not base64") from None
        size, digest = _write(part, [data], fsync=fsync)
    elif isinstance(source, str):
        if attrs.get(v.ARTIFACT_ORIGIN) != PROCESS_TOKEN:
            raise ArtifactError(
                f"artifact {name!r}: a file path from another process is not read (attach bytes, or "
                "record in the process that owns the file)"
            )
        size, digest = _copy(source, part, fsync=fsync)
        expected = attrs.get(v.ARTIFACT_SIZE)
        if type(expected) is int and expected != size:
            part.unlink(missing_ok=True)
            raise ArtifactError(
                f"artifact {name!r}: {source!r} changed after attach ({expected} bytes then, {size} now)"
            )
    else:
        raise ArtifactError(f"artifact {name!r}: neither a source path nor inline content")
    os.replace(part, folder / name)
    entry = {"name": name, "kind": kind, "size": size, "sha256": digest}
    with open(folder / INDEX, "a", encoding="utf-8") as index:
        index.write(json.dumps(entry) + "\n")
        index.flush()
        if fsync:
            os.fsync(index.fileno())
    if fsync:
        flows._fsync(folder)
    return entry


def _copy(source: str, part: Path, *, fsync: bool) -> tuple[int, str]:
    try:
        fd = os.open(source, os.O_RDONLY | _NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact source {source!r} ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArtifactError(f"artifact source {source!r} is not a regular file")
        return _write(part, iter(lambda: src.read(CHUNK_BYTES), b""), fsync=fsync)


def _write(part: Path, chunks: Any, *, fsync: bool) -> tuple[int, str]:
    """Write ``chunks`` to ``part`` (created afresh, never through a symlink), hashing as it goes."""
    part.unlink(missing_ok=True)  # a leftover of a killed copy
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC, 0o644)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            if fsync:
                os.fsync(out.fileno())
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def clean(folder: Path, *, drop_unlisted: bool = False) -> None:
    """Remove copies a killed writer left half done and the index (once a manifest lists the
    artifacts); with ``drop_unlisted``, also a copy renamed into place whose index line the kill
    prevented (the manifest does not list it, so the folder must not hold it)."""
    if drop_unlisted:
        listed = listing(folder)
        for path in folder.iterdir():
            name = path.name
            if name in listed or is_run_file(name):
                continue
            try:
                v.check_artifact_name(name)
            except ValueError:
                continue
            if path.is_file() or path.is_symlink():
                path.unlink(missing_ok=True)
    for part in folder.glob(f"{PART_PREFIX}*"):
        part.unlink(missing_ok=True)
    (folder / INDEX).unlink(missing_ok=True)


def link_into(source: Path, folder: Path) -> None:
    """Give ``folder`` (a production temp folder) the artifacts of ``source`` by hard links: no copy,
    and ``source`` stays whole until the caller removes it."""
    entries = listing(source)
    for name in entries:
        os.link(source / name, folder / name, follow_symlinks=False)
    with open(folder / INDEX, "w", encoding="utf-8") as index:
        for name, entry in entries.items():
            index.write(json.dumps({"name": name, **entry}) + "\n")


def prune_flow(
    flow_dir: Path, *, older_than: float, runs: frozenset[str] = frozenset(), grace_seconds: float
) -> list[str]:
    """Remove the artifact folders of a flow's runs last written before ``older_than`` (epoch
    seconds: the flow's retention) or listed in ``runs`` (archived), and copies a killed writer left
    half done (untouched for ``grace_seconds``: a copy in progress keeps writing); returns the run ids
    whose folders went."""
    removed: list[str] = []
    base = flow_dir / ARTIFACTS_DIR
    if not base.is_dir():
        return removed
    stale = time.time() - grace_seconds
    for folder in sorted(base.iterdir()):
        if not folder.is_dir() or folder.is_symlink():
            continue
        try:
            times = {p: p.lstat().st_mtime for p in folder.iterdir()}
        except OSError:
            continue
        if folder.name in runs or max(times.values(), default=0.0) < older_than:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
            continue
        for path, mtime in times.items():
            if path.name.startswith(PART_PREFIX) and mtime < stale:
                path.unlink(missing_ok=True)
    return removed
