"""`.ci/dev`: prerequisites are checked up front with one message each; the package is installed
again only when pyproject.toml changed."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash") or "/bin/bash"


def _toolbox(tmp_path: Path, python3: str) -> Path:
    """A PATH with the few tools `.ci/dev check` uses, a given python3, and no node/npm/prometheus."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True)
    for tool in ("dirname", "ls", "sort", "cat", "id"):
        found = shutil.which(tool)
        assert found is not None
        (bindir / tool).symlink_to(found)
    (bindir / "python3").write_text(python3)
    (bindir / "python3").chmod(0o755)
    return bindir


def _run(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(cwd / ".ci" / "dev"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_check_names_each_missing_prerequisite(tmp_path: Path) -> None:
    """An old python3, no node/npm and (under CI) no prometheus: one line each, exit 1."""
    old_python = "#!/bin/sh\n[ \"$1\" = -V ] && echo 'Python 3.9.2'\nexit 1\n"
    bindir = _toolbox(tmp_path, old_python)
    env = {"PATH": str(bindir), "HOME": str(tmp_path), "CI": "1", "OTEL_TELE_VENV": str(tmp_path / "venv")}
    done = _run("check", env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("missing: ") for line in lines), lines
    assert any("Python >= 3.11 (python3 is Python 3.9.2)" in line for line in lines)
    assert any("Node.js and npm" in line for line in lines)
    assert any("a C compiler and the Python headers" in line for line in lines)  # no cc on this PATH
    expected = 3
    if not os.access("/usr/bin/prometheus", os.X_OK):
        assert any(line.startswith("missing: prometheus") for line in lines)
        expected += 1
    if not os.access("/usr/bin/chromium", os.X_OK):
        assert any(line.startswith("missing: chromium") for line in lines)
        expected += 1
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        assert any("initdb and pg_ctl" in line for line in lines)
        expected += 1
    assert len(lines) == expected, lines

    # Outside CI the optional pieces are notes (their tests skip); an existing server replaces initdb.
    ok_python = f'#!/bin/sh\nexec {sys.executable} "$@"\n'
    bindir = _toolbox(tmp_path / "ok", ok_python)
    env = {"PATH": str(bindir), "HOME": str(tmp_path), "OTEL_TELE_TEST_PG_DSN": "host=127.0.0.1"}
    done = _run("check", env=env)
    assert done.returncode == 0, done.stderr
    assert "note: Node.js and npm" in done.stderr and "missing" not in done.stderr
    assert "note: a C compiler" in done.stderr


def test_setup_installs_again_only_when_pyproject_changes(tmp_path: Path) -> None:
    """A stamp of pyproject.toml's hash in the virtualenv: an unchanged project is not reinstalled."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "dev", repo / ".ci" / "dev")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    shutil.copy(ROOT / "setup.py", repo / "setup.py")
    # A virtualenv whose python records pip calls instead of installing (everything else is real).
    log = tmp_path / "pip.log"
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    shim = (
        f'#!/bin/sh\nif [ "$1 $2" = "-m pip" ]; then echo "$*" >>{log}; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    (venv_bin / "python").write_text(shim)
    (venv_bin / "python").chmod(0o755)
    env = {**os.environ, "OTEL_TELE_VENV": str(tmp_path / "venv")}

    def pip_calls() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    assert _run("setup", env=env, cwd=repo).returncode == 0
    assert pip_calls() == ["-m pip install -q -e .[test]"]
    assert _run("setup", env=env, cwd=repo).returncode == 0
    assert len(pip_calls()) == 1  # nothing changed: no reinstall
    with (repo / "pyproject.toml").open("a") as out:
        out.write("\n# a change\n")
    assert _run("setup", env=env, cwd=repo).returncode == 0
    assert len(pip_calls()) == 2
    assert _run("setup", env=env, cwd=repo).returncode == 0
    assert len(pip_calls()) == 2
    with (repo / "setup.py").open("a") as out:  # the package map changed: reinstall too
        out.write("\n# a change\n")
    assert _run("setup", env=env, cwd=repo).returncode == 0
    assert len(pip_calls()) == 3
    (repo / "otel_tele").mkdir()  # the C module's source changed: rebuilt in place by a reinstall
    (repo / "otel_tele" / "_speedups.c").write_text("/* a change */\n")
    assert _run("setup", env=env, cwd=repo).returncode == 0
    assert len(pip_calls()) == 4
    assert _run("setup", env=env, cwd=repo).returncode == 0
    assert len(pip_calls()) == 4
