"""The flow page (specs 001/003): runs with their telemetry summary (no paths anywhere), a run's
provenance, the "Generate telemetry" action (the capture route, with a confirmation before an
overwrite) and the bundle as a node x bin heatmap with its warnings and validation status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._capture_service import CaptureService, InvalidRequest
from ..bundles import BundleError, read_bundle
from ..exporters.capture import RunNotFound
from ._page import Page, PageError, esc, table

#: The metric shown in the heatmap unless ``?metric=`` picks another.
DEFAULT_METRIC = "Arrivals"
MAX_HEAT_ROWS = 200


def page(settings: Any) -> Page:
    data_dir = Path(settings.data_dir)

    def render(query: Mapping[str, str]) -> str:
        generator = CaptureService(data_dir / "runs", data_dir / "captures")
        bundle = query.get("bundle")
        if bundle is not None:
            folder = _bundle_folder(data_dir / "captures", bundle)
            return f'<p><a href="/ui/flow">all runs</a> · bundle <b>{esc(bundle)}</b></p>' + _bundle(
                folder, query.get("metric", DEFAULT_METRIC), f"bundle={bundle}"
            )
        run_id = query.get("run")
        if run_id is None:
            return _list(generator) + _bundles(data_dir / "captures")
        try:
            run_dir = generator.run_dir(run_id)
        except InvalidRequest as exc:
            raise PageError(str(exc)) from None
        except RunNotFound as exc:
            raise KeyError(str(exc)) from None
        return _run(generator, run_dir, query.get("metric", DEFAULT_METRIC))

    return Page("flow", "Flow captures", render, order=40)


def _bundle_folder(captures: Path, name: str) -> Path:
    """A bundle folder by name: one plain path segment, a real folder inside ``captures``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise PageError("bundle must be a bundle name")
    folder = captures / name
    if folder.is_symlink() or not (folder / "manifest.json").is_file():
        raise KeyError(f"no bundle {name!r}")
    return folder


def _bundles(captures: Path) -> str:
    names = sorted(p.parent.name for p in captures.glob("*/manifest.json") if not p.parent.is_symlink())
    if not names:
        return ""
    return "<h2>Capture bundles</h2>" + table(
        ("bundle",), [(n,) for n in names], links=0, link=lambda r: f"/ui/flow?bundle={r[0]}"
    )


def _list(generator: CaptureService) -> str:
    runs = generator.runs()
    if not runs:
        return '<p class="note">No flow runs yet.</p>'
    rows = [
        (
            r["runId"],
            r.get("templateId"),
            r.get("createdUtc"),
            "yes" if r["telemetry"]["available"] else "no",
            r["telemetry"]["generatedAtUtc"],
            r["telemetry"]["warningCount"],
            r["telemetry"]["sourceRunId"],
        )
        for r in runs
    ]
    cols = ("run", "template", "created", "telemetry", "generatedAtUtc", "warningCount", "sourceRunId")
    return table(cols, rows, links=0, link=lambda r: f"/ui/flow?run={r[0]}")


def _run(generator: CaptureService, run_dir: Path, metric: str) -> str:
    summary = generator.summary(run_dir)
    telemetry = summary["telemetry"]
    run_id = summary["runId"]
    parts = [f'<p><a href="/ui/flow">all runs</a> · run <b>{esc(run_id)}</b></p>']
    parts.append(
        table(
            ("field", "value"),
            [
                ("template", summary.get("templateId")),
                ("created", summary.get("createdUtc")),
                ("grid", json.dumps(summary.get("grid"))),
                ("telemetry available", "yes" if telemetry["available"] else "no"),
                ("generatedAtUtc", telemetry["generatedAtUtc"]),
                ("warningCount", telemetry["warningCount"]),
                ("sourceRunId", telemetry["sourceRunId"]),
            ],
        )
    )
    parts.append(
        f'<p><button type="button" data-generate="{esc(run_id)}" '
        f'data-exists="{str(telemetry["available"]).lower()}">'
        f'Generate telemetry for this run</button> <span data-generate-status role="status"></span></p>'
    )
    replay = "" if telemetry["available"] else " disabled"
    parts.append(
        f'<p>Replay: <button type="button"{replay}>from telemetry</button> '
        '<button type="button">from the model</button></p>'
    )
    if telemetry["available"]:
        parts.append(_bundle(run_dir / "model" / "telemetry", metric, f"run={run_id}"))
    return "".join(parts)


def _bundle(folder: Path, metric: str, here: str) -> str:
    try:
        bundle = read_bundle(folder, strict=False)
    except (BundleError, OSError) as exc:
        return f'<p class="error">the bundle cannot be read ({esc(type(exc).__name__)})</p>'
    status = "valid" if not bundle.problems and not bundle.missing else "invalid"
    parts = [f"<h2>Bundle</h2><p>validation: <b>{esc(status)}</b>"]
    parts.append(f" · {len(bundle.series)} series · {len(bundle.warnings)} warnings</p>")
    for problem in bundle.problems[:20]:
        parts.append(f'<p class="error">{esc(problem)}</p>')
    metrics = sorted({s.metric for s in bundle.series})
    links = " ".join(f'<a href="?{esc(here)}&amp;metric={esc(m)}">{esc(m)}</a>' for m in metrics)
    parts.append(f"<p>metric: {links}</p>")
    chosen = [s for s in bundle.series if s.metric == metric][:MAX_HEAT_ROWS]
    if chosen:
        spec = {
            "title": f"{metric}: node x bin",
            "rows": [s.node_id if s.class_id == "DEFAULT" else f"{s.node_id} ({s.class_id})" for s in chosen],
            "values": [list(s.values) for s in chosen],
            "gaps": [[i for i, value in enumerate(s.values) if value is None] for s in chosen],
        }
        data = json.dumps(spec, allow_nan=False).replace("</", "<\\/")
        parts.append(
            f'<figure class="chart" data-heatmap><figcaption>{esc(spec["title"])}</figcaption>'
            f'<script type="application/json">{data}</script></figure>'
        )
    if bundle.warnings:
        parts.append("<h2>Warnings</h2>")
        parts.append(table(("code", "message"), [(w.code, w.message) for w in bundle.warnings[:200]]))
    return "".join(parts)
