"""File helpers every file-writing sink shares: durable renames, advisory locks, dead writers.

Example::

    with locked(folder / ".lock", blocking=False):   # BlockingIOError if another process holds it
        os.rename(tmp, folder / name)
        fsync_path(folder)                            # the rename itself survives a power cut
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

#: Descriptors of the locks this process holds. A ``flock`` belongs to the open file, which a forked
#: child shares: the child closes its copies at once (closing never releases a lock the parent still
#: holds; unlocking would), and the holder unlocks explicitly, so a copy can never keep a lock alive.
_lock_fds: set[int] = set()


def _close_inherited_lock_fds() -> None:
    for fd in _lock_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    _lock_fds.clear()


os.register_at_fork(after_in_child=_close_inherited_lock_fds)


@contextlib.contextmanager
def locked(path: Path, *, blocking: bool = True) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if needed).

    Not blocking and busy: ``BlockingIOError``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    _lock_fds.add(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield
    finally:
        if fd in _lock_fds:  # not a copy a fork already closed
            _lock_fds.discard(fd)
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder: the names created or renamed in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
