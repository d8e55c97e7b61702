"""A private PostgreSQL server for tests and benchmarks: ``initdb`` + ``pg_ctl`` from the installed
server binaries into a temporary directory, on a free loopback port, trust auth, stopped by its PID.

The machine's own PostgreSQL (if any) is never touched: tests that kill or restart "the server" kill
and restart this one.

Example::

    with PgServer.started() as server:
        with psycopg.connect(server.admin_dsn) as conn: ...
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# initdb refuses to run as root; when we are root the cluster belongs to this (unprivileged) user.
_SERVICE_USER = "postgres"


class PgServerUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server could not start."""


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: ``$PATH`` first, then Debian's newest version."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PgServerUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the PostgreSQL server package "
        "(Debian: postgresql) or set OTEL_TELE_TEST_PG_DSN to an existing server"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One PostgreSQL cluster in ``root``, listening on 127.0.0.1:``port`` (and a socket in ``root``)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.bin_dir = find_bin_dir()
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port or _free_port()
        self._user = _SERVICE_USER if os.geteuid() == 0 else None
        self._initdb()

    @classmethod
    @contextlib.contextmanager
    def started(cls) -> Iterator[PgServer]:
        """A new server in a temporary directory, stopped and removed on exit."""
        root = Path(tempfile.mkdtemp(prefix="otel-tele-pg-"))
        try:
            server = cls(root)
            server.start()
            try:
                yield server
            finally:
                server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            user=self._user,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.root,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PgServerUnavailable(f"{args[0]} failed: {result.stderr.strip()}\n{log}")

    def _initdb(self) -> None:
        # fsync off: a test cluster trades crash safety for speed (the fault test kills the
        # postmaster with a fast shutdown, which still writes everything out).
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        data, log = str(self.data), str(self.log)
        self._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")

    @property
    def pid(self) -> int | None:
        """The postmaster's PID, from its pid file (None when stopped)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self, timeout_s: float = 60.0) -> None:
        """Fast shutdown (SIGINT to the postmaster by PID); waits until the process has gone."""
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while _alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours has exited; reap it (pg_ctl daemonises, so it normally is not ours).
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return Path(f"/proc/{pid}").exists()
