"""ForkGate: the process forks only while no thread is inside; the child gets an empty gate."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import pytest

from otel_tele._internal import ForkGate


def _fork_and_report(child: Callable[[], bytes]) -> tuple[int, bytes]:
    """Fork; the child writes what ``child()`` returns to a pipe and exits. Returns the child's exit
    code and what it wrote."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            os.write(write_fd, child())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    data = b""
    while chunk := os.read(read_fd, 1024):
        data += chunk
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), data


def test_a_fork_waits_for_the_thread_inside_and_the_child_can_enter() -> None:
    gate = ForkGate(timeout_s=60.0, what="test gate")
    inside, release = threading.Event(), threading.Event()
    fork_started = threading.Event()
    # Registered after the gate's own hooks, so it runs before them: the fork has begun.
    os.register_at_fork(before=fork_started.set)
    left = []

    def occupant() -> None:
        with gate:
            inside.set()
            release.wait(60)
            left.append(True)  # still inside: a fork that did not wait would miss this

    def child() -> bytes:
        with gate:  # the child's gate is new and open, though the parent's was closed at the fork
            return b"left" if left else b"inside"

    thread = threading.Thread(target=occupant)
    thread.start()
    assert inside.wait(60)
    outcome: list[tuple[int, bytes]] = []
    forker = threading.Thread(target=lambda: outcome.append(_fork_and_report(child)))
    forker.start()
    assert fork_started.wait(60)
    release.set()
    forker.join(60)
    thread.join(60)
    assert outcome == [(0, b"left")]
    with gate:  # open again in the parent
        pass


def test_a_thread_inside_may_enter_again_and_fork_itself(caplog: pytest.LogCaptureFixture) -> None:
    gate = ForkGate(timeout_s=5.0, what="test gate")
    with caplog.at_level(logging.WARNING, logger="otel_tele"):
        with gate:
            with gate:
                code, data = _fork_and_report(lambda: b"ok")  # the forking thread does not wait for itself
            assert (code, data) == (0, b"ok")
        with gate:
            pass
    assert not [r for r in caplog.records if "test gate" in r.getMessage()]
