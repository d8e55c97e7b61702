"""A forked child that reports to its parent over a pipe (the kill -9 tests)."""

from __future__ import annotations

import os
from typing import Any


def forked(child: Any, *args: Any) -> tuple[int, int]:
    """Fork ``child(*args, write_fd)``; returns its pid and the read end of its pipe. The child
    never returns into the test runner: it exits when ``child`` does (or raises)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            child(*args, write_fd)
        finally:
            os._exit(1)
    os.close(write_fd)
    return pid, read_fd
