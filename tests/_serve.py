"""A real ``otel-tele serve`` process for tests: free loopback ports, its own data dir, stopped by PID."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._services import Service, free_port


class Serve:
    def __init__(
        self,
        service: Service,
        grpc_port: int,
        http_port: int,
        data_dir: Path,
        token: str | None,
        otlp_http_port: int = 0,
    ) -> None:
        self.service = service
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.otlp_http_port = otlp_http_port
        self.data_dir = data_dir
        #: What a client sends to be let in (nothing without a token).
        self.headers = {"authorization": f"Bearer {token}"} if token else {}
        self.metadata = tuple(self.headers.items())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def otlp_http_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"


@contextmanager
def serve_process(
    tmp_path: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    sinks: str = "sqlite",
    token: str | None = None,
) -> Iterator[Serve]:
    """``otel-tele serve --otlp-grpc 127.0.0.1:<free> --otlp-http 127.0.0.1:<free> --http
    127.0.0.1:<free> <extra…>`` (with ``OTEL_TELE_SERVE_TOKEN`` = ``token`` when given)."""
    grpc_port, http_port, otlp_http_port = free_port(), free_port(), free_port()
    data_dir = tmp_path / "data"
    cli = str(Path(sys.executable).parent / "otel-tele")
    argv = [cli, "serve", "--otlp-grpc", f"127.0.0.1:{grpc_port}", "--http", f"127.0.0.1:{http_port}",
            "--otlp-http", f"127.0.0.1:{otlp_http_port}", *extra]  # fmt: skip
    service = Service(
        "serve",
        argv,
        tmp_path,
        env={
            "OTEL_TELE_DATA_DIR": str(data_dir),
            "OTEL_TELE_SINKS": sinks,
            "OTEL_METRICS_EXPORTER": "none",
            **({"OTEL_TELE_SERVE_TOKEN": token} if token else {}),
            **(env or {}),
        },
    )
    try:
        service.wait_ready(grpc_port, http_port, otlp_http_port)
        yield Serve(service, grpc_port, http_port, data_dir, token, otlp_http_port)
    finally:
        service.stop()
