"""`otel-tele query …` and `query-telemetry`: every subcommand, both output formats, short flags."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from otel_tele.cli import main
from otel_tele.cli._query import legacy_main

from ._robot_helpers import wait_for
from .test_robot_query import build

SUBCOMMANDS = [
    "summary",
    "commands",
    "joints",
    "gripper",
    "tracking",
    "smoother",
    "requests",
    "latency",
    "cameras",
    "events",
    "rate",
    "tail",
    "dbstats",
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The query tests' fixture database."""
    return build(tmp_path / "telemetry.db")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_table_and_json(command: str, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each subcommand prints a human view and valid JSON."""
    assert main(["query", "--db", str(db), command]) == 0
    human = capsys.readouterr().out
    assert human.strip()
    assert main(["query", command, "--db", str(db), "--format", "json"]) == 0
    out = capsys.readouterr().out
    if command == "tail":
        assert all(json.loads(line) for line in out.splitlines())
    else:
        json.loads(out)


def test_human_outputs(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The summary block, aligned tables and tracking/latency figures read as the spec shows."""
    main(["query", "--db", str(db), "summary"])
    summary = capsys.readouterr().out
    assert "Session Summary" in summary and "Commands:       21" in summary and "Errors:         1" in summary
    main(["query", "--db", str(db), "tracking", "--joint", "2"])
    assert "10 samples" in capsys.readouterr().out
    main(["query", "--db", str(db), "latency"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Endpoint", "count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    assert lines[2].split()[:4] == ["(all)", "120", "60.5", "60"]
    main(["query", "--db", str(db), "joints", "-j", "2", "-n", "3"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["Timestamp", "Angle"] and len(table) == 5
    assert len({len(line) for line in table[:2]}) == 1  # header and rule aligned


def test_legacy_short_flags_and_export(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """query-telemetry takes the original flags; export without a folder prints one JSON document."""
    assert legacy_main(["--db", str(db), "tail", "-n", "2"]) == 0
    assert "estop" in capsys.readouterr().out
    assert legacy_main(["--db", str(db), "events", "-t", "error"]) == 0
    assert "fault" in capsys.readouterr().out
    assert legacy_main(["--db", str(db), "rate", "-w", "30"]) == 0
    assert "Hz" in capsys.readouterr().out
    assert legacy_main(["--db", str(db), "smoother", "-j", "1"]) == 0
    assert legacy_main(["--db", str(db), "tracking-error", "-j", "2", "-v"]) == 0
    capsys.readouterr()
    assert legacy_main(["--db", str(db), "export"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["total_commands"] == 21 and len(document["web_requests"]) == 120


def test_export_files(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """export --format csv|json writes one whole file per table."""
    assert main(["query", "--db", str(db), "export", "--format", "csv", "--out", str(tmp_path / "csv")]) == 0
    assert (tmp_path / "csv" / "dds_feedback.csv").read_text().count("\n") == 202
    assert main(["query", "--db", str(db), "export", "--format", "json", "--out", str(tmp_path / "js")]) == 0
    assert len(json.loads((tmp_path / "js" / "web_requests.json").read_text())) == 120
    assert main(["query", "--db", str(db), "export"]) == 0  # default: <db folder>/export, JSON files
    assert (db.parent / "export" / "system_events.json").exists()
    assert not list((tmp_path / "js").glob(".*.tmp"))


def test_errors_are_clear(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing database, bad time and bad joint give a message and an exit code, no traceback."""
    assert main(["query", "--db", str(tmp_path / "none.db"), "summary"]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["query", "--db", str(db), "commands", "--start", "not-a-time"]) == 2
    assert "ISO-8601" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["query", "--db", str(db), "joints", "-j", "9"])
    with pytest.raises(SystemExit):
        main(["query", "--db", str(db), "export", "--table", "sqlite_master"])


def test_tail_follow_stops_cleanly_on_ctrl_c(db: Path, tmp_path: Path) -> None:
    """tail --follow prints new events as they arrive and exits 0 on SIGINT."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_tele.cli",
            "query",
            "--db",
            str(db),
            "tail",
            "--follow",
            "--interval",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert "connect" in proc.stdout.readline()  # type: ignore[union-attr]
        import sqlite3

        with sqlite3.connect(db) as conn:
            conn.execute(
                "INSERT INTO system_events (ts, event_type, source, detail) VALUES (2e9, 'late', 's', 'new')"
            )
        wait_for(lambda: "late" in proc.stdout.readline(), what="followed event")  # type: ignore[union-attr]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
