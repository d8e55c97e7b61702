"""``otel-tele capture``: FlowTime's options, dry run, progress bar and exit codes 0/2/1/130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from otel_tele.exporters.capture.schema import Grid

from otel_tele import bundles
from otel_tele.cli import main

from .sink_samples.capture import fixture_run


def test_capture_writes_a_bundle_and_prints_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0; the plan, the warnings and the manifest path are printed."""
    run = fixture_run(tmp_path / "runs")
    assert main(["capture", "--run-dir", str(run), "--output", str(tmp_path / "out"), "--gap-detect"]) == 0
    out = capsys.readouterr().out
    assert "8 file(s) captured" in out and "SupportQueue_queuedepth.csv" in out and "Warnings (0)" in out
    assert f"Manifest written: {tmp_path / 'out' / 'manifest.json'}" in out
    assert len(bundles.read_bundle(tmp_path / "out").series) == 8


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run lists planned files and warnings as JSON and creates no directory."""
    run = fixture_run(tmp_path / "runs")
    injections = tmp_path / "gaps.json"
    injections.write_text(
        json.dumps([{"mode": "nan", "nodeId": "OrderService", "metric": "served", "bins": [2]}])
    )
    code = main(
        [
            "capture",
            "--run-dir",
            str(run),
            "--out",
            str(tmp_path / "out"),
            "--dry-run",
            "--gap-fill-nan",
            "--inject",
            str(injections),
            "--format",
            "json",
        ]
    )
    assert code == 0 and not (tmp_path / "out").exists()
    report = json.loads(capsys.readouterr().out)
    assert report["dryRun"] is True and report["manifest"] is None and len(report["files"]) == 8
    assert [w["code"] for w in report["warnings"]] == ["injected_nan", "nan_fill"]


def test_default_output_is_under_the_data_dir(data_dir: Path, tmp_path: Path) -> None:
    """Without --output the bundle goes to $OTEL_TELE_DATA_DIR/captures/<runId>."""
    run = fixture_run(tmp_path / "runs")
    assert main(["capture", "--run-dir", str(run)]) == 0
    assert (data_dir / "captures" / run.name / "manifest.json").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["capture"],
        ["capture", "--run-dir"],
        ["capture", "--run-dir", "x", "--bogus"],
        ["capture", "--run-dir", "x", "--gap-detect", "--gap-fill-gaps"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    """Missing --run-dir, a missing value, unknown or conflicting options are usage errors."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_failures_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing run or a bad injection file fails with exit 1 and a message."""
    assert main(["capture", "--run-dir", str(tmp_path / "missing")]) == 1
    assert "Telemetry capture failed: run directory 'missing' was not found" in capsys.readouterr().err
    run = fixture_run(tmp_path / "runs")
    (tmp_path / "bad.json").write_text('[{"mode": "explode", "bins": [1]}]')
    assert main(["capture", "--run-dir", str(run), "--inject", str(tmp_path / "bad.json")]) == 1
    assert "injection mode" in capsys.readouterr().err


def big_run(root: Path, nodes: int, bins: int) -> Path:
    model = f"grid: {{bins: {bins}, binSize: 5, binUnit: minutes}}\ntopology:\n  nodes:\n"
    series: dict[str, list[float | None]] = {}
    for n in range(nodes):
        model += f"    - id: N{n}\n      semantics: {{arrivals: a{n}, served: s{n}}}\n"
        series[f"a{n}@A{n}@DEFAULT"] = [float(i % 7) for i in range(bins)]
        series[f"s{n}@S{n}@DEFAULT"] = [float(i % 5) for i in range(bins)]
    return fixture_run(
        root, "run_big", model_yaml=model, series=series, grid=Grid(bins, 5, "minutes"), model_files={}
    )


def test_progress_bar_and_cancel_exit_130(tmp_path: Path) -> None:
    """A large capture shows a progress bar; SIGINT while it runs exits 130."""
    run = big_run(tmp_path / "runs", nodes=300, bins=4000)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_tele.cli",
            "capture",
            "--run-dir",
            str(run),
            "--output",
            str(tmp_path / "out"),
            "--progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    seen = b""
    while b"capturing [" not in seen:  # wait for the bar itself, then interrupt
        chunk = process.stderr.read1(256)  # type: ignore[attr-defined]
        assert chunk, "capture ended before showing progress"
        seen += chunk
    os.kill(process.pid, signal.SIGINT)
    _out, err = process.communicate(timeout=120)
    if process.returncode == 0:  # finished between the bar and the signal: still a valid run
        pytest.skip("capture completed before SIGINT arrived")
    assert process.returncode == 130 and b"cancelled" in err
    assert not (tmp_path / "out" / "manifest.json").exists()  # the manifest is written last


def test_progress_bar_counts_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--progress draws the bar to stderr up to n/n files."""
    run = big_run(tmp_path / "runs", nodes=5, bins=10)
    assert main(["capture", "--run-dir", str(run), "--output", str(tmp_path / "out"), "--progress"]) == 0
    assert "10/10 files" in capsys.readouterr().err
