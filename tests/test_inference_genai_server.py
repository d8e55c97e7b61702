"""The GenAI server-side view: ``gen_ai.server.*`` histograms (names, units and descriptions checked
against the installed opentelemetry-semantic-conventions package; bucket boundaries against the
conventions), time to first token from the thought timer, unknown token counts left out, ``error.type``
on failures, and TTFT percentiles per model in the rollups, ``get_aggregated_efficiency``, the 60-day
trends and the HTTP router."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as semconv
from otel_tele.exporters.postgres.schema import TTFT_BOUNDS
from otel_tele.instrumentation.inference import TelemetryLogger, thought_timer

from otel_tele import testing
from otel_tele.semconv import inference as inf

from . import _pg
from ._pg import Env

pg_dsn, clean_pg, env = _pg.pg_dsn, _pg.clean_pg, _pg.env  # fixtures

#: The conventions' advisory boundaries (model/gen-ai metrics YAML; the Python package carries names,
#: units and descriptions but not these).
CONVENTION_BUCKETS = {
    "gen_ai.server.request.duration": [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ],
    "gen_ai.server.time_to_first_token": [
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ],
    "gen_ai.server.time_per_output_token": [
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
    ],
}  # fmt: skip
SERVER_METRICS = {
    semconv.GEN_AI_SERVER_REQUEST_DURATION: semconv.create_gen_ai_server_request_duration,
    semconv.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: semconv.create_gen_ai_server_time_to_first_token,
    semconv.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN: semconv.create_gen_ai_server_time_per_output_token,
}


def metrics_of(data: MetricsData | None) -> dict[str, Any]:
    assert data is not None
    return {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def test_server_metric_names_units_descriptions_and_buckets_follow_the_conventions() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("conventions")
    for create in SERVER_METRICS.values():
        create(meter).record(1.0)
    reference = metrics_of(reader.get_metrics_data())
    provider.shutdown()

    with testing.capture() as cap:
        logger = TelemetryLogger(cap.telemetry)
        with thought_timer("m", logger=logger) as t:
            t.first_token()
            t.tokens(5, 2)
        cap.flush()
        ours = metrics_of(cap.metric_reader.get_metrics_data())
    assert tuple(SERVER_METRICS) == (
        inf.SERVER_REQUEST_DURATION,
        inf.SERVER_TIME_TO_FIRST_TOKEN,
        inf.SERVER_TIME_PER_OUTPUT_TOKEN,
    )
    for name in SERVER_METRICS:
        assert name in ours, name
        assert ours[name].unit == reference[name].unit == "s"
        assert ours[name].description == reference[name].description
        (point,) = ours[name].data.data_points
        assert list(point.explicit_bounds) == CONVENTION_BUCKETS[name]
        assert point.attributes[inf.REQUEST_MODEL] == "m"
    assert list(TTFT_BOUNDS) == CONVENTION_BUCKETS["gen_ai.server.time_to_first_token"]


def test_timer_records_ttft_per_output_token_and_leaves_unknown_counts_out() -> None:
    with testing.capture() as cap:
        logger = TelemetryLogger(cap.telemetry)
        with thought_timer("stream", logger=logger) as t:
            t.first_token()
            first = t.time_to_first_token
            t.first_token()  # only the first mark counts
            t.tokens(11)  # the prompt count is not known
        with thought_timer("plain", logger=logger):
            pass  # no token count at all
        cap.flush()
        events = {e[inf.COMPONENT]: e for e in cap.events(inf.THOUGHT_LATENCY)}
        stream, plain = events["stream"], events["plain"]
        assert first is not None and t.time_to_first_token == first
        assert stream[inf.TIME_TO_FIRST_TOKEN] == pytest.approx(first)
        assert stream[inf.OUTPUT_TOKENS] == 11 and inf.INPUT_TOKENS not in stream
        meta = json.loads(stream[inf.METADATA])
        assert "prompt_tokens" not in meta and "total_tokens" not in meta and meta["tokens_generated"] == 11
        assert inf.OUTPUT_TOKENS not in plain and inf.INPUT_TOKENS not in plain
        assert plain[inf.STATUS] == inf.STATUS_NO_TOKENS and inf.TIME_TO_FIRST_TOKEN not in plain
        assert "tokens_generated" not in json.loads(plain[inf.METADATA])
        usage = cap.metric_points(inf.TOKEN_USAGE)
        assert {(p.attributes[inf.REQUEST_MODEL], p.attributes[inf.TOKEN_TYPE]) for p in usage} == {
            ("stream", "output")
        }
        (tpot,) = cap.metric_points(inf.SERVER_TIME_PER_OUTPUT_TOKEN)
        duration = stream[inf.DURATION]
        assert tpot.sum == pytest.approx((duration - first) / 10)
        assert len(cap.metric_points(inf.SERVER_TIME_TO_FIRST_TOKEN)) == 1
        assert cap.metric_value(inf.SERVER_REQUEST_DURATION, **{inf.REQUEST_MODEL: "plain"}) is not None


def test_failed_inference_carries_error_type() -> None:
    with testing.capture() as cap:
        logger = TelemetryLogger(cap.telemetry)
        with pytest.raises(TimeoutError), thought_timer("m", logger=logger) as t:
            t.first_token()
            raise TimeoutError("slow")
        cap.flush()
        (event,) = cap.events(inf.THOUGHT_LATENCY)
        assert event[inf.ERROR_TYPE] == "TimeoutError" and event[inf.STATUS] == inf.STATUS_FAILED
        assert inf.TIME_TO_FIRST_TOKEN not in event  # "for successful responses"
        (point,) = cap.metric_points(inf.SERVER_REQUEST_DURATION)
        assert point.attributes[inf.ERROR_TYPE] == "TimeoutError"
        assert cap.metric_points(inf.SERVER_TIME_TO_FIRST_TOKEN) == []
        assert cap.metric_points(inf.SERVER_TIME_PER_OUTPUT_TOKEN) == []
        assert cap.spans("text_completion m")[0].attributes[inf.ERROR_TYPE] == "TimeoutError"


def test_bad_time_to_first_token_fails_only_its_record() -> None:
    """Not a number: refused. NaN, or a first token after the end: kept with status invalid (as every
    impossible measurement is), never in the metrics."""
    with testing.capture() as cap:
        logger = TelemetryLogger(cap.telemetry)
        assert not logger.record_thought("m", 1.0, 3, time_to_first_token="soon")  # type: ignore[arg-type]
        assert logger.record_thought("m", 1.0, 3, time_to_first_token=float("nan"))
        assert logger.record_thought("m", 1.0, 3, time_to_first_token=2.0)
        assert logger.record_thought("m", 1.0, 3, time_to_first_token=0.5)
        cap.flush()
        statuses = [e[inf.STATUS] for e in cap.events(inf.THOUGHT_LATENCY)]
        assert statuses == [inf.STATUS_INVALID, inf.STATUS_INVALID, inf.STATUS_OK]
        (point,) = cap.metric_points(inf.SERVER_TIME_TO_FIRST_TOKEN)
        assert point.count == 1 and point.sum == 0.5


def test_ttft_percentiles_per_model_in_efficiency_trends_and_router(env: Env) -> None:
    """Rows through the real sink (PostgreSQL and the embedded store): TTFT percentiles per model are
    the upper bound of the bucket holding the exact nearest-rank value (never above the max), in every
    view."""
    import random

    from otel_tele.http_inference import inference_router

    logger = env.logger
    rng = random.Random(3)
    ttfts: dict[str, list[float]] = {"fast": [], "slow": []}
    for i in range(400):
        model = "fast" if i % 2 else "slow"
        ttft = rng.uniform(0.002, 0.3) if model == "fast" else rng.lognormvariate(0.0, 0.8)
        ttfts[model].append(ttft)
        assert logger.record_thought(model, ttft + 1.0, 50, 10, time_to_first_token=ttft)
    assert logger.record_thought("fast", 0.5, 20)  # no TTFT: not counted in the TTFT figures
    env.cap.flush()
    report = asyncio.run(logger.get_aggregated_efficiency(hours=1))
    by_model = {m["model"]: m for m in report["models"]}
    bounds = [*TTFT_BOUNDS, float("inf")]
    for model, values in ttfts.items():
        entry = by_model[model]
        assert entry["ttft_count"] == len(values)
        assert entry["ttft_mean_s"] == pytest.approx(
            sum(values) / len(values), abs=1e-6
        )  # figures are rounded to 6 places
        assert entry["ttft_max_s"] == pytest.approx(max(values), abs=1e-6)
        for q, key in ((0.5, "ttft_p50_s"), (0.95, "ttft_p95_s"), (0.99, "ttft_p99_s")):
            exact = sorted(values)[max(1, -(-len(values) * int(q * 100) // 100)) - 1]
            upper = next(b for b in bounds if exact <= b)
            assert entry[key] == pytest.approx(min(upper, max(values)), abs=1e-6), (model, key)
            assert entry[key] >= exact - 1e-6
    trends = asyncio.run(logger.get_60day_statistics())
    trend = {t["model"]: t for t in trends["model_trends"]}
    assert trend["slow"]["ttft_p95_s"] == by_model["slow"]["ttft_p95_s"]
    assert trend["fast"]["daily"][0]["ttft_p50_s"] == by_model["fast"]["ttft_p50_s"]
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(inference_router(logger))
    with TestClient(app) as client:
        body = client.get("/telemetry/efficiency", params={"hours": 1}).json()
        routed = {m["model"]: m for m in body["models"]}
        assert routed["slow"]["ttft_p99_s"] == by_model["slow"]["ttft_p99_s"]
        sixty = client.get("/telemetry/60day").json()
        assert {t["model"]: t["ttft_p50_s"] for t in sixty["model_trends"]} == {
            m: by_model[m]["ttft_p50_s"] for m in ("fast", "slow")
        }
