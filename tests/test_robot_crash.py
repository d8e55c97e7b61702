"""Crash safety: a child ingesting 1M rows is kill -9ed at random points, again and again.

After every kill the database must pass ``PRAGMA integrity_check``, hold every row the child had
flushed (acknowledged) before it died, and contain only whole batches: the child writes batches of
exactly ``BATCH`` rows (chunks are multiples of it and the interval never fires), so the rows present
must be a gap-free prefix whose length is a multiple of ``BATCH``.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

BATCH = 500
CHUNK = 10_000
TARGET_ROWS = 1_000_000
RUNS = 20

CHILD = f"""
import sqlite3, sys
from otel_tele.instrumentation.robot import TelemetryCollector
db = sys.argv[1]
tc = TelemetryCollector(db_path=db, batch_size={BATCH}, flush_interval_s=3600)
with sqlite3.connect(db) as conn:
    start = conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM dds_commands").fetchone()[0]
seq = start
while seq < start + {TARGET_ROWS}:
    for _ in range({CHUNK}):
        tc.log_command(seq, 1, seq % 7, float(seq), None, None, 32)
        seq += 1
    if not tc.flush(60_000):
        sys.exit(3)
    print("acked", seq - 1, flush=True)
"""


def check(db: Path, acked: int) -> int:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n, low, high, distinct = conn.execute(
            "SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM dds_commands"
        ).fetchone()
    assert n == distinct and (n == 0 or (low == 0 and high == n - 1)), "gap or duplicate: a partial write"
    assert n >= acked + 1, f"acknowledged rows missing: {n} rows, acked up to seq {acked}"
    assert n % BATCH == 0, f"{n} rows is not a whole number of {BATCH}-row batches"
    return int(n)


def test_kill_minus_nine_during_ingest(tmp_path: Path) -> None:
    """20 kill -9s at random points of a 1M-row ingest: integrity ok, acked rows kept, no partial batch."""
    db = tmp_path / "telemetry.db"
    rng = random.Random(20_240_604)
    acked, totals = -1, []
    for _ in range(RUNS):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True)
        try:
            for _ in range(rng.randint(1, 3)):  # let it acknowledge a few chunks …
                line = proc.stdout.readline()  # type: ignore[union-attr]
                assert line.startswith("acked"), f"child failed: {line!r}"
                acked = int(line.split()[1])
            for _ in range(rng.randint(0, 4000)):  # … then kill it somewhere inside the next one
                pass
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        totals.append(check(db, acked))
    assert totals == sorted(totals) and totals[-1] > RUNS * CHUNK
