"""The otel-tele CLI (--version, doctor) and the built wheel's layout and entry points."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import otel_tele
from otel_tele.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """otel-tele --version prints the distribution version."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"otel-tele {otel_tele.__version__}"


def test_doctor_reports_configuration_destinations_and_reachability(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """doctor resolves every option with its source, lists sinks and probes the endpoints."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
        monkeypatch.setenv("OTEL_TELE_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("OTEL_TELE_POSTGRES_DSN", "postgresql://app:hunter2@127.0.0.1:5432/test")
        monkeypatch.setenv("OTEL_TELE_SINKS", "sqlite,postgres")
        assert main(["doctor", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    config = {row["option"]: row for row in report["configuration"]}
    assert config["otlp_endpoint"]["source"] == "OTEL_EXPORTER_OTLP_ENDPOINT"
    assert config["prometheus_port"] == {"option": "prometheus_port", "value": 9464, "source": "default"}
    assert "hunter2" not in json.dumps(report)
    otlp = next(row for row in report["destinations"] if row["exporter"] == "otlp")
    assert otlp["reachable"] is True and otlp["destination"].endswith(f":{port}")
    assert {row["exporter"] for row in report["destinations"]} >= {
        "prometheus",
        "sink:sqlite",
        "sink:postgres",
    }


def test_doctor_human_output(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The default output is aligned tables."""
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "Configuration (argument > environment > default):" in out and "Where telemetry goes:" in out
    assert "event_queue_size" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A bare `otel-tele` is a usage error."""
    assert main([]) == 2
    assert "usage: otel-tele" in capsys.readouterr().out


def _clean_source_copy(target: Path) -> Path:
    """The packaged parts of the tree, without build leftovers that setuptools would reuse."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for folder in ("otel_tele", "exporters", "instrumentation"):
        shutil.copytree(ROOT / folder, target / folder, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, target / name)
    return target


def test_wheel_maps_the_top_level_folders_into_one_package(tmp_path: Path) -> None:
    """The wheel holds otel_tele.exporters/.instrumentation from exporters/ and instrumentation/,
    py.typed, and the entry points; importing from the unpacked wheel works."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(_clean_source_copy(tmp_path / "src")),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = list(tmp_path.glob("otel_tele-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        archive.extractall(tmp_path / "unpacked")
    assert {
        "otel_tele/__init__.py",
        "otel_tele/py.typed",
        "otel_tele/exporters/__init__.py",
        "otel_tele/instrumentation/__init__.py",
        "otel_tele/semconv/robot.py",
        "otel_tele/cli/_doctor.py",
        "otel_tele/demo/app.py",
    } <= names
    assert not any(name.startswith(("exporters/", "instrumentation/", "tests/")) for name in names)
    in_tree = {
        f"otel_tele/{p.relative_to(ROOT / 'otel_tele').as_posix()}"
        for p in (ROOT / "otel_tele").rglob("*.py")
    }
    for folder in ("exporters", "instrumentation"):
        in_tree |= {
            f"otel_tele/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
            for p in (ROOT / folder).rglob("*")
            if p.suffix in (".py", ".json")
        }
    assert in_tree - names == set(), "modules missing from the wheel (setup.py finds subpackages)"
    for expected in (
        "[opentelemetry_distro]",
        "[opentelemetry_configurator]",
        "otel_tele_sqlite",
        "otel-tele = otel_tele.cli:main",
        "[otel_tele.domains]",
        "robot = otel_tele.domains.robot:DOMAIN",
    ):
        assert expected in entry_points
    # Import from the unpacked wheel, not from this source tree's editable install.
    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
        f"sys.path.insert(0, {str(tmp_path / 'unpacked')!r}); "
        "import otel_tele, otel_tele.exporters, otel_tele.instrumentation; print(otel_tele.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(tmp_path / "unpacked"))
