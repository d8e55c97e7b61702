"""A loopback HTTP/1.1 proxy that loses replies: it forwards each request to the upstream, waits for
the upstream's whole response, and then, for the first ``drop`` requests, closes the client's
connection instead of answering. The client saw a timeout-like failure after the server took its
request: exactly when OTLP exporters and collectors re-send the same request."""

from __future__ import annotations

import socket
import threading
from typing import Self


def _read_message(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes] | None:
    """One HTTP message with a Content-Length body (what OTLP/HTTP clients and servers send):
    (message, bytes read beyond it); None when the peer closed first."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


class LossyProxy:
    """``LossyProxy(upstream_port, drop=1)``: its ``port`` forwards to the upstream; ``forwarded``
    counts the requests the upstream answered, ``dropped`` the replies thrown away."""

    def __init__(self, upstream_port: int, *, drop: int = 1) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.forwarded = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60) as upstream:
            pending = b""
            while True:
                request = _read_message(client, pending)
                if request is None:
                    return
                message, pending = request
                upstream.sendall(message)
                response = _read_message(upstream)
                if response is None:
                    return
                with self._lock:
                    self.forwarded += 1
                    lose = self.dropped < self.drop
                    if lose:
                        self.dropped += 1
                if lose:
                    client.shutdown(socket.SHUT_RDWR)  # the server took it; the client never hears
                    return
                client.sendall(response[0])

    def close(self) -> None:
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
