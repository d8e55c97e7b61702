"""Per-record cost of the scrubber on the exporting thread, by record kind.

python -m bench.bench_scrub [--n 20000] [--rounds 3]

Each kind is timed on fresh records (a scrubbed record is marked and skipped by the next exporter):
a robot command event (numbers plus a small ``data_json``), a web request span (``url.query``,
``params_json`` with a password, an ``Authorization`` header), an inference event whose metadata
holds a DSN. The baseline beside each is the obvious simple alternative: a key-name-only pass over
the same payload dict (what the FastAPI middleware did before, on the request's thread), which
misses secrets inside values. Rounds are interleaved; the kept figure is the median round's p50.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.sdk.trace import TracerProvider

from otel_tele._scrub import REDACTED, Scrubber
from otel_tele.semconv import to_json

from ._harness import Report, median_ratio, median_round, per_call_ns

_SECRET_PARTS = ("password", "passwd", "secret", "token", "apikey", "authorization", "cookie")


def key_only(value: Any) -> Any:
    """The baseline: redact by key name only (the pre-issue-13 middleware's approach)."""
    if isinstance(value, dict):
        return {
            k: REDACTED
            if any(p in str(k).lower().replace("_", "").replace("-", "") for p in _SECRET_PARTS)
            else key_only(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [key_only(v) for v in value]
    return value


def _parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value[:1] == "{" else value


def robot_payload(i: int) -> dict[str, Any]:
    return {
        "robot.dds.seq": i,
        "robot.dds.funcode": 1,
        "robot.joint.id": i % 7,
        "robot.target_value": i / 2,
        "robot.data_json": to_json({"speed": 0.5, "mode": "abs"}),
    }


def web_payload(i: int) -> dict[str, Any]:
    return {
        "http.request.method": "POST",
        "url.path": "/api/command/set-joint",
        "url.query": f"verbose=1&token=abc{i}def",
        "http.route": "/api/command/set-joint",
        "http.response.status_code": 200,
        "robot.web.params_json": to_json({"joint": 2, "angle": 45.5, "password": f"hunter{i}"}),
        "http.request.header.authorization": (f"Bearer tok{i}xxxxxxxx",),
    }


def inference_payload(i: int) -> dict[str, Any]:
    return {
        "inference.event_type": "THOUGHT_LATENCY",
        "inference.component": "gemma2:27b",
        "inference.value": 12.5,
        "inference.metadata": to_json({"upstream": f"postgresql://app:pw{i}@db/x", "tokens": 412}),
        "inference.status": "success",
    }


def log_records(payload: Any, n: int) -> list[LogRecord]:
    return [LogRecord(timestamp=i, attributes=payload(i)) for i in range(n)]


def spans(payload: Any, n: int) -> list[Any]:
    tracer = TracerProvider().get_tracer("bench")
    out = []
    for i in range(n):
        span = tracer.start_span("POST /api/command/set-joint", attributes=payload(i))
        span.end()
        out.append(span)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n, rounds = args.n, args.rounds
    report = Report("scrub", "scrubber cost per record on the exporting thread vs a key-name-only pass")
    scrubber = Scrubber()
    kinds = (
        ("robot command event", robot_payload, log_records, scrubber.log_records),
        ("web request span", web_payload, spans, scrubber.spans),
        ("inference event (DSN in metadata)", inference_payload, log_records, scrubber.log_records),
    )
    for kind, payload, build, scrub in kinds:
        ours, base = [], []
        for _ in range(rounds):
            records = build(payload, n + 1000)
            ours.append(per_call_ns(lambda i, r=records, f=scrub: f([r[i]]), n))
            dicts = [
                {
                    k: json.loads(v) if isinstance(v, str) and v[:1] == "{" else v
                    for k, v in payload(i).items()
                }
                for i in range(n + 1000)
            ]
            base.append(per_call_ns(lambda i, d=dicts: key_only(d[i]), n))
        report.add(variant=f"{kind}: scrubber", **median_round(ours), **median_ratio(ours, base))
        report.add(variant=f"{kind}: baseline key-only pass", **median_round(base))
    sample = spans(web_payload, 1)
    scrubber.spans(sample)
    report.note(f"web span after scrubbing: {dict(sample[0].attributes)}")
    report.note(
        "The scrubber also finds secrets inside values (query strings, DSNs, bearer tokens, JSON text); "
        "the baseline does not, and ran on the caller's thread."
    )
    report.finish()


if __name__ == "__main__":
    main()
