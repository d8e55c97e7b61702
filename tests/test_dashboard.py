"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright's client)
against a real ``otel-tele serve --http`` over the demo's data: every page loads without console
errors and shows the numbers the query APIs give, "Generate telemetry" answers 200 then 409, the
live tail shows an event emitted during the test, and every page fails closed without the token;
the health page shows each sink's retention state and a failing sink's last error, the serving
page the store's last prune. Screenshots go to test-results/dashboard/ (not committed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._serve import Serve, serve_process
from .sink_samples.capture import fixture_run

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (bash .ci/dev test installs it)", allow_module_level=True)

TOKEN = "dashboard-test-token-0123456789abcdef"
FLOW_RUN = "run_deterministic_72ca609c"
SHOTS = Path(__file__).resolve().parent.parent / "test-results" / "dashboard"
PAGES = ("health", "tail", "traces", "robot", "runs", "serving", "flow", "sql")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's four workloads, run as a newcomer runs them, plus one flow run to capture."""
    cwd = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, "-m", "otel_tele.demo", "--seconds", "0.5", "--requests", "20"],
        cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, "OTEL_TELE_SINKS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    data = cwd / "demo-output"
    fixture_run(data / "runs", FLOW_RUN)
    return data


@pytest.fixture(scope="module")
def served(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    tmp = tmp_path_factory.mktemp("serve")
    env = {"OTEL_TELE_DATA_DIR": str(demo_data), "OTEL_TELE_STORE_FLUSH_SECONDS": "0.2"}
    with serve_process(tmp, sinks="sqlite,store", token=TOKEN, env=env) as serve:
        yield serve


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any, served: Serve) -> Iterator[Any]:
    """A signed-in page that records console errors and failed requests."""
    context = browser.new_context(base_url=served.url, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.goto("/ui/login")
    tab.wait_for_selector("form[data-ready]")
    tab.fill("input[name=token]", TOKEN)
    tab.click("button[type=submit]")
    tab.wait_for_url("**/ui/health")
    try:
        yield tab
    finally:
        context.close()


def _shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _cells(tab: Any, selector: str = "table") -> list[list[str]]:
    return tab.eval_on_selector(
        selector, "t => [...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
    )


def test_every_page_loads_without_console_errors(page: Any) -> None:
    for slug in PAGES:
        response = page.goto(f"/ui/{slug}")
        assert response.status == 200, slug
        page.wait_for_load_state("networkidle") if slug != "tail" else None
        for figure in page.query_selector_all("figure[data-chart], figure[data-heatmap]"):
            assert figure.get_attribute("data-drawn") is not None, f"{slug}: a chart was not drawn"
        _shot(page, slug)
    assert page.errors == []


def test_pages_show_what_the_query_apis_give(page: Any, served: Serve, demo_data: Path) -> None:
    from otel_tele.exporters.capsule.schema import capsule_root

    from otel_tele._settings import resolve
    from otel_tele.inference_stats import InferenceStats
    from otel_tele.robot_query import TelemetryQuery
    from otel_tele.runs import Runs

    settings = resolve({"data_dir": demo_data})
    runs = Runs(capsule_root(settings)).list(limit=500)
    page.goto("/ui/runs")
    rows = _cells(page)
    assert [r[1] for r in rows] == [r["run_id"] for r in runs] and runs  # column 0: the compare box
    assert [int(r[6]) for r in rows] == [r["rows"] for r in runs]

    page.goto(f"/ui/runs?run={runs[0]['run_id']}")
    assert len(page.query_selector_all("figure[data-chart]")) == 4
    assert page.errors == []

    with TelemetryQuery(demo_data / "telemetry.db") as q:
        summary = q.get_session_summary()
    page.goto("/ui/robot")
    stats = page.eval_on_selector_all(
        ".stat", "s => s.map(e => [e.querySelector('span').textContent, e.querySelector('b').textContent])"
    )
    shown = dict(stats)
    assert shown["total commands"] == str(summary["total_commands"]) and summary["total_commands"] > 0

    stats_api = InferenceStats.open(data_dir=demo_data)
    try:
        overall = stats_api.aggregated_efficiency(hours=24)["overall"]
    finally:
        stats_api.close()
    page.goto("/ui/serving")
    shown = dict(
        page.eval_on_selector_all(
            ".stat",
            "s => s.map(e => [e.querySelector('span').textContent, e.querySelector('b').textContent])",
        )
    )
    assert shown["inferences"] == str(overall["inferences"]) and overall["inferences"] > 0

    page.goto("/ui/flow")
    assert FLOW_RUN in page.content()
    bundles = sorted(p.parent.name for p in (demo_data / "captures").glob("*/manifest.json"))
    assert bundles and all(name in page.content() for name in bundles)
    page.goto(f"/ui/flow?bundle={bundles[0]}")
    assert page.get_attribute("figure[data-heatmap]", "data-drawn") not in (None, "0")
    assert str(demo_data) not in page.content()  # no paths anywhere in the UI
    assert page.errors == []


def test_sql_console_gives_the_python_api_result_downloads_it_and_refuses_writes(
    page: Any, served: Serve, demo_data: Path, tmp_path: Path
) -> None:
    """The SQL page's table is otel_tele.sql's answer, its CSV and Parquet downloads are the whole
    result, a write is refused with a message, a long result says it was truncated."""
    from urllib.parse import urlencode

    import pyarrow.parquet as pq

    from otel_tele import sql

    query = (
        "SELECT c.joint_id, count(*) AS commands, max(w.n) AS web_requests FROM robot_dds_commands c, "
        "(SELECT count(*) AS n FROM robot_web_requests) w GROUP BY c.joint_id ORDER BY c.joint_id"
    )
    with sql.open_catalog(demo_data) as catalog:
        expected = catalog.query(query)
    assert expected.num_rows > 0
    page.goto("/ui/sql")
    page.fill("textarea[name=q]", query)
    page.click("form.sql button[type=submit]")
    page.wait_for_selector("table.sql-result")
    assert _cells(page, "table.sql-result") == [
        [str(v) for v in row.values()] for row in expected.to_pylist()
    ]
    assert page.get_attribute("[data-sql-rows]", "data-sql-rows") == str(expected.num_rows)
    assert page.query_selector("[data-truncated]") is None

    with page.expect_download() as csv_download:
        page.click("a:text-is('CSV')")
    assert Path(csv_download.value.path()).read_bytes() == sql.to_csv(expected)
    with page.expect_download() as parquet_download:
        page.click("a:text-is('Parquet')")
    assert pq.read_table(parquet_download.value.path()).equals(expected)

    target = tmp_path / "written.csv"
    for write in ("DROP VIEW spans", f"COPY (SELECT 1) TO '{target}'", "SELECT 1; DROP VIEW spans"):
        page.goto("/ui/sql?" + urlencode({"q": write}))
        assert "read-only" in page.text_content("[data-sql-error]")
    page.goto("/ui/sql?" + urlencode({"q": "SELECT * FROM read_csv('/etc/passwd')"}))
    assert "disabled by configuration" in page.text_content("[data-sql-error]")
    assert not target.exists()

    page.goto("/ui/sql?" + urlencode({"q": "SELECT range AS i FROM range(2500)"}))
    assert page.get_attribute("[data-sql-rows]", "data-sql-rows") == "1000"
    assert page.query_selector("[data-truncated]") is not None
    assert len(_cells(page, "table.sql-result")) == 1000
    runs = 'SELECT mode, count(DISTINCT run_id) AS runs, count(*) AS iterations, min("E") AS best_e\n'
    page.goto("/ui/sql?" + urlencode({"q": runs + "FROM fda_telemetry GROUP BY mode ORDER BY mode"}))
    page.wait_for_selector("table.sql-result")
    _shot(page, "sql")
    assert page.errors == []

    download = httpx.get(
        f"{served.url}/ui/sql/download", params={"format": "csv", "q": "SELECT 1"}, timeout=10
    )
    assert download.status_code == 401  # no token: nothing, like every page
    signed = {"Authorization": f"Bearer {TOKEN}"}
    bad = httpx.get(
        f"{served.url}/ui/sql/download", params={"format": "xml", "q": "SELECT 1"}, headers=signed
    )
    assert bad.status_code == 400
    refused = httpx.get(
        f"{served.url}/ui/sql/download", params={"format": "csv", "q": "DROP VIEW spans"}, headers=signed
    )
    assert refused.status_code == 400 and "read-only" in refused.text


def test_health_books_match_the_pipeline(page: Any, served: Serve) -> None:
    page.goto("/ui/health")
    rows = _cells(page, "table.books")
    assert rows, "no books shown"
    for row in rows:
        assert row[-1] == "yes", row  # every sink's books balance
    assert page.query_selector(".banner.ok") is not None


def test_health_shows_each_sinks_retention_state(page: Any, served: Serve) -> None:
    page.goto("/ui/health")
    rows = {row[0]: row for row in _cells(page, "table.retention")}
    assert {"sqlite", "store", "capsule", "postgres"} <= set(rows)
    sqlite = rows["sqlite"]
    assert sqlite[1] == "7 days" and sqlite[2] != "—"  # the demo's robot rows: the oldest one kept
    assert sqlite[3].startswith("prune at ") and sqlite[4] == "0" and sqlite[5] != "—"  # pass at open
    errors = {row[0]: row for row in _cells(page, "table.errors")}
    assert errors["sqlite/logs"][1:] == ["none", "—"]
    assert str(served.data_dir) not in page.content()
    assert page.errors == []


def test_a_failing_sink_shows_its_last_error(browser: Any, tmp_path: Path) -> None:
    """The robot database's path is a folder: every write fails (after its retries). The health page
    shows the error with its time, no path in it, and the red banner."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    (tmp_path / "data" / "telemetry.db").mkdir(parents=True)
    with serve_process(tmp_path, sinks="sqlite", token=TOKEN) as serve:
        provider = LoggerProvider()
        exporter = OTLPLogExporter(endpoint=f"{serve.otlp_http_url}/v1/logs", headers=serve.headers)
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        attributes = {
            "robot.dds.seq": 1,
            "robot.dds.funcode": 1,
            "robot.joint.id": 2,
            "robot.target_value": 0.5,
        }
        provider.get_logger("dashboard-test").emit(event_name="robot.dds.command", attributes=attributes)
        provider.shutdown()
        context = browser.new_context(base_url=serve.url, viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "otel_tele_session", "value": TOKEN, "url": serve.url}])
        tab = context.new_page()
        try:
            deadline = time.monotonic() + 120  # the sink retries with backoff before it gives up
            while True:
                tab.goto("/ui/health")
                errors = {row[0]: row for row in _cells(tab, "table.errors")}
                if errors.get("sqlite/logs", ["", "none"])[1] != "none":
                    break
                assert time.monotonic() < deadline, "the failed write never reached the books"
                tab.wait_for_timeout(250)
            _name, message, at = errors["sqlite/logs"]
            assert message.startswith("OperationalError: ") and "unable to open database file" in message
            assert at.endswith("Z") and at[:4].isdigit()
            assert tab.query_selector(".banner.bad") is not None
            assert str(tmp_path) not in tab.content()
            _shot(tab, "health-failing-sink")
        finally:
            context.close()


def test_serving_page_shows_the_last_prune(page: Any, demo_data: Path) -> None:
    from otel_tele.exporters.postgres.maintenance import last_prune

    from otel_tele.dashboard._page import when

    pruned = last_prune(demo_data)  # the demo's sink pruned once after its first write
    assert pruned is not None and pruned.what == "prune"
    page.goto("/ui/serving")
    shown = dict(
        page.eval_on_selector_all(
            ".stat",
            "s => s.map(e => [e.querySelector('span').textContent, e.querySelector('b').textContent])",
        )
    )
    assert shown["last prune"] == when(pruned.at) and shown["rows pruned"] == str(pruned.removed)
    (row,) = _cells(page, "table.footprint")
    assert row[6:8] == [when(pruned.at), str(pruned.removed)]
    _shot(page, "serving-last-prune")
    assert page.errors == []


def test_generate_telemetry_then_409_without_overwrite(page: Any) -> None:
    page.goto(f"/ui/flow?run={FLOW_RUN}")
    status = page.locator("[data-generate-status]")
    # A success reloads the page (to show the new telemetry summary): wait for that navigation,
    # rather than racing it with one of our own.
    with page.expect_navigation(), page.expect_response("**/v1/telemetry/captures") as first:
        page.click("button[data-generate]")
    assert first.value.status == 200
    assert page.get_attribute("button[data-generate]", "data-exists") == "true"
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    with page.expect_response("**/v1/telemetry/captures") as second:
        page.click("button[data-generate]")
    assert second.value.status == 409
    status.wait_for(state="visible")
    # (selectors, not wait_for_function: the page's CSP forbids the eval Playwright would use)
    page.wait_for_selector("[data-generate-status][data-status='409']")
    assert dialogs and "already exists" in dialogs[0]
    _shot(page, "flow-run")
    # Chromium logs every 4xx fetch as a console error: the 409 is the answer this step expects.
    assert [e for e in page.errors if "409 (Conflict)" not in e] == []


def test_live_tail_shows_an_event_emitted_now(page: Any, served: Serve) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    page.goto("/ui/tail")
    # The stream says "ready" once this browser is subscribed; (selectors, not wait_for_function:
    # the page's CSP forbids the eval Playwright would use).
    page.wait_for_selector("ol[data-tail][data-ready]")
    provider = LoggerProvider()
    exporter = OTLPLogExporter(endpoint=f"{served.otlp_http_url}/v1/logs", headers=served.headers)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    marker = "tail-marker-7f3a"
    provider.get_logger("dashboard-test").emit(body=marker, attributes={"test.case": "tail"})
    provider.shutdown()
    page.wait_for_selector(f"ol[data-tail] li:has-text({json.dumps(marker)})")
    _shot(page, "tail-live")
    assert page.errors == []


@pytest.mark.parametrize("slug", PAGES)
def test_pages_fail_closed_without_the_token(served: Serve, slug: str) -> None:
    response = httpx.get(f"{served.url}/ui/{slug}", timeout=10)
    assert response.status_code == 401
    assert "sign in" in response.text and "<table" not in response.text
    wrong = httpx.get(f"{served.url}/ui/{slug}", cookies={"otel_tele_session": "wrong"}, timeout=10)
    assert wrong.status_code == 401
    assert httpx.get(f"{served.url}/ui/login", timeout=10).status_code == 200  # the way in stays open


def test_a_trace_sent_now_shows_as_a_waterfall_with_its_logs(page: Any, served: Serve) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": "waterfall-test"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"{served.otlp_http_url}/v1/traces", headers=served.headers)
        )
    )
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{served.otlp_http_url}/v1/logs", headers=served.headers)
        )
    )
    tracer = provider.get_tracer("dashboard-test")
    with tracer.start_as_current_span("checkout") as root:
        with tracer.start_as_current_span("reserve-stock"):
            logs.get_logger("dashboard-test").emit(body="stock reserved", attributes={"sku": "A-1"})
        with tracer.start_as_current_span("charge-card") as charge:
            charge.set_status(trace.Status(trace.StatusCode.ERROR, "declined"))
    trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    logs.shutdown()

    # The store writes a part at most 0.2 s after the oldest row: look until the trace is listed.
    deadline = time.monotonic() + 60
    while True:
        page.goto("/ui/traces?service=waterfall-test")
        if trace_id in page.content():
            break
        assert time.monotonic() < deadline, "the trace never reached the general store"
        page.wait_for_timeout(250)
    page.click(f"a[href='/ui/traces?trace={trace_id}']")
    page.wait_for_selector("figure[data-waterfall][data-drawn='3']")
    assert len(page.query_selector_all("details[data-span]")) == 3
    assert "stock reserved" in page.content() and "ERROR" in page.content()
    _shot(page, "trace")
    assert page.goto("/ui/traces?trace=not-a-trace").status == 400
    assert page.goto("/ui/traces?trace=" + "0" * 32).status == 404
    assert [e for e in page.errors if "(Bad Request)" not in e and "(Not Found)" not in e] == []


def test_runs_overlay_and_a_self_contained_export(page: Any, served: Serve, demo_data: Path) -> None:
    from otel_tele.exporters.capsule.schema import capsule_root

    from otel_tele._settings import resolve
    from otel_tele.runs import Runs

    runs = Runs(capsule_root(resolve({"data_dir": demo_data}))).list(limit=500)
    page.goto("/ui/runs")
    for run in runs[:3]:
        page.check(f"input[name=compare][value='{run['run_id']}']")
    page.click("form button[type=submit]")
    page.wait_for_selector("figure[data-chart][data-drawn]")
    figures = page.query_selector_all("figure[data-chart]")
    assert len(figures) == 4
    for figure in figures:
        spec = json.loads(figure.query_selector("script").text_content())
        assert [s["label"] for s in spec["series"]] == [r["run_id"] for r in runs[:3]]
    _shot(page, "runs-overlay")
    assert page.goto(f"/ui/runs?compare={runs[0]['run_id']}").status == 400  # one run is no comparison
    assert page.errors == [] or all("(Bad Request)" in e for e in page.errors)

    exported = httpx.get(
        f"{served.url}/ui/runs", params={"run": runs[0]["run_id"], "export": "html"}, headers=served.headers
    )
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].startswith("attachment;")
    html = exported.text
    assert "src=" not in html and "<link" not in html and "uPlot" in html  # nothing to fetch: opens offline
    standalone = SHOTS / "exported-run.html"
    standalone.write_text(html)
    offline = page.context.browser.new_page()  # type: ignore[union-attr]
    errors: list[str] = []
    offline.on("pageerror", lambda exc: errors.append(str(exc)))
    offline.goto(standalone.as_uri())
    offline.wait_for_selector("figure[data-chart][data-drawn]")
    assert len(offline.query_selector_all("figure[data-chart][data-drawn]")) == 4 and errors == []
    offline.close()


def test_ui_command_refuses_a_missing_folder_and_a_bad_address(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "otel_tele", "ui"]
    missing = subprocess.run([*cli, "--data-dir", str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "not a folder" in missing.stderr
    bad_listen = [*cli, "--data-dir", str(tmp_path), "--listen", "0.0.0.0:8"]
    bad = subprocess.run(bad_listen, capture_output=True, text=True)
    assert bad.returncode == 2 and "token" in bad.stderr  # a non-loopback address needs a token
