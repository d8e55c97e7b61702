"""Attaching a 100 MB checkpoint to an FDA run vs ``shutil.copyfile`` of the same file, same run.

Each measurement runs in a fresh child process (interleaved: attach, copyfile, copyfile+fsync, …)
that reports wall time and the growth of its peak RSS (ru_maxrss) during the measured step:

- ``attach`` — a production run with one ``run.attach(...)`` of the file, from entering the run to
  its return (the run's flush: the artifact copied, hashed, fsynced and the run folder published),
  minus the same child's run without an artifact (the run's own cost). ``caller_us`` is what the
  ``attach()`` call itself costs the caller (the copy happens on the sink's thread).
- ``copyfile`` — ``shutil.copyfile`` (the obvious alternative; not durable, no hash).
- ``copyfile+fsync+sha256`` — what attach guarantees, done by hand: copy, fsync, hash the copy.

Usage: ``.venv/bin/python -m bench.bench_fda_artifacts [--mb 100] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._harness import Report

_CHILD = r"""
import hashlib, json, os, resource, shutil, sys, time
from pathlib import Path

mode, source, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

result = {}
if mode == "attach":
    import otel_tele
    from otel_tele.instrumentation import fda
    core = dict(phase="GREEN", E=1.0, grad_norm=0.5, eta_dd=0.2, gamma=0.1, alpha=0.01,
                phi_residual=1e-3, invariant_drift_max=0.0)
    t = otel_tele.setup(local=True, sinks=["capsule"], data_dir=work, traces_exporter="none",
                        metrics_exporter="none", logs_exporter="none")
    small = work / "small.bin"
    small.write_bytes(b"s" * 65536)
    with fda.run("bench", telemetry=t) as run:  # warm: imports, first run, first artifact
        run.iteration(iter=0, **core)
        run.attach("warm.bin", small)
    t0 = time.perf_counter()
    with fda.run("bench", telemetry=t) as run:
        run.iteration(iter=0, **core)
    empty = time.perf_counter() - t0
    before = peak_kb()
    t0 = time.perf_counter()
    with fda.run("bench", telemetry=t) as run:
        run.iteration(iter=0, **core)
        c0 = time.perf_counter()
        run.attach("checkpoint_0001.pkl", source, kind="checkpoint")
        result["caller_us"] = (time.perf_counter() - c0) * 1e6
    total = time.perf_counter() - t0
    result["seconds"] = total - empty
    result["run_overhead_s"] = empty
    folder = work / "telematry_cfs" / "runs" / run.run_id
    stats = [s for s in t.sink_stats() if s.sink == "capsule"][0]
    result["stored"] = (folder / "checkpoint_0001.pkl").stat().st_size == source.stat().st_size
    result["failed"] = stats.failed
    t.shutdown(10_000)
else:
    before = peak_kb()
    t0 = time.perf_counter()
    target = work / "copy.bin"
    shutil.copyfile(source, target)
    if mode == "copyfile+fsync+sha256":
        with open(target, "rb+") as f:
            os.fsync(f.fileno())
            digest = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    result["seconds"] = time.perf_counter() - t0
result["rss_growth_mb"] = (peak_kb() - before) / 1024
result["peak_rss_mb"] = peak_kb() / 1024
print(json.dumps(result))
"""

MODES = ("attach", "copyfile", "copyfile+fsync+sha256")


def child(mode: str, source: Path, tmp: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=tmp) as work:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, mode, str(source), work],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "mean": statistics.fmean(ordered),
        "min": ordered[0],
        "max": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report = Report("fda_artifacts", f"attach a {args.mb} MB checkpoint vs shutil.copyfile (fresh processes)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "checkpoint.pkl"
        block = os.urandom(1 << 20)
        with open(source, "wb") as f:
            for _ in range(args.mb):
                f.write(block)
        results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):  # interleaved: each round runs every mode once
            for mode in MODES:
                results[mode].append(child(mode, source, tmp))
    copy_p50 = summary([r["seconds"] for r in results["copyfile"]])["p50"]
    for mode in MODES:
        rounds = results[mode]
        seconds = summary([r["seconds"] for r in rounds])
        row: dict[str, Any] = {
            "mode": mode,
            "mb": args.mb,
            "rounds": len(rounds),
            **{f"{k}_s": round(val, 4) for k, val in seconds.items()},
            "mb_per_s_p50": round(args.mb / seconds["p50"], 1),
            "vs_copyfile_p50": round(seconds["p50"] / copy_p50, 2),
            "rss_growth_mb_max": round(max(r["rss_growth_mb"] for r in rounds), 1),
        }
        if mode == "attach":
            caller = summary([r["caller_us"] for r in rounds])
            row["caller_us_p50"] = round(caller["p50"], 1)
            row["caller_us_max"] = round(caller["max"], 1)
            row["run_overhead_s_p50"] = round(summary([r["run_overhead_s"] for r in rounds])["p50"], 4)
            row["stored_all"] = all(r["stored"] for r in rounds) and not any(r["failed"] for r in rounds)
        report.add(**row)
    report.note(
        "attach = time from entering the run to its return (artifact copied in 1 MiB chunks, sha256, "
        "fsync, run published) minus the same child's empty run; copyfile is neither durable nor hashed"
    )
    report.note("rss_growth_mb_max: growth of peak RSS during the measured step, worst round")
    report.finish()


if __name__ == "__main__":
    main()
