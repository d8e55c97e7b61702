"""The whole demo, as a newcomer runs it (issue 11 §4): the commands it prints work as printed, the
sizes it reports are the files' sizes after shutdown, every bundle it writes is named, a re-run does
not mix with the previous run, and it ends with next steps."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def _demo(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_tele.demo", "--seconds", "0.5", "--requests", "20"],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_output_is_true_and_reruns_do_not_mix(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr
    second = _demo(tmp_path)
    assert second.returncode == 0, second.stderr
    out = second.stdout
    assert "Cleared the previous demo run in demo-output" in out
    data = tmp_path / "demo-output"

    # Not mixed: the database holds exactly the second run's commands.
    commands = re.search(r"simulated arm: (\d+) commands", out)
    assert commands is not None, out
    with sqlite3.connect(data / "telemetry.db") as conn:
        assert conn.execute("SELECT count(*) FROM dds_commands").fetchone() == (int(commands.group(1)),)
    assert not (data / "telemetry.db-wal").exists() or (data / "telemetry.db-wal").stat().st_size == 0

    # Sizes reported after shutdown are the files' final sizes; every bundle is named.
    files = out.split("== Files under demo-output after shutdown", 1)[1].split("== Next steps", 1)[0]
    reported = re.search(r"telemetry\.db\s+([\d,]+) bytes", files)
    assert reported is not None, files
    assert int(reported.group(1).replace(",", "")) == (data / "telemetry.db").stat().st_size
    bundles = sorted(p.parent.name for p in data.glob("captures/*/manifest.json"))
    assert len(bundles) >= 2  # the live capture and the queueing simulation's
    for name in bundles:
        assert f"capture bundle demo-output/captures/{name}" in files

    # It ends with next steps, and every command it printed works as printed, from where it ran.
    assert out.rstrip().split("\n== ")[-1].startswith("Next steps")
    printed = [line.strip()[2:] for line in out.splitlines() if line.strip().startswith("$ ")]
    assert len(printed) >= 7, printed
    for command in printed:
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0 and done.stdout.strip(), (command, done.stdout, done.stderr)


def test_demo_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    precious = tmp_path / "demo-output" / "notes.txt"
    precious.parent.mkdir()
    precious.write_text("mine")
    done = _demo(tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "demo: demo-output is not empty and was not written by the demo; "
        "pass --data-dir with a new or empty folder"
    ]
    assert precious.read_text() == "mine"
