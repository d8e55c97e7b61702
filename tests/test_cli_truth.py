"""The CLI tells the truth (issue 11 §3), through the installed console scripts in a subprocess:
wrong paths are one-line errors, options work after the verb, sorting and formats are what they say."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.inference import TelemetryLogger

import otel_tele
from otel_tele import testing

from .sink_samples.capsule import CORE
from .test_robot_query import build

BIN = Path(sys.executable).parent


def cli(
    *args: str, script: str = "otel-tele", env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a console script as a user would (no OTEL_* from the test environment leaks in)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [str(BIN / script), *args],
        env={**clean, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def robot_db(tmp_path: Path) -> Path:
    return build(tmp_path / "robot" / "telemetry.db")


# -- wrong paths -------------------------------------------------------------------------------------
def test_wrong_paths_are_one_line_errors(tmp_path: Path, robot_db: Path) -> None:
    """A path that does not exist (or is a folder where a file belongs) is exit 1 and one line."""
    missing = str(tmp_path / "nonexistent")
    assert_one_line_error(cli("runs", "--root", missing, "list"), 1, missing, "does not exist")
    assert_one_line_error(cli("runs", "list", "--root", missing), 1, missing, "does not exist")
    assert_one_line_error(cli("runs", "show", "fda_run_x", "--root", missing), 1, "does not exist")
    assert_one_line_error(
        cli("runs", "list", env={"OTEL_TELE_DATA_DIR": missing}), 1, "telematry_cfs", "does not exist"
    )
    assert_one_line_error(cli("inference", "stats", "--data-dir", missing), 1, missing, "does not exist")
    assert_one_line_error(cli("inference", "footprint", "--data-dir", missing), 1, "does not exist")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        cli("inference", "stats", "--data-dir", str(tmp_path / "empty")), 1, "inference.db", "not found"
    )
    folder = str(robot_db.parent)
    assert_one_line_error(cli("query", "--db", folder, "summary"), 1, "is a folder", "telemetry.db")
    assert_one_line_error(cli("query", "summary", "--db", folder), 1, "is a folder")
    assert_one_line_error(cli("--db", folder, "summary", script="query-telemetry"), 1, "is a folder")


def test_doctor_tells_missing_folders_types_and_unknown_names(tmp_path: Path) -> None:
    """doctor: a missing folder is not reachable, JSON keeps types, unknown names are warnings."""
    missing = tmp_path / "not-yet"
    env = {
        "OTEL_TELE_DATA_DIR": str(missing),
        "OTEL_TRACES_EXPORTER": "bogus_exporter",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_TELE_SINKS": "sqlite,capsule,floppy",
    }
    done = cli("doctor", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    config = {row["option"]: row["value"] for row in report["configuration"]}
    assert config["prometheus_port"] == 9464 and config["disabled"] is False
    assert config["sinks"] == ["sqlite", "capsule"] and config["event_queue_size"] == 262_144
    assert config["otlp_endpoint"] is None and config["data_dir"] == str(missing)
    sinks = {row["exporter"]: row for row in report["destinations"] if row["exporter"].startswith("sink:")}
    assert set(sinks) == {"sink:sqlite", "sink:capsule"}  # not a silent fallback to all four
    for row in sinks.values():
        assert row["reachable"] is False and "does not exist" in row["note"], row
    bogus = next(row for row in report["destinations"] if row["exporter"] == "bogus_exporter")
    assert bogus["reachable"] is False and bogus["note"].startswith("unknown exporter")
    assert any("floppy" in w and "OTEL_TELE_SINKS" in w for w in report["warnings"])
    assert any("bogus_exporter" in w for w in report["warnings"])

    missing.mkdir()
    (missing / "telematry_cfs").mkdir()
    report = json.loads(cli("doctor", "--format", "json", env=env).stdout)
    sinks = {row["exporter"]: row for row in report["destinations"] if row["exporter"].startswith("sink:")}
    assert all(row["reachable"] is True for row in sinks.values()), sinks

    human = cli("doctor", env=env)
    assert human.returncode == 0
    assert "WARNING: traces exporter 'bogus_exporter' is unknown" in human.stdout
    assert "floppy" in human.stdout


def test_unknown_sink_name_is_an_error_and_keeps_the_known_ones(tmp_path: Path) -> None:
    """OTEL_TELE_SINKS='sqlite,bogus': one error message, and only sqlite is attached."""
    script = (
        "import otel_tele\n"
        "t = otel_tele.setup(local=True, traces_exporter='none', metrics_exporter='none', "
        "logs_exporter='none')\n"
        "print(sorted(t.sinks))\n"
        "t.shutdown(5000)\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**clean, "OTEL_TELE_SINKS": "sqlite,bogus", "OTEL_TELE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['sqlite']"
    assert "unknown sink(s) bogus" in done.stderr and "using sqlite" in done.stderr


# -- runs ------------------------------------------------------------------------------------------------
def _record(telemetry: otel_tele.Telemetry, run_id: str) -> None:
    with fda.run("flow_a", mode="dev", run_id=run_id, telemetry=telemetry) as run:
        run.iteration(iter=0, **CORE)


def test_runs_list_newest_first_by_start_time_with_root_after_the_verb(tmp_path: Path) -> None:
    """The run recorded last is listed first although its id sorts first; --root works after `list`."""
    with testing.capture(sinks="capsule", data_dir=tmp_path) as cap:
        _record(cap.telemetry, "fda_run_zzz_older")
        cap.flush()
        _record(cap.telemetry, "fda_run_aaa_newer")
    root = str(tmp_path / "telematry_cfs")
    for args in (("runs", "list", "--root", root), ("runs", "--root", root, "list")):
        done = cli(*args, "--format", "json")
        assert done.returncode == 0, done.stderr
        listed = json.loads(done.stdout)
        assert [r["run_id"] for r in listed] == ["fda_run_aaa_newer", "fda_run_zzz_older"]
        assert listed[0]["started_at"] > listed[1]["started_at"]


# -- query -----------------------------------------------------------------------------------------------
def test_export_csv_to_stdout_and_report_format(robot_db: Path, tmp_path: Path) -> None:
    """--format is the file format (csv goes to stdout as CSV); --report lists written files."""
    done = cli(
        "query", "--db", str(robot_db), "export", "--format", "csv", "--out", "-", "--table", "web_requests"
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 120 and {"endpoint", "response_ms", "correlation_id"} <= set(rows[0])
    assert_one_line_error(
        cli("query", "--db", str(robot_db), "export", "--format", "csv", "--out", "-"), 1, "--table"
    )
    done = cli("query", "--db", str(robot_db), "export", "--format", "json", "--out", "-")
    document = json.loads(done.stdout)
    assert document["summary"]["total_commands"] == 21 and len(document["web_requests"]) == 120
    out = tmp_path / "files"
    done = cli(
        "query", "--db", str(robot_db), "export", "--format", "csv", "--out", str(out), "--report", "json"
    )
    report = json.loads(done.stdout)
    assert {r["table"]: r["rows"] for r in report}["web_requests"] == 120
    assert all(r["file"].endswith(".csv") and Path(r["file"]).exists() for r in report)
    # An empty table still has its header.
    empty = cli(
        "query",
        "--db",
        str(robot_db),
        "export",
        "--format",
        "csv",
        "--out",
        "-",
        "--table",
        "smoother_state",
        "--start",
        "1",
        "--end",
        "2",
    )
    assert empty.returncode == 0 and empty.stdout.splitlines()[0].startswith("id,ts,")


def test_json_output_rule(robot_db: Path) -> None:
    """One document per command (array for rows, object for one thing); tail streams JSON Lines."""
    rows = json.loads(cli("query", "--db", str(robot_db), "events", "--format", "json").stdout)
    assert isinstance(rows, list) and rows and isinstance(rows[0]["ts"], float)
    summary = json.loads(cli("query", "--db", str(robot_db), "summary", "--format", "json").stdout)
    assert isinstance(summary, dict) and isinstance(summary["total_commands"], int)
    tail = cli("query", "--db", str(robot_db), "tail", "-n", "3", "--format", "json").stdout.splitlines()
    assert len(tail) == 3 and all(isinstance(json.loads(line), dict) for line in tail)


def test_inverted_time_range_is_an_error(robot_db: Path, tmp_path: Path) -> None:
    """start after end is a usage error (exit 2), not an all-zero summary; export leaves no temp file."""
    for command in ("summary", "commands", "events"):
        done = cli("query", "--db", str(robot_db), command, "--start", "2000", "--end", "1000")
        assert_one_line_error(done, 2, "inverted")
    out = tmp_path / "export"
    done = cli(
        "query", "--db", str(robot_db), "export", "--out", str(out), "--start", "2000", "--end", "1000"
    )
    assert_one_line_error(done, 2, "inverted")
    assert not list(out.glob(".*")) and not list(out.glob("*.json"))


def test_query_telemetry_honours_the_data_dir(robot_db: Path, tmp_path: Path) -> None:
    """query-telemetry reads $OTEL_TELE_DATA_DIR/telemetry.db like `otel-tele query`; else data/."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {"OTEL_TELE_DATA_DIR": str(robot_db.parent)}
    for script in ("query-telemetry", "otel-tele"):
        args = ("summary",) if script == "query-telemetry" else ("query", "summary")
        done = cli(*args, script=script, env=env, cwd=elsewhere)
        assert done.returncode == 0 and "Commands:       21" in done.stdout, done.stderr
    assert_one_line_error(cli("summary", script="query-telemetry", cwd=elsewhere), 1, "data/telemetry.db")


# -- inference -------------------------------------------------------------------------------------------
@pytest.fixture
def inference_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "serving"
    with testing.capture(sinks="postgres", postgres_dsn=None, data_dir=data_dir) as cap:
        logger = TelemetryLogger(cap.telemetry)
        for model, seconds, tokens in (("fast", 0.1, 100), ("slow", 2.0, 100), ("fast", 0.3, 100)):
            assert logger.record_thought(model, seconds, tokens)
        cap.flush()
        logger.close()
    return data_dir


def _stats(data_dir: Path, *extra: str) -> dict[str, object]:
    done = cli("inference", "stats", "--data-dir", str(data_dir), "--format", "json", *extra)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _models(section: object, key: str) -> Sequence[str]:
    assert isinstance(section, dict)
    return [entry["model"] for entry in section[key]]


def test_inference_component_filters_both_tables(inference_dir: Path) -> None:
    """--component applies to the efficiency ranking and the 60-day trends alike."""
    everything = _stats(inference_dir)
    assert _models(everything["statistics"], "model_trends") == ["fast", "slow"]
    only_slow = _stats(inference_dir, "--component", "slow")
    assert _models(only_slow["efficiency"], "models") == ["slow"]
    assert _models(only_slow["statistics"], "model_trends") == ["slow"]
    human = cli("inference", "stats", "--data-dir", str(inference_dir), "--component", "slow").stdout
    trends = human.split("day trends")[1]
    assert "slow" in trends and "fast" not in trends


def test_footprint_lists_only_tables_that_exist(inference_dir: Path) -> None:
    """A table the store does not have is not shown with made-up zero sizes."""
    db = inference_dir / "inference.db"
    with sqlite3.connect(db) as conn:
        present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    done = cli("inference", "footprint", "--data-dir", str(inference_dir), "--format", "json")
    listed = [t["table"] for t in json.loads(done.stdout)["table_sizes"]]
    assert listed[0] == "system_telemetry" and set(listed) <= present
    dropped = listed[-1]
    with sqlite3.connect(db) as conn:
        conn.execute(f'DROP TABLE "{dropped}"')
    done = cli("inference", "footprint", "--data-dir", str(inference_dir), "--format", "json")
    footprint = json.loads(done.stdout)
    assert [t["table"] for t in footprint["table_sizes"]] == listed[:-1]
    assert footprint["row_count"] == 3
    human = cli("inference", "footprint", "--data-dir", str(inference_dir)).stdout
    assert dropped not in human.split("rows:")[0]
