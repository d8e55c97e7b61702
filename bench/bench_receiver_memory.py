"""How much memory ``otel-tele serve``'s OTLP receiver needs per wire byte while decoding.

python -m bench.bench_receiver_memory [--records 200000]

Each size runs in a fresh process: build an ``ExportLogsServiceRequest`` of minimal log records (the
worst case: most overhead per wire byte), then parse and decode it as the receiver does; the growth
of the process's peak RSS over the wire size is the expansion factor behind the receiver's
documented ceiling (``factor x max_inflight_bytes``). The baseline is parsing alone (no decode).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys

from ._harness import Report

_CHILD = r"""
import gc, json, resource, sys
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from otel_tele import _otlp_decode as decode
n, decode_too = int(sys.argv[1]), sys.argv[2] == "1"
req = logs_service_pb2.ExportLogsServiceRequest()
scope = req.resource_logs.add().scope_logs.add()
for i in range(n):
    record = scope.log_records.add()
    record.time_unix_nano = i
    record.body.string_value = "x"
    attribute = record.attributes.add()
    attribute.key, attribute.value.int_value = "k", i
data = req.SerializeToString()
del req, scope
gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
message = logs_service_pb2.ExportLogsServiceRequest.FromString(data)
records = decode.log_records(message) if decode_too else []
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wire_bytes": len(data), "records": len(records), "growth_bytes": (peak - base) * 1024}))
"""


def measure(records: int, decode_too: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(records), "1" if decode_too else "0"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures = json.loads(out)
    figures["factor"] = figures["growth_bytes"] / figures["wire_bytes"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report = Report("receiver_memory", "peak RSS growth per wire byte: parse + decode vs parse only")
    for decode_too, variant in ((True, "parse + decode (the receiver)"), (False, "baseline: parse only")):
        runs = sorted(
            (measure(args.records, decode_too) for _ in range(args.repeats)), key=lambda r: r["factor"]
        )
        report.add(
            variant=variant,
            records=args.records,
            wire_mb=runs[0]["wire_bytes"] / 1e6,
            factor_min=runs[0]["factor"],
            factor_median=runs[len(runs) // 2]["factor"],
            factor_max=runs[-1]["factor"],
        )
    gc.collect()
    report.note(
        f"this process's own peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"
    )
    report.note(
        "ceiling of the receiver's decoding memory ~ factor_max x max_inflight_bytes (16 MiB default)"
    )
    report.finish()


if __name__ == "__main__":
    main()
