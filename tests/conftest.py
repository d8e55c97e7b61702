"""Shared fixtures: strict internal errors, clean OTel globals, temp data dirs, free ports, the test
session's own PostgreSQL server."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_tele import testing

from ._pg_server import PgServer

# No test may talk to a collector or bind :9464 unless it asks to.
for _var, _value in {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_TELE_SINKS": "none",
}.items():
    os.environ.setdefault(_var, _value)


@pytest.fixture(autouse=True)
def _strict_and_clean() -> Iterator[None]:
    """Internal errors fail the test; each test starts and ends with no global pipeline."""
    testing.raise_internal_errors(True)
    testing.reset()
    yield
    testing.reset()
    testing.raise_internal_errors(False)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private OTEL_TELE_DATA_DIR."""
    path = tmp_path / "telemetry"
    monkeypatch.setenv("OTEL_TELE_DATA_DIR", str(path))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def capture() -> Iterator[testing.Capture]:
    """An in-memory private pipeline."""
    with testing.capture() as cap:
        yield cap


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    """The session's own PostgreSQL (``initdb`` + ``pg_ctl`` in a temp dir, a free loopback port),
    or None when ``OTEL_TELE_TEST_PG_DSN`` names an existing server to use instead."""
    if os.environ.get("OTEL_TELE_TEST_PG_DSN"):
        yield None
        return
    with PgServer.started() as server:
        yield server


@pytest.fixture(scope="session")
def pg_admin_dsn(pg_server: PgServer | None) -> str:
    """A DSN with the right to create databases on the test server."""
    return pg_server.admin_dsn if pg_server else os.environ["OTEL_TELE_TEST_PG_DSN"]
