"""What idempotence costs: the receiver's request digest against decoding, and the store
compaction's span dedup against the same compaction without it.

python -m bench.bench_store_dedup [--parts 16] [--spans 20000] [--repeats 5]

1. Digest: SHA-256 of a ~1 MB ExportLogsServiceRequest (10,000 robot command records) against
   parsing and decoding the same request (what the receiver does with it anyway).
2. Compaction: ``--parts`` span parts of ``--spans`` rows each merged by ``maintain``, with the
   identity check (the first row of each trace_id, span_id kept) and without it (the obvious simple
   alternative: concatenate), interleaved, each on freshly written parts.
Figures: min / median / max / mean of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from otel_tele.exporters.store import _parts
from otel_tele.exporters.store.schema import SCHEMAS

from otel_tele import _otlp_decode as decode

from ._harness import Report


def _request(records: int) -> bytes:
    request = logs_service_pb2.ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "arm"
    logs = rl.scope_logs.add().log_records
    for seq in range(records):
        record = logs.add(time_unix_nano=time.time_ns(), event_name="robot.dds.command")
        for key, value in (("robot.dds.seq", seq), ("robot.dds.funcode", 1), ("robot.joint.id", 2)):
            record.attributes.add(key=key).value.int_value = value
    return request.SerializeToString()


def _spans(rows: int, seed: int) -> pa.Table:
    rnd = random.Random(seed)
    columns = {f.name: pa.nulls(rows, f.type) for f in SCHEMAS["spans"]}
    columns["trace_id"] = pa.array([rnd.getrandbits(128).to_bytes(16, "big").hex() for _ in range(rows)])
    columns["span_id"] = pa.array([rnd.getrandbits(64).to_bytes(8, "big").hex() for _ in range(rows)])
    columns["name"] = pa.array(["GET /api/x"] * rows)
    columns["attributes"] = pa.array([f'{{"http.route":"/api/x","n":{i}}}' for i in range(rows)])
    return pa.table(columns, schema=SCHEMAS["spans"])


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1e3 for s in seconds]
    return {
        "min_ms": min(ms),
        "median_ms": statistics.median(ms),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = Report("store_dedup", "request digest vs decode; compaction with span dedup vs without")

    body = _request(10_000)
    digests, decodes = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        hashlib.sha256(b"logs\0" + body).digest()
        digests.append(time.perf_counter() - start)
        start = time.perf_counter()
        decode.log_records(decode.parse(logs_service_pb2.ExportLogsServiceRequest, body))
        decodes.append(time.perf_counter() - start)
    size = f"{len(body):,} B request, 10,000 records"
    report.add(what="receiver: request digest (SHA-256)", size=size, **_stats(digests))
    report.add(what="receiver: parse + decode (for scale)", size=size, **_stats(decodes))

    tables = [_spans(args.spans, seed) for seed in range(args.parts)]
    identity = dict(_parts.IDENTITY)
    runs: dict[str, list[float]] = {"with span dedup": [], "without (concatenate)": []}
    try:
        for _ in range(args.repeats):
            for mode in runs:
                root = Path(tempfile.mkdtemp(prefix="otel-tele-bench-"))
                try:
                    for table in tables:
                        _parts.publish(root, "spans", [table], fsync=False)
                    _parts.IDENTITY.clear()
                    if mode == "with span dedup":
                        _parts.IDENTITY.update(identity)
                    start = time.perf_counter()
                    _parts.maintain(root, retention_days=30, min_parts=2, target_bytes=1 << 40, fsync=False)
                    runs[mode].append(time.perf_counter() - start)
                finally:
                    shutil.rmtree(root, ignore_errors=True)
    finally:
        _parts.IDENTITY.clear()
        _parts.IDENTITY.update(identity)
    size = f"{args.parts} parts x {args.spans:,} spans"
    for mode, seconds in runs.items():
        report.add(what=f"compaction {mode}", size=size, **_stats(seconds))
    ratio = statistics.median(runs["with span dedup"]) / statistics.median(runs["without (concatenate)"])
    report.note(f"compaction with span dedup / without, median: {ratio:.2f}x (background work only)")
    report.note("in-process, interleaved; fsync off for both compactions")
    report.finish()


if __name__ == "__main__":
    main()
