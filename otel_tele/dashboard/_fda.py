"""The solver-runs page (FDA, spec 000): the runs table, and a run's curves against iteration
(log scale) with phase bands and events as marks, its manifest and artifacts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..exporters.capsule.schema import capsule_root
from ..runs import Runs
from ..semconv import fda as v
from ._page import Page, PageError, chart, esc, table

CURVES = ("E", "grad_norm", "phi_residual", "invariant_drift_max")
#: How many runs one overlay compares.
OVERLAY = range(2, 6)


def _bands(trajectory: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    bands: list[tuple[float, float, str]] = []
    for row in trajectory:
        phase, it = str(row.get("phase")), float(row["iter"])
        if bands and bands[-1][2] == phase:
            bands[-1] = (bands[-1][0], it, phase)
        else:
            bands.append((it, it, phase))
    return bands


def page(settings: Any) -> Page:
    def render(query: Mapping[str, str]) -> str:
        runs = Runs(capsule_root(settings))
        compare = _values(query, "compare")
        if compare:
            return _overlay(runs, compare)
        run_id = query.get("run")
        if run_id is None:
            return _list(runs)
        try:
            v.check_name("run_id", run_id)
        except ValueError as exc:
            raise PageError(str(exc)) from None
        return _run(runs, run_id)

    return Page("runs", "Solver runs", render, order=20)


def _values(query: Mapping[str, str], key: str) -> list[str]:
    """Every value of ``key`` (a checkbox list sends one per box; a link may send them comma-joined)."""
    raw = query.getlist(key) if hasattr(query, "getlist") else [query.get(key, "")]
    return [part for value in raw for part in str(value).split(",") if part]


def _list(runs: Runs) -> str:
    if not runs.root.is_dir():
        return '<p class="note">No solver runs yet.</p>'
    rows = runs.list(limit=500)
    cols = ("run_id", "flow_name", "mode", "status", "started_at", "rows", "last_iter", "e_first", "e_last")
    listed = table(
        ("compare", *cols),
        [(r["run_id"], *(r[c] for c in cols)) for r in rows],
        links=1,
        link=lambda r: f"/ui/runs?run={r[1]}",
    )
    # The first column's text becomes a checkbox: the form compares the ticked runs (no script needed).
    for r in rows:
        box = f'<input type="checkbox" name="compare" value="{esc(r["run_id"])}" aria-label="compare">'
        listed = listed.replace(f"<td>{esc(r['run_id'])}</td>", f"<td>{box}</td>", 1)
    return (
        f'<form method="get" action="/ui/runs">{listed}'
        '<button type="submit">Compare the ticked runs (2 to 5)</button></form>'
    )


def _overlay(runs: Runs, run_ids: list[str]) -> str:
    if len(run_ids) not in OVERLAY or len(set(run_ids)) != len(run_ids):
        raise PageError("tick 2 to 5 different runs to compare")
    for run_id in run_ids:
        try:
            v.check_name("run_id", run_id)
        except ValueError as exc:
            raise PageError(str(exc)) from None
    shown = {run_id: runs.show(run_id, points=1000)["trajectory"] for run_id in run_ids}
    xs = sorted({row["iter"] for trajectory in shown.values() for row in trajectory})
    joined = ",".join(run_ids)
    parts = [
        f'<p><a href="/ui/runs">all runs</a> · comparing {len(run_ids)} runs · '
        f'<a href="/ui/runs?compare={esc(joined)}&amp;export=html">download this page</a></p>'
    ]
    for curve in CURVES:
        series = {}
        for run_id, trajectory in shown.items():
            by_iter = {row["iter"]: row.get(curve) for row in trajectory}
            series[run_id] = [by_iter.get(x) for x in xs]
        parts.append(
            chart(
                f"overlay-{curve}", f"{curve} against iteration", xs, series, x_label="iteration", y_log=True
            )
        )
    return "".join(parts)


def _run(runs: Runs, run_id: str) -> str:
    shown = runs.show(run_id, points=2000)
    trajectory = shown["trajectory"]
    xs = [row["iter"] for row in trajectory]
    marks = []
    for event in shown["events"]:
        near = next((row["iter"] for row in trajectory if row["t_wall_ms"] >= event["t_wall_ms"]), None)
        if near is not None:
            marks.append((float(near), str(event["event"])))
    parts = [
        f'<p><a href="/ui/runs">all runs</a> · run <b>{esc(run_id)}</b> · {esc(shown["run"]["status"])} · '
        f'<a href="/ui/runs?run={esc(run_id)}&amp;export=html">download this page</a></p>'
    ]
    for curve in CURVES:
        parts.append(
            chart(
                f"curve-{curve}",
                f"{curve} against iteration",
                xs,
                {curve: [row.get(curve) for row in trajectory]},
                x_label="iteration",
                y_log=True,
                bands=_bands(trajectory),
                marks=marks,
            )
        )
    parts.append("<h2>Events</h2>")
    parts.append(
        table(
            ("t_wall_ms", "event", "payload"),
            [(e["t_wall_ms"], e["event"], e["payload"]) for e in shown["events"]],
        )
    )
    if shown["manifest"] is not None:
        parts.append(
            "<h2>Manifest</h2><pre>" + esc(json.dumps(shown["manifest"], indent=2, default=str)) + "</pre>"
        )
    if shown["artifacts"]:
        parts.append("<h2>Artifacts</h2>")
        parts.append(
            table(
                ("name", "size", "sha256"),
                [(a["name"], a.get("size"), a.get("sha256")) for a in shown["artifacts"]],
            )
        )
    return "".join(parts)
