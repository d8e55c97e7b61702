"""Peers that fail the way real ones do: a TCP server that accepts and never answers (a hung
collector or database host), on loopback, started and stopped by the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class HungPeer:
    """A loopback server that accepts every connection and never sends a byte."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.held: list[socket.socket] = []  # accepted connections, kept open, never read or written

    @property
    def connections(self) -> int:
        """Connections accepted so far: whether anything tried to talk to this peer."""
        return len(self.held)


@contextmanager
def hung_listener() -> Iterator[HungPeer]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    peer = HungPeer(server.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            peer.held.append(conn)

    thread = threading.Thread(target=accept, name="hung-listener", daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)
        for conn in peer.held:
            conn.close()
        server.close()
