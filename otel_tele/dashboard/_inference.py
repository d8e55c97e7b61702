"""The model-serving page (spec 002): per-model efficiency, tokens/s and time to first token over
the last day from the rollups, load latency, the 60-day ranking, alerts, the store's footprint and
its last prune."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..domains.inference import POSTGRES_DSN
from ..exporters.postgres.maintenance import last_prune
from ..inference_stats import InferenceStats
from ._page import Page, PageError, chart, esc, stat, table, when


def _hours(query: Mapping[str, str]) -> float:
    raw = query.get("hours", "24")
    try:
        hours = float(raw)
    except ValueError:
        raise PageError("hours must be a number") from None
    if not 0 < hours <= 24 * 60:
        raise PageError("hours must be in (0, 1440]")
    return hours


def page(settings: Any) -> Page:
    def render(query: Mapping[str, str]) -> str:
        hours = _hours(query)
        stats = InferenceStats.open(dsn=settings.get(POSTGRES_DSN), data_dir=settings.data_dir)
        try:
            day = stats.aggregated_efficiency(hours=hours)
            trends = stats.statistics_60day()
            footprint = stats.footprint()
        finally:
            stats.close()
        pruned = last_prune(settings.data_dir)
        overall = day["overall"]
        parts = ['<div class="stats">']
        parts.append(stat("inferences", overall["inferences"]))
        parts.append(stat("tokens generated", overall["tokens_generated"]))
        parts.append(stat("ms per token (weighted)", overall["weighted_efficiency_ms_per_token"]))
        parts.append(stat("tokens/s", overall["tokens_per_second"]))
        parts.append(stat("failures", overall["failures"], bad=bool(overall["failures"])))
        parts.append(stat("store rows", footprint["row_count"]))
        parts.append(stat("store bytes", footprint["total_size_bytes"]))
        parts.append(stat("last prune", when(pruned.at) if pruned is not None else "none recorded"))
        parts.append(stat("rows pruned", pruned.removed if pruned is not None else None))
        parts.append("</div>")
        for alert in footprint.get("alerts", []) + trends.get("alerts", []):
            parts.append(f'<div class="banner bad" role="alert">{esc(alert.get("message", alert))}</div>')
        intervals = day["intervals"]
        if intervals:
            xs = [datetime.fromisoformat(i["start"]).timestamp() for i in intervals]
            parts.append(
                chart(
                    "efficiency",
                    f"Token-weighted efficiency, last {hours:g} h (per minute)",
                    xs,
                    {"ms per token": [i["weighted_efficiency_ms_per_token"] for i in intervals]},
                    x_time=True,
                )
            )
            parts.append(
                chart(
                    "rate",
                    "Inferences per minute",
                    xs,
                    {"inferences": [i["inferences"] for i in intervals]},
                    x_time=True,
                )
            )
        parts.append(f"<h2>Models, last {hours:g} h (best first)</h2>")
        cols = (
            "rank",
            "model",
            "inferences",
            "tokens_generated",
            "weighted_efficiency_ms_per_token",
            "tokens_per_second",
            "failures",
        )
        parts.append(table(cols, [tuple(m.get(c) for c in cols) for m in day["models"]]))
        ttft = [m for m in day["models"] if any(k.startswith("ttft") or "first_token" in k for k in m)]
        if ttft:
            keys = sorted({k for m in ttft for k in m if "first_token" in k})
            parts.append("<h2>Time to first token</h2>")
            parts.append(table(("model", *keys), [(m["model"], *(m.get(k) for k in keys)) for m in ttft]))
        parts.append("<h2>Load latency</h2>")
        loads = day["load_latency"]
        keys = sorted({k for entry in loads for k in entry if k != "model"})
        parts.append(table(("model", *keys), [(e["model"], *(e.get(k) for k in keys)) for e in loads]))
        parts.append("<h2>60-day ranking</h2>")
        ranking = (
            "model",
            "recent_24h_efficiency_ms_per_token",
            "baseline_efficiency_ms_per_token",
            "efficiency_change",
            "first_day",
            "last_day",
        )
        parts.append(
            table(ranking, [tuple(t.get(c) for c in ranking) for t in trends.get("model_trends", [])])
        )
        parts.append("<h2>Footprint</h2>")
        parts.append(
            table(
                (
                    "backend",
                    "rows",
                    "bytes",
                    "oldest",
                    "newest",
                    "retention days",
                    "last prune",
                    "rows removed",
                    "prune detail",
                ),
                [
                    (
                        footprint["backend"],
                        footprint["row_count"],
                        footprint["total_size_bytes"],
                        footprint["oldest_record"],
                        footprint["newest_record"],
                        footprint["retention_days"],
                        when(pruned.at) if pruned is not None else "none recorded",
                        pruned.removed if pruned is not None else None,
                        pruned.detail if pruned is not None else None,
                    )
                ],
                cls="footprint",
            )
        )
        return "".join(parts)

    return Page("serving", "Model serving", render, order=30)
