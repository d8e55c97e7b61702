"""``otel-tele runs …`` and the demo solver."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

import otel_tele
from otel_tele.cli import main
from otel_tele.demo import _solver


@pytest.fixture
def demo_root(tmp_path: Path) -> tuple[Path, list[str]]:
    telemetry = otel_tele.setup(
        local=True,
        sinks=["capsule"],
        data_dir=tmp_path,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    try:
        lines = _solver.run(telemetry, tmp_path, seconds=0.05)
    finally:
        telemetry.shutdown(10_000)
    return tmp_path / "telematry_cfs", lines


def test_demo_solver_energy_descends(demo_root: tuple[Path, list[str]]) -> None:
    """The ISTA demo records a production run whose energy decreases monotonically."""
    _root, lines = demo_root
    assert lines[0].startswith("FDA solver: production run fda_run_")
    energies = [float(line.split()[2]) for line in lines[2:-1]]
    assert len(energies) >= 5 and all(a >= b - 1e-12 for a, b in itertools.pairwise(energies))
    assert energies[0] > energies[-1]


def test_runs_list_show_query_in_json_and_tables(
    demo_root: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """list/show/query print aligned tables and parseable JSON."""
    root, _ = demo_root
    assert main(["runs", "--root", str(root), "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    production = next(r for r in listed if r["mode"] == "production")
    assert {r["mode"] for r in listed} == {"production", "tuner", "dev"}
    assert main(["runs", "--root", str(root), "show", production["run_id"]]) == 0
    out = capsys.readouterr().out
    assert "Energy trajectory:" in out and "RUN_FINISHED" in out and "LENS_SELECTED" in out
    assert (
        main(
            [
                "runs",
                "--root",
                str(root),
                "query",
                "SELECT mode, count(*) AS n FROM telemetry GROUP BY 1 ORDER BY 1",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert [row["mode"] for row in json.loads(capsys.readouterr().out)] == ["dev", "production", "tuner"]


def test_runs_consolidate_and_prune(
    demo_root: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """consolidate compacts and exports; prune --dry-run reports without removing."""
    root, _ = demo_root
    target = tmp_path / "export.parquet"
    assert (
        main(["runs", "--root", str(root), "consolidate", "--export", str(target), "--format", "json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["export"]["rows"] > 0 and target.exists() and (root / "duckdb.db").exists()
    assert main(["runs", "--root", str(root), "prune", "--dry-run"]) == 0
    assert "would remove 0 expired run(s)" in capsys.readouterr().out


def test_bad_input_is_a_clear_message_and_exit_code_2(
    demo_root: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad run id, an unknown run and broken SQL give one-line errors, not tracebacks."""
    root, _ = demo_root
    for argv in (["show", "../etc/passwd"], ["show", "fda_run_19990101_000000"], ["query", "SELEC nonsense"]):
        assert main(["runs", "--root", str(root), *argv]) == 2
        assert capsys.readouterr().err.startswith("otel-tele runs: ")
