"""The model-serving query API (spec 002): efficiency rankings, 60-day trends, footprint.

One implementation behind ``TelemetryLogger.get_*``, the ``otel-tele inference`` commands and the
``/telemetry`` HTTP routes, over either store (PostgreSQL or the embedded SQLite database). Every
question reads the write-time rollups, never the raw rows: 24-hour questions the 60-second rollup,
60-day questions the hourly one. It reads through the store's public schema module only
(:mod:`otel_tele.exporters.postgres.schema`: read-only connections); pruning is the store's
maintenance (:mod:`otel_tele.exporters.postgres.maintenance`, ``otel-tele inference prune``).

Efficiency is the spec's score, milliseconds per generated token (lower is better). The weighted
efficiency of a window is token-weighted: sum(score x tokens) / sum(tokens) — a 10-token answer does
not count as much as a 1,000-token one. Alerts (spec 9.2, thresholds configurable): table larger than
100 MB, more than 1M rows, a model's last-24-hour efficiency more than 20 % worse than its baseline
(the rest of the window).

Example::

    stats = InferenceStats.open()            # OTEL_TELE_POSTGRES_DSN, else <data dir>/inference.db
    ranking = stats.aggregated_efficiency(hours=24)["models"]
    best = stats.statistics_60day()["model_trends"][0]
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .domains.inference import POSTGRES_DSN
from .exporters.postgres.schema import (
    MAX_KEY_CHARS,
    MEASURES,
    ROLLUP_HOUR,
    ROLLUP_MINUTE,
    TABLE,
    TABLES,
    TTFT_BOUNDS,
    InferenceConfig,
    StoreReader,
    clean_text,
    empty_measures,
    merge_into,
    open_reader,
)
from .semconv import inference as inf

if TYPE_CHECKING:
    from ._pipeline import Pipeline

_log = logging.getLogger("otel_tele.inference")
_M = {m.name: i for i, m in enumerate(MEASURES)}
_MAX_HOURS = 24 * 400


@dataclass(frozen=True)
class Alert:
    """A crossed spec 9.2 threshold."""

    alert: str  # table_size | row_count | efficiency_drop
    value: float
    threshold: float
    message: str
    component: str | None = None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def check_hours(hours: Any) -> float:
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours):
        raise ValueError(f"hours must be a number, got {hours!r}")
    if not 0 < hours <= _MAX_HOURS:
        raise ValueError(f"hours must be in (0, {_MAX_HOURS}], got {hours!r}")
    return float(hours)


def check_component(component: Any) -> str | None:
    """The stored form of a component filter (NUL made visible, cut as the store cuts it)."""
    if component is None:
        return None
    if not isinstance(component, str):
        raise ValueError(f"component must be a string, got {type(component).__name__}")
    cleaned: str = clean_text(component)
    return cleaned[:MAX_KEY_CHARS]


def _measures(row: Sequence[Any]) -> list[float]:
    out: list[float] = []
    for measure, value in zip(MEASURES, row, strict=True):
        if value is None:
            out.append(0 if measure.merge == "sum" else math.nan)
        else:
            out.append(
                int(value) if measure.integer else float(value) if isinstance(value, Decimal) else value
            )
    return out


def _merge(rows: Iterable[Sequence[Any]]) -> list[float]:
    total: list[float] = empty_measures()
    for row in rows:
        merge_into(total, _measures(row))
    return total


def _weighted(m: Sequence[float]) -> float | None:
    return m[_M["weighted_sum"]] / m[_M["weight_sum"]] if m[_M["weight_sum"]] else None


def efficiency_summary(m: Sequence[float]) -> dict[str, Any]:
    """The efficiency figures of merged THOUGHT_LATENCY measures."""
    value_count = m[_M["value_count"]]
    latency_s = m[_M["latency_ms_sum"]] / 1000
    return {
        "inferences": int(m[_M["count"]]),
        "tokens_generated": int(m[_M["tokens_sum"]]),
        "prompt_tokens": int(m[_M["prompt_tokens_sum"]]),
        "weighted_efficiency_ms_per_token": _round(_weighted(m)),
        "mean_efficiency_ms_per_token": _round(m[_M["value_sum"]] / value_count if value_count else None),
        "min_efficiency_ms_per_token": _round(m[_M["value_min"]]),
        "max_efficiency_ms_per_token": _round(m[_M["value_max"]]),
        "tokens_per_second": _round(m[_M["tokens_sum"]] / latency_s if latency_s > 0 else None, 3),
        "zero_token_inferences": int(m[_M["zero_tokens"]]),
        "failures": int(m[_M["failures"]]),
        **time_to_first_token_summary(m),
    }


def time_to_first_token_summary(m: Sequence[float]) -> dict[str, Any]:
    """Count, mean and p50/p95/p99 of the times to first token (seconds). A percentile is the upper
    bound of the conventions' bucket holding its rank (never above the largest value seen), so it is
    at most one bucket above the exact figure."""
    count = int(m[_M["ttft_count"]])
    buckets = [int(m[_M["ttft_le_00"] + i]) for i in range(len(TTFT_BOUNDS) + 1)]
    top = m[_M["ttft_max"]]

    def percentile(q: float) -> float | None:
        if not count:
            return None
        rank, seen = max(1, math.ceil(q * count)), 0
        for bound, n in zip((*TTFT_BOUNDS, math.inf), buckets, strict=True):
            seen += n
            if seen >= rank:
                return _round(min(bound, top))
        return _round(top)

    return {
        "ttft_count": count,
        "ttft_mean_s": _round(m[_M["ttft_sum"]] / count if count else None),
        "ttft_p50_s": percentile(0.50),
        "ttft_p95_s": percentile(0.95),
        "ttft_p99_s": percentile(0.99),
        "ttft_max_s": _round(top) if count else None,
    }


def load_summary(m: Sequence[float]) -> dict[str, Any]:
    value_count = m[_M["value_count"]]
    return {
        "loads": int(m[_M["count"]]),
        "mean_load_seconds": _round(m[_M["value_sum"]] / value_count if value_count else None),
        "min_load_seconds": _round(m[_M["value_min"]]),
        "max_load_seconds": _round(m[_M["value_max"]]),
        "failures": int(m[_M["failures"]]),
    }


_COUNT, _TOKENS, _WEIGHT, _WSUM = (3 + _M[n] for n in ("count", "tokens_sum", "weight_sum", "weighted_sum"))


def _interval(row: Sequence[Any]) -> dict[str, Any]:
    """One minute of the series straight from a rollup row (bucket, type, "", *measures)."""
    weight = row[_WEIGHT] or 0
    return {
        "start": _iso(int(row[0])),
        "inferences": int(row[_COUNT] or 0),
        "tokens_generated": int(row[_TOKENS] or 0),
        "weighted_efficiency_ms_per_token": _round(float(row[_WSUM]) / weight) if weight else None,
    }


def _rank_key(entry: dict[str, Any]) -> tuple[bool, float, str]:
    score = entry["weighted_efficiency_ms_per_token"]
    return (score is None, score if score is not None else 0.0, entry["model"] or "")


def _by_component(
    rows: Iterable[Sequence[Any]], event_type: str, *, with_bucket: bool = False
) -> dict[str, list[Sequence[Any]]]:
    """Rollup rows of one event type per component: measures, or (bucket, *measures)."""
    groups: dict[str, list[Sequence[Any]]] = {}
    for row in rows:
        if row[1] == event_type:
            groups.setdefault(row[2], []).append((row[0], *row[3:]) if with_bucket else row[3:])
    return groups


class InferenceStats:
    """Read the inference store; ``events`` (optional) receives footprint, trend and alert events."""

    def __init__(
        self,
        store: StoreReader,
        *,
        config: InferenceConfig | None = None,
        clock: Callable[[], float] = time.time,
        events: Any = None,
    ) -> None:
        self.store = store
        self.config = config or InferenceConfig.from_settings()
        self.clock = clock
        self.events = events

    @classmethod
    def open(
        cls,
        *,
        dsn: str | None = None,
        data_dir: str | Path | None = None,
        config: InferenceConfig | None = None,
        **kwargs: Any,
    ) -> InferenceStats:
        """A read-only view of the store named by ``dsn`` (else ``OTEL_TELE_POSTGRES_DSN``), else of the
        embedded one under ``data_dir``."""
        from ._settings import resolve

        settings = resolve({"postgres_dsn": dsn, "data_dir": data_dir})
        config = config or InferenceConfig.from_settings(settings)
        store = open_reader(
            settings.get(POSTGRES_DSN), settings.data_dir, pool_max_size=config.postgres_pool_max_size
        )
        return cls(store, config=config, **kwargs)

    @classmethod
    def for_telemetry(cls, telemetry: Pipeline | None) -> InferenceStats:
        """The query API over the store a pipeline's settings name, with the pipeline's events (for
        the footprint, trend and alert events) and its ``postgres`` sink's thresholds when it has one.
        What the ``inference`` domain registers as the reader of ``TelemetryLogger``."""
        if telemetry is None:
            return cls.open()
        sink = telemetry.sinks.get("postgres")
        config = getattr(sink, "config", None)
        return cls.open(
            dsn=telemetry.settings.get(POSTGRES_DSN),
            data_dir=telemetry.settings.data_dir,
            config=config if isinstance(config, InferenceConfig) else None,
            events=telemetry.events,
        )

    def close(self) -> None:
        self.store.close()

    # -- efficiency ------------------------------------------------------------------------------
    def aggregated_efficiency(self, component: str | None = None, hours: float = 24) -> dict[str, Any]:
        """Token-weighted efficiency per model over the last ``hours`` (60-second rollups), ranked
        best (fewest ms per token) first, plus the per-minute series and load latency."""
        hours = check_hours(hours)
        component = check_component(component)
        now = self.clock()
        since = int((now - hours * 3600) // 60 * 60)
        types = (inf.THOUGHT_LATENCY_TYPE, inf.LOAD_LATENCY_TYPE)
        # Totals per model, and the per-minute series over all selected models: both merged by the
        # database, so Python handles a few rows per model and one row per minute.
        rows = self.store.rollup(ROLLUP_MINUTE, since=since, component=component, event_types=types)
        series = self.store.rollup(
            ROLLUP_MINUTE,
            since=since,
            component=component,
            step=60,
            by_component=False,
            event_types=(inf.THOUGHT_LATENCY_TYPE,),
        )
        models = []
        for name, group in _by_component(rows, inf.THOUGHT_LATENCY_TYPE).items():
            models.append({"model": name or None, **efficiency_summary(_merge(group))})
        models.sort(key=_rank_key)
        for rank, entry in enumerate(models, 1):
            entry["rank"] = rank
        loads = [
            {"model": name or None, **load_summary(_merge(group))}
            for name, group in sorted(_by_component(rows, inf.LOAD_LATENCY_TYPE).items())
        ]
        thought = [row[3:] for row in rows if row[1] == inf.THOUGHT_LATENCY_TYPE]
        return {
            "window_hours": hours,
            "component": component,
            "since": _iso(since),
            "until": _iso(now),
            "interval_seconds": ROLLUP_MINUTE.seconds,
            "weighting": "tokens_generated",
            "models": models,
            "overall": efficiency_summary(_merge(thought)),
            "intervals": [_interval(row) for row in series],
            "load_latency": loads,
        }

    # -- 60 days ---------------------------------------------------------------------------------
    def statistics_60day(self, days: int | None = None, component: str | None = None) -> dict[str, Any]:
        """Per-model trends over ``days`` (default: the retention window, 60), ordered by weighted
        efficiency ascending (``model_trends[0]`` is the best model), from the hourly rollup;
        ``component`` keeps one model (or GPU) only."""
        days = self.config.inference_retention_days if days is None else days
        if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= 400:
            raise ValueError(f"days must be an integer in [1, 400], got {days!r}")
        component = check_component(component)
        now = self.clock()
        since = int((now - days * 86_400) // 3600 * 3600)
        recent_since = int((now - 86_400) // 3600 * 3600)
        daily = self.store.rollup(ROLLUP_HOUR, since=since, step=86_400, component=component)
        recent = _by_component(
            self.store.rollup(
                ROLLUP_HOUR,
                since=recent_since,
                component=component,
                event_types=(inf.THOUGHT_LATENCY_TYPE,),
            ),
            inf.THOUGHT_LATENCY_TYPE,
        )
        trends = [
            self._trend(name, group, recent.get(name, []))
            for name, group in _by_component(daily, inf.THOUGHT_LATENCY_TYPE, with_bucket=True).items()
        ]
        trends.sort(key=_rank_key)
        counts: dict[str, int] = {}
        for row in daily:
            counts[row[1]] = counts.get(row[1], 0) + int(row[3] or 0)
        alerts = self._efficiency_alerts(trends)
        return {
            "window_days": days,
            "component": component,
            "since": _iso(since),
            "until": _iso(now),
            "model_trends": trends,
            "load_latency": [
                {"model": name or None, **load_summary(_merge(group))}
                for name, group in sorted(_by_component(daily, inf.LOAD_LATENCY_TYPE).items())
            ],
            "vram": self._vram(daily),
            "event_counts": dict(sorted(counts.items())),
            "alerts": [asdict(a) for a in alerts],
        }

    def _trend(
        self, name: str, group: list[Sequence[Any]], recent_rows: list[Sequence[Any]]
    ) -> dict[str, Any]:
        # ``group`` rows are (day, *measures): see the re-ordering in statistics_60day.
        total = _merge(r[1:] for r in group)
        recent = _merge(recent_rows)
        baseline = [
            t - r if MEASURES[i].merge == "sum" else t
            for i, (t, r) in enumerate(zip(total, recent, strict=True))
        ]
        recent_score, baseline_score = _weighted(recent), _weighted(baseline)
        change = (recent_score - baseline_score) / baseline_score if recent_score and baseline_score else None
        daily = [
            {
                "day": _day(int(r[0])),
                **{
                    k: v
                    for k, v in efficiency_summary(_measures(r[1:])).items()
                    if k
                    in (
                        "inferences",
                        "tokens_generated",
                        "weighted_efficiency_ms_per_token",
                        "ttft_p50_s",
                        "ttft_p95_s",
                    )
                },
            }
            for r in sorted(group, key=lambda r: r[0])
        ]
        return {
            "model": name or None,
            **efficiency_summary(total),
            "recent_24h_efficiency_ms_per_token": _round(recent_score),
            "baseline_efficiency_ms_per_token": _round(baseline_score),
            "efficiency_change": _round(change),
            "first_day": daily[0]["day"] if daily else None,
            "last_day": daily[-1]["day"] if daily else None,
            "daily": daily,
        }

    @staticmethod
    def _vram(daily: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        checks = {k: _merge(v) for k, v in _by_component(daily, inf.VRAM_CHECK_TYPE).items()}
        lockouts = {k: _merge(v) for k, v in _by_component(daily, inf.VRAM_LOCKOUT_TYPE).items()}
        out = []
        for gpu in sorted(set(checks) | set(lockouts)):
            m = checks.get(gpu, empty_measures())
            out.append(
                {
                    "gpu": gpu or None,
                    "checks": int(m[_M["count"]]),
                    "mean_free_mb": _round(
                        m[_M["value_sum"]] / m[_M["value_count"]] if m[_M["value_count"]] else None, 3
                    ),
                    "min_free_mb": _round(m[_M["value_min"]], 3),
                    "lockouts": int(lockouts.get(gpu, empty_measures())[_M["count"]]),
                }
            )
        return out

    def _efficiency_alerts(self, trends: Sequence[dict[str, Any]]) -> list[Alert]:
        threshold = self.config.inference_alert_efficiency_drop
        alerts = []
        for trend in trends:
            change = trend["efficiency_change"]
            if self.events is not None and change is not None:
                self.events.emit(
                    inf.EFFICIENCY_TREND,
                    {inf.REQUEST_MODEL: trend["model"] or "", inf.EFFICIENCY_CHANGE: change},
                )
            if change is not None and change > threshold:
                alerts.append(
                    Alert(
                        "efficiency_drop",
                        change,
                        threshold,
                        component=trend["model"],
                        message=f"{trend['model']}: last-24-hour ms/token is {change:.0%} above its "
                        f"baseline (threshold {threshold:.0%})",
                    )
                )
        self._raise_alerts(alerts)
        return alerts

    # -- footprint -------------------------------------------------------------------------------
    def footprint(self) -> dict[str, Any]:
        """Sizes of the tables that exist (``table_sizes[0]`` is ``system_telemetry`` once it exists),
        exact row count, oldest and newest record, and the size/row alerts."""
        found = {entry["table"]: entry for entry in self.store.tables()}
        sizes = [found[t] for t in TABLES if t in found]
        rows = self.store.row_count()
        if sizes and sizes[0]["table"] == TABLE:
            sizes[0] = {**sizes[0], "rows": rows}
        oldest, newest = self.store.time_span()
        alerts = self._footprint_alerts(found.get(TABLE, {}).get("size_bytes", 0), rows)
        return {
            "backend": self.store.dialect,
            "location": self.store.location,
            "table_sizes": sizes,
            "total_size_bytes": sum(entry["size_bytes"] for entry in sizes),
            "row_count": rows,
            "oldest_record": _iso(oldest),
            "newest_record": _iso(newest),
            "retention_days": self.config.inference_retention_days,
            "thresholds": {
                "table_bytes": self.config.inference_alert_table_bytes,
                "rows": self.config.inference_alert_rows,
                "efficiency_drop": self.config.inference_alert_efficiency_drop,
            },
            "alerts": [asdict(a) for a in alerts],
        }

    def _footprint_alerts(self, size_bytes: int, rows: int) -> list[Alert]:
        if self.events is not None:
            self.events.emit(inf.FOOTPRINT, {inf.TABLE_BYTES: size_bytes, inf.TABLE_ROWS: rows})
        alerts = []
        if size_bytes > self.config.inference_alert_table_bytes:
            alerts.append(
                Alert(
                    "table_size",
                    size_bytes,
                    self.config.inference_alert_table_bytes,
                    f"{TABLE} is {size_bytes / 1e6:.1f} MB (threshold "
                    f"{self.config.inference_alert_table_bytes / 1e6:.0f} MB)",
                )
            )
        if rows > self.config.inference_alert_rows:
            alerts.append(
                Alert(
                    "row_count",
                    rows,
                    self.config.inference_alert_rows,
                    f"{TABLE} has {rows:,} rows (threshold {self.config.inference_alert_rows:,}; "
                    "is pruning running?)",
                )
            )
        self._raise_alerts(alerts)
        return alerts

    def _raise_alerts(self, alerts: Sequence[Alert]) -> None:
        from opentelemetry._logs import SeverityNumber

        for alert in alerts:
            _log.warning("inference telemetry alert: %s", alert.message)
            if self.events is not None:
                self.events.emit(
                    inf.ALERT,
                    {
                        inf.ALERT_NAME: alert.alert,
                        inf.VALUE: alert.value,
                        inf.ALERT_THRESHOLD: alert.threshold,
                        inf.COMPONENT: alert.component or "",
                        inf.METADATA: asdict(alert),
                    },
                    severity=SeverityNumber.WARN,
                )


for_telemetry = InferenceStats.for_telemetry
