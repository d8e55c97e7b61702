"""The FDA domain's HTTP routes over a real uvicorn server: list, show, and the read-only query of a
run's iteration rows (``/v1/fda/runs/{run_id}/iterations``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from otel_tele.instrumentation import fda

import otel_tele
from otel_tele.http_fda import runs_router
from otel_tele.runs import ITERATION_COLUMNS, Runs

from .sink_samples.capsule import CORE
from .test_fda_capsule import SPECIAL, root_of, telemetry  # noqa: F401 - the fixture
from .test_flow_http import AppServer

PHASES = ("RED", "GREEN")


def _record(pipeline: otel_tele.Telemetry, n: int) -> fda.Run:
    with fda.run("flow_q", telemetry=pipeline, units={}, method={}) as run:
        for i in range(n):
            run.iteration(iter=i, **{**CORE, "phase": PHASES[i % 2], "E": SPECIAL[i % len(SPECIAL)]})
    return run


@pytest.fixture
def served(telemetry: otel_tele.Telemetry, tmp_path: Path) -> Iterator[tuple[AppServer, fda.Run]]:  # noqa: F811
    run = _record(telemetry, 2 * len(SPECIAL))
    app = FastAPI()
    app.include_router(runs_router(root=root_of(tmp_path)))
    server = AppServer(app)
    try:
        yield server, run
    finally:
        server.stop()


def _same(got: list[object], expected: list[float]) -> bool:
    """JSON carries NaN and infinity as strings."""
    spelled = {math.inf: "Infinity", -math.inf: "-Infinity"}
    return got == ["NaN" if math.isnan(x) else spelled.get(x, x) for x in expected]


def test_iterations_pages_through_a_run_as_the_sql_query_does(
    served: tuple[AppServer, fda.Run], tmp_path: Path
) -> None:
    server, run = served
    c = server.client
    page = c.get(f"/v1/fda/runs/{run.run_id}/iterations", params={"columns": "iter,phase,E", "limit": 5})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["columns"] == ["iter", "phase", "E"]
    assert [row[0] for row in body["rows"]] == [0, 1, 2, 3, 4]
    assert _same([row[2] for row in body["rows"]], SPECIAL[:5])
    assert body["next_offset"] == 5
    rest = c.get(f"/v1/fda/runs/{run.run_id}/iterations", params={"columns": "iter", "offset": 5}).json()
    assert [row[0] for row in rest["rows"]] == list(range(5, 2 * len(SPECIAL)))
    assert rest["next_offset"] is None
    # Filters match the SQL the CLI would run over the same views.
    red = c.get(
        f"/v1/fda/runs/{run.run_id}/iterations",
        params={"columns": "iter,E", "phase": "RED", "from_iter": 2, "to_iter": 9},
    ).json()
    sql = Runs(root_of(tmp_path)).query(
        "SELECT iter FROM telemetry WHERE run_id = ? AND phase = ? AND iter BETWEEN 2 AND 9 ORDER BY iter",
        [run.run_id, "RED"],
    )
    assert [row[0] for row in red["rows"]] == [row[0] for row in sql["rows"]] == [2, 4, 6, 8]
    everything = c.get(f"/v1/fda/runs/{run.run_id}/iterations", params={"limit": 1}).json()
    assert everything["columns"] == list(ITERATION_COLUMNS)


def test_list_and_show_answer_for_a_run_with_nan_and_infinite_values(
    served: tuple[AppServer, fda.Run],
) -> None:
    server, run = served
    listed = server.client.get("/v1/fda/runs")
    assert listed.status_code == 200, listed.text
    assert [r["run_id"] for r in listed.json()["runs"]] == [run.run_id]
    shown = server.client.get(f"/v1/fda/runs/{run.run_id}")
    assert shown.status_code == 200, shown.text
    assert {"NaN", "Infinity", "-Infinity"} & {row["E"] for row in shown.json()["trajectory"]}


def test_iterations_refuses_bad_input_clearly(served: tuple[AppServer, fda.Run], tmp_path: Path) -> None:
    server, run = served
    c = server.client
    url = f"/v1/fda/runs/{run.run_id}/iterations"
    for params in (
        {"columns": "iter,nope"},
        {"columns": 'iter" FROM events; --'},  # never spliced: not a column, refused
        {"limit": 0},
        {"limit": 10_001},
        {"offset": -1},
    ):
        response = c.get(url, params=params)
        assert response.status_code == 400, (params, response.status_code)
        assert "error" in response.json() and str(tmp_path) not in response.text
    assert c.get(url, params={"from_iter": "x"}).status_code == 422  # FastAPI's own validation
    # A phase is a bound value, never SQL.
    injected = c.get(url, params={"phase": "RED' OR '1'='1"}).json()
    assert injected["rows"] == []
    missing = c.get("/v1/fda/runs/fda_run_nope/iterations")
    assert missing.status_code == 404 and str(tmp_path) not in missing.text
    assert c.get("/v1/fda/runs/..%2F..%2Fetc/iterations").status_code in (400, 404)
    assert c.get("/v1/fda/runs/bad%20id/iterations").status_code == 400
    # Past the last row of a known run: an empty page, not a 404.
    beyond = c.get(url, params={"offset": 1000}).json()
    assert beyond == {"columns": list(ITERATION_COLUMNS), "rows": [], "next_offset": None}
