"""The inference sink's rollups read the metadata dicts the row path encoded, not the texts parsed
back, only when parsing could not give anything else: plain values under text keys, no text the
scrubber changed, no text with a marker to rewrite. Anything else is parsed as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from otel_tele.exporters.postgres import _clean
from otel_tele.exporters.postgres._clean import TRUNCATED, clean_metadata
from otel_tele.exporters.postgres._rows import prepare
from otel_tele.instrumentation.inference import TelemetryLogger

import otel_tele

RANGE = (0.0, 4e9)


class Tokens(float):
    """A float subclass: its text is the float's, but it is not a plain value."""


class Key(str):
    """A str subclass as a key: not a plain key."""


def _row(meta: Any, ts: float = 1_700_000_000.0) -> tuple[Any, ...]:
    text = json.dumps(meta, separators=(",", ":"))
    return ("THOUGHT_LATENCY", "gemma", 2.5, text, "ok", ts, None, None)


def plain(i: int) -> dict[str, Any]:
    return {
        "model": "gemma",
        "inference_time_ms": 250.0 + i,
        "tokens_generated": 100 + i,
        "ok": True,
        "x": None,
    }


def test_plain_sources_are_taken_as_they_are() -> None:
    sources = [plain(i) for i in range(5)]
    metas = clean_metadata([_row(meta) for meta in sources], RANGE, sources)
    assert all(got is source for got, source in zip(metas, sources, strict=True))  # no parse


@pytest.mark.parametrize(
    "odd",
    [
        {"nested": {"a": 1}},
        {"list": [1, 2]},
        {"tokens_generated": Tokens(3.0)},
        {Key("model"): "gemma"},
        {TRUNCATED: {"event_type": "x"}},
    ],
    ids=["nested dict", "list", "float subclass", "str subclass key", "truncation key"],
)
def test_a_source_that_is_not_plain_makes_the_batch_parse_its_texts(odd: dict[str, Any]) -> None:
    sources = [plain(0), odd, plain(2)]
    rows = [_row(meta) for meta in sources]
    metas = clean_metadata(rows, RANGE, sources)
    expected = clean_metadata(rows, RANGE)
    assert metas == expected
    assert not any(got is source for got, source in zip(metas, sources, strict=True))


@pytest.mark.parametrize("missing", [None, "{}"], ids=["absent", "not a dict"])
def test_an_unknown_source_makes_the_batch_parse_its_texts(missing: Any) -> None:
    sources = [plain(0), missing, plain(2)]
    rows = [_row(plain(0)), _row({}), _row(plain(2))]
    assert clean_metadata(rows, RANGE, sources) == [plain(0), {}, plain(2)]
    assert clean_metadata(rows, RANGE, sources[:2]) == [plain(0), {}, plain(2)]  # not one per row


def test_a_text_with_a_marker_to_rewrite_is_decided_as_before() -> None:
    sources = [plain(0), {"x": "NaN here"}]
    rows = [_row(meta) for meta in sources]
    assert clean_metadata(rows, RANGE, sources) == clean_metadata(rows, RANGE)


def test_rollups_from_sources_equal_rollups_from_texts() -> None:
    sources = [plain(i) | {"prompt_tokens": i % 7, "time_to_first_token_s": i / 64} for i in range(300)]
    rows = [_row(meta, 1_700_000_000.0 + 7.25 * i) for i, meta in enumerate(sources)]
    assert prepare(rows, metas=sources).rollups == prepare(rows).rollups


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    count = [0]
    scan = _clean._scan

    def counted(text: str, index: int) -> Any:
        count[0] += 1
        return scan(text, index)

    monkeypatch.setattr(_clean, "_scan", counted)
    yield count


def test_record_thought_rows_are_rolled_up_without_parsing_their_metadata(
    tmp_path: Path, scans: list[int]
) -> None:
    telemetry = otel_tele.setup(
        local=True,
        sinks=["postgres"],
        data_dir=tmp_path,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    try:
        logger = TelemetryLogger(telemetry)
        for i in range(500):
            assert logger.record_thought("gemma2:27b", 0.5 + i / 64, 100 + i, 20)
        assert telemetry.force_flush(60_000)
        assert telemetry.events.route is not None and telemetry.events.route._feed is not None  # row path
        plain_scans = scans[0]
        assert logger.record_thought("m token=abc", 0.5, 100, 20)  # the scrubber changes its text
        assert telemetry.force_flush(60_000)
        stats = next(s for s in telemetry.sink_stats() if s.sink == "postgres" and s.signal == "logs")
        assert (stats.exported, stats.failed, stats.dropped) == (501, 0, 0)
    finally:
        telemetry.shutdown(10_000)
    assert plain_scans == 0
    assert scans[0] == 1  # the scrubbed text is parsed back: its dict is not what is stored
