"""``otel-tele sql`` and ``otel_tele.sql``: one DuckDB catalog over every local store (issue 15 §3).

Every store is filled by its real sink (a FastAPI app on uvicorn with the robot and general-store
sinks, the FDA recorder into capsules, the inference logger into PostgreSQL and the embedded store,
a FlowTime run captured into a bundle); the catalog reads them back and joins across stores.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from otel_tele.exporters.capture import capture_run
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.robot import TelemetryCollector
from otel_tele.instrumentation.robot.fastapi import current_correlation_id, instrument_app

from otel_tele import Telemetry
from otel_tele._settings import resolve
from otel_tele.runs import Runs
from otel_tele.sql import SqlError, catalog_markdown, open_catalog

from . import _pg
from ._robot_helpers import UvicornThread, wait_for
from ._services import free_port
from .sink_samples.capsule import CORE
from .sink_samples.capture import fixture_run
from .test_fda_capsule import CERT

pg_dsn, clean_pg, env = _pg.pg_dsn, _pg.clean_pg, _pg.env  # fixtures

ROOT = Path(__file__).resolve().parent.parent
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _pipeline(data_dir: Path, sinks: str) -> Telemetry:
    settings = resolve(
        {
            "sinks": sinks,
            "data_dir": data_dir,
            "traces_exporter": "none",
            "metrics_exporter": "none",
            "logs_exporter": "none",
        }
    )
    return Telemetry(settings, local=True)


@pytest.fixture
def robot_data(tmp_path: Path) -> Iterator[Path]:
    """An instrumented FastAPI app on real uvicorn, with the SQLite and general-store sinks: each
    POST sends one DDS command carrying the request's correlation id."""
    data_dir = tmp_path / "telemetry"
    telemetry = _pipeline(data_dir, "sqlite,store")
    collector = TelemetryCollector(telemetry=telemetry)
    app = FastAPI()

    @app.post("/api/joints/{joint}")
    def move(joint: int, angle: float) -> dict[str, Any]:
        collector.log_command(
            seq=joint, funcode=7, joint_id=joint, target_value=angle, correlation_id=current_correlation_id()
        )
        return {"ok": True}

    instrument_app(app, telemetry=telemetry)
    with UvicornThread(app, free_port()) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        for joint in (1, 2, 3):
            assert client.post(f"/api/joints/{joint}", params={"angle": joint * 10.5}).status_code == 200

        def stored() -> bool:
            telemetry.force_flush(10_000)
            with open_catalog(data_dir) as catalog:
                got = catalog.query(
                    "SELECT (SELECT count(*) FROM robot_dds_commands) AS commands, "
                    "(SELECT count(*) FROM spans WHERE kind = 'SERVER') AS spans, "
                    "(SELECT count(*) FROM logs WHERE event_name = 'robot.dds.command') AS logs"
                ).to_pylist()[0]
            return got == {"commands": 3, "spans": 3, "logs": 3}

        wait_for(stored, what="3 commands, their spans and log records")
    collector.close()
    telemetry.shutdown(10_000)
    yield data_dir


def test_a_robot_command_joins_its_http_request_span(robot_data: Path) -> None:
    """A dds_commands row (SQLite) finds its HTTP server span (Parquet) through the correlation id the
    span carries, and the same span by trace id through the command's log record."""
    with open_catalog(robot_data) as catalog:
        by_correlation = catalog.query(
            """
            SELECT c.joint_id, c.target_value, s.name, s.trace_id, s.attributes->>'$."http.route"' AS route
            FROM robot_dds_commands c
            JOIN spans s ON s.kind = 'SERVER'
                        AND s.attributes->>'$."robot.correlation_id"' = c.correlation_id
            ORDER BY c.joint_id
            """
        ).to_pylist()
        by_trace = catalog.query(
            """
            SELECT (l.attributes->>'$."robot.joint.id"')::INT AS joint_id, s.trace_id
            FROM logs l JOIN spans s ON s.trace_id = l.trace_id AND s.kind = 'SERVER'
            WHERE l.event_name = 'robot.dds.command'
            ORDER BY joint_id
            """
        ).to_pylist()
    assert [(r["joint_id"], r["target_value"], r["route"]) for r in by_correlation] == [
        (1, 10.5, "/api/joints/{joint}"),
        (2, 21.0, "/api/joints/{joint}"),
        (3, 31.5, "/api/joints/{joint}"),
    ]
    assert all(HEX32.match(r["trace_id"]) for r in by_correlation)
    assert len({r["trace_id"] for r in by_correlation}) == 3  # one request, one trace, per command
    assert by_trace == [{"joint_id": r["joint_id"], "trace_id": r["trace_id"]} for r in by_correlation]


def test_every_view_has_its_declared_columns(robot_data: Path, tmp_path: Path) -> None:
    """What DuckDB reports for each view is exactly the declaration (filled stores and none at all)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for data_dir in (robot_data, empty):
        with open_catalog(data_dir) as catalog:
            assert catalog.unavailable == {}
            names = [view.name for view in catalog.views()]
            assert {
                "spans",
                "logs",
                "metrics",
                "robot_dds_commands",
                "fda_telemetry",
                "inference_events",
                "flow_series",
            } <= set(names)
            for view in catalog.views():
                got = catalog.query(f"SELECT * FROM {view.name} LIMIT 0")
                described = [
                    (f.name, str(duckdb.from_arrow(pa.table({f.name: pa.array([], f.type)})).types[0]))
                    for f in got.schema
                ]
                assert tuple(described) == view.columns, view.name


PRUNED = [
    ("SELECT joint_id, count(*) AS n FROM robot_dds_commands GROUP BY joint_id ORDER BY n, joint_id", 1),
    ("SELECT count(*) AS n FROM robot_dds_commands", 0),
    ("SELECT robot_dds_commands.target_value FROM robot_dds_commands ORDER BY 1", 1),
    ("SELECT list_transform([1, 2], lambda v: v + joint_id) AS l FROM robot_dds_commands ORDER BY id", 2),
    ("SELECT c FROM robot_dds_commands c ORDER BY c.id", None),  # the whole row as a struct
    ("SELECT to_json(robot_dds_commands) AS j FROM robot_dds_commands ORDER BY id", None),
    ("SELECT COLUMNS('.*_id') FROM robot_dds_commands ORDER BY 1", None),
    ("SELECT joint_id FROM robot_dds_commands ORDER BY #1", None),  # positional: every column
    ("SELECT * FROM robot_dds_commands c JOIN robot_dds_commands d USING (id) ORDER BY id", None),
    ("SELECT (SELECT max(seq) FROM robot_dds_commands) AS s, count(*) AS n FROM robot_dds_commands", 1),
    ("WITH x AS (SELECT * EXCLUDE (data_json) FROM robot_dds_commands) SELECT x FROM x ORDER BY x.id", None),
    ("SELECT max(correlation_id) AS m FROM (SELECT * FROM robot_dds_commands) s", None),
    ("SELECT * FROM robot_dds_commands ORDER BY id", None),
]


@pytest.mark.parametrize(("query", "read"), PRUNED)
def test_sqlite_views_read_only_the_columns_a_query_needs(
    robot_data: Path, query: str, read: int | None
) -> None:
    """A pruned read answers exactly as a full one; whatever can reach every column reads them all."""
    with open_catalog(robot_data) as full:
        full.query("SELECT * FROM robot_dds_commands")
        expected = full.query(query)
    with open_catalog(robot_data) as pruned:
        assert pruned.query(query).equals(expected)
        loaded = pruned._loaded["robot_dds_commands"]
        assert (loaded is None) if read is None else (loaded is not None and len(loaded) == read)
        # a later query needing other columns reads them too
        again = pruned.query("SELECT seq, raw_len FROM robot_dds_commands ORDER BY id")
        full_again = open_catalog(robot_data)
        try:
            assert again.equals(full_again.query("SELECT seq, raw_len FROM robot_dds_commands ORDER BY id"))
        finally:
            full_again.close()


def test_fda_views_are_the_runs_views(tmp_path: Path) -> None:
    """fda_telemetry / fda_events hold what otel_tele.runs reads (the same capsule views)."""
    data_dir = tmp_path / "telemetry"
    telemetry = _pipeline(data_dir, "capsule")
    for mode in ("production", "dev"):
        with fda.run("flow_a", mode=mode, telemetry=telemetry, **CERT) as run:
            for i in range(4):
                run.iteration(iter=i, **{**CORE, "E": 1.0 / (i + 1), "grad_norm": float(i)})
    telemetry.shutdown(10_000)
    with open_catalog(data_dir) as catalog:
        ours = catalog.query('SELECT run_id, mode, iter, "E" FROM fda_telemetry ORDER BY run_id, iter')
        events = catalog.query("SELECT count(*) AS n FROM fda_events").to_pylist()[0]["n"]
    theirs = Runs(data_dir / "telematry_cfs").records(
        'SELECT run_id, mode, iter, "E" FROM telemetry ORDER BY run_id, iter'
    )
    assert ours.to_pylist() == theirs and len(theirs) == 8
    assert events == Runs(data_dir / "telematry_cfs").records("SELECT count(*) AS n FROM events")[0]["n"] > 0


def test_flow_views_read_capture_bundles(tmp_path: Path) -> None:
    """A FlowTime run captured into <data_dir>/captures/ is one flow_bundles row and its bins."""
    from otel_tele.bundles import read_bundle

    data_dir = tmp_path / "telemetry"
    bundle_dir = data_dir / "captures" / "run_a"
    capture_run(fixture_run(tmp_path / "runs"), bundle_dir)
    bundle = read_bundle(bundle_dir)
    with open_catalog(data_dir) as catalog:
        bundles = catalog.query("SELECT bundle, bins, problems FROM flow_bundles").to_pylist()
        series = catalog.query(
            "SELECT node_id, metric, class_id, list(value ORDER BY bin_index) AS v FROM flow_series "
            "GROUP BY ALL ORDER BY ALL"
        ).to_pylist()
    assert bundles == [{"bundle": "run_a", "bins": bundle.grid.bins, "problems": "[]"}]  # type: ignore[union-attr]
    want = sorted((s.node_id, s.metric, s.class_id, list(s.values)) for s in bundle.series)
    got = [(r["node_id"], r["metric"], r["class_id"], r["v"]) for r in series]
    assert len(got) == len(want) and all(
        g[:3] == w[:3] and all((a == b) or (a != a and b != b) for a, b in zip(g[3], w[3], strict=True))
        for g, w in zip(got, want, strict=True)
    )


def test_inference_views_over_postgresql_and_the_embedded_store(env: _pg.Env) -> None:
    """inference_events holds every stored row with a lowercase-hex trace id; the rollups theirs."""
    from opentelemetry import trace

    tracer = env.cap.telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("generate") as span:
        assert asyncio.run(env.logger.log_thought_latency("model-a", 0.1, 10, prompt_tokens=5))
        trace_id = trace.format_trace_id(span.get_span_context().trace_id)
    assert asyncio.run(env.logger.log_thought_latency("model-b", 0.2, 20))
    env.cap.telemetry.force_flush(10_000)
    settings = resolve({"data_dir": env.data_dir, "postgres_dsn": env.dsn})
    with open_catalog(settings=settings) as catalog:
        reader = next(v.reader for v in catalog.views() if v.name == "inference_events")
        assert ("psycopg" in reader) == (env.backend == "postgresql")
        rows = catalog.query(
            "SELECT component, trace_id, timestamp FROM inference_events ORDER BY component"
        ).to_pylist()
        rolled = catalog.query("SELECT sum(count) AS n FROM inference_rollup_1m").to_pylist()[0]["n"]
    assert [r["component"] for r in rows] == ["model-a", "model-b"] and len(rows) == env.raw_count()
    assert rows[0]["trace_id"] == trace_id and HEX32.match(trace_id)
    assert rolled == 2


# -- read-only, offline -------------------------------------------------------------------------
REFUSED = [
    "COPY (SELECT 1) TO '{tmp}/x.csv'",
    "COPY (SELECT 1) TO '{store}/x.csv'",  # even inside a folder the views may read
    "CREATE TABLE t AS SELECT 1",
    "INSERT INTO spans SELECT * FROM spans",
    "INSTALL httpfs",
    "LOAD httpfs",
    "ATTACH '{tmp}/evil.db' AS evil",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('{tmp}/secret.txt')",
    "SET enable_external_access = true",
    "SET autoinstall_known_extensions = true",
    "SELECT 1; DROP VIEW spans",
    "DROP VIEW spans",
    "PRAGMA version",
    "CALL pragma_version()",
    "EXPORT DATABASE '{tmp}/dump'",
    "SELEC 1",
    "",
]


@pytest.mark.parametrize("statement", REFUSED)
def test_read_only_refuses_writes_files_and_extensions(tmp_path: Path, statement: str) -> None:
    """Each is refused with a one-line error, and nothing is written anywhere."""
    data_dir = tmp_path / "telemetry"
    store = data_dir / "store" / "spans"
    store.mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    before = sorted(p for p in tmp_path.rglob("*"))
    sql = statement.format(tmp=tmp_path, store=store)
    with open_catalog(data_dir) as catalog:
        with pytest.raises(SqlError) as caught:
            catalog.query(sql)
        assert "\n" not in str(caught.value) and str(caught.value)
        assert catalog.query("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 0}]  # still there
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_extensions_never_come_from_the_network() -> None:
    """Auto-install and auto-load are off and unsigned extensions stay refused, in both modes."""
    for allow_writes in (False, True):
        with open_catalog(Path("/nonexistent-data-dir"), allow_writes=allow_writes) as catalog:
            settings = catalog.query(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('autoinstall_known_extensions', "
                "'autoload_known_extensions', 'allow_unsigned_extensions', 'allow_community_extensions', "
                "'lock_configuration') ORDER BY name"
            ).to_pylist()
            assert {r["name"]: r["value"] for r in settings} == {
                "allow_community_extensions": "false",
                "allow_unsigned_extensions": "false",
                "autoinstall_known_extensions": "false",
                "autoload_known_extensions": "false",
                "lock_configuration": "true",
            }
            with pytest.raises(SqlError, match="extensions"):
                catalog.query("INSTALL httpfs")


def test_a_corrupt_file_costs_only_its_view(robot_data: Path) -> None:
    """A garbage Parquet part in the store: spans is unavailable (said so), every other view answers;
    a corrupt telemetry.db fails only the query naming a robot view."""
    (robot_data / "store" / "spans" / "date=2026-01-01").mkdir(parents=True, exist_ok=True)
    (robot_data / "store" / "spans" / "date=2026-01-01" / "p-0-0-0.parquet").write_bytes(b"not parquet")
    with open_catalog(robot_data) as catalog:
        assert "spans" in catalog.unavailable
        assert catalog.query("SELECT count(*) AS n FROM robot_dds_commands").to_pylist() == [{"n": 3}]
        with pytest.raises(SqlError, match="spans"):
            catalog.query("SELECT count(*) FROM spans")
    listed = _cli("--data-dir", str(robot_data), "--catalog")
    assert listed.returncode == 0 and any(
        line.startswith("spans ") and "unavailable" in line for line in listed.stdout.splitlines()
    )
    (robot_data / "telemetry.db").write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        (robot_data / f"telemetry.db{suffix}").unlink(missing_ok=True)
    with open_catalog(robot_data) as catalog:
        with pytest.raises(SqlError, match="robot_dds_commands") as caught:
            catalog.query("SELECT * FROM robot_dds_commands")
        assert "\n" not in str(caught.value)
        assert catalog.query(
            "SELECT count(*) AS n FROM logs WHERE event_name = 'robot.dds.command'"
        ).to_pylist() == [{"n": 3}]


def test_allow_writes_runs_ddl_and_copy(tmp_path: Path) -> None:
    """With the explicit flag, DDL and COPY TO run (the flag is the only way)."""
    out = tmp_path / "out.csv"
    with open_catalog(tmp_path, allow_writes=True) as catalog:
        catalog.query(f"CREATE TABLE t AS SELECT 41 + 1 AS x; COPY t TO '{out}'")
        assert catalog.query("SELECT x FROM t").to_pylist() == [{"x": 42}]
    assert out.read_text().splitlines() == ["x", "42"]


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    """A missing view, a type error, a huge and a non-UTF-8-ish query: SqlError, one line."""
    with open_catalog(tmp_path) as catalog:
        for sql in (
            "SELECT * FROM nope",
            "SELECT 'a' + 1",
            "SELECT '" + "x" * 100_000 + "' = 1 AS big",
            "SELECT '\udc80' AS lone",
        ):
            try:
                catalog.query(sql)
            except SqlError as exc:
                assert "\n" not in str(exc) and len(str(exc)) <= 1000
        assert catalog.query("SELECT ?::INT AS x".replace("?", "1")).to_pylist() == [{"x": 1}]


def test_a_row_cap_says_it_truncated(tmp_path: Path) -> None:
    with open_catalog(tmp_path) as catalog:
        capped = catalog.query_limited("SELECT * FROM range(100000)", 10)
        whole = catalog.query_limited("SELECT * FROM range(10)", 10)
        assert catalog.query("SELECT 42 AS x").to_pylist() == [{"x": 42}]  # the cut result let go
    assert capped.table.num_rows == 10 and capped.truncated
    assert whole.table.num_rows == 10 and not whole.truncated


# -- the command --------------------------------------------------------------------------------
def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "OTEL_TELE_POSTGRES_DSN"}
    return subprocess.run(
        [sys.executable, "-m", "otel_tele", "sql", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        input=stdin,
        check=False,
    )


def test_cli_formats_and_exit_codes(robot_data: Path, tmp_path: Path) -> None:
    """table, csv, json, parquet (--output) agree with the Python API; 1 for a bad query, 2 for usage."""
    query = "SELECT joint_id, correlation_id, ts FROM robot_dds_commands ORDER BY joint_id"
    with open_catalog(robot_data) as catalog:
        expected = catalog.query(query)
    data = ("--data-dir", str(robot_data))
    as_json = _cli(*data, "--format", "json", query)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == expected.to_pylist()
    as_csv = _cli(*data, "--format", "csv", query)
    assert (
        as_csv.stdout.splitlines()[0] == '"joint_id","correlation_id","ts"'
        and len(as_csv.stdout.splitlines()) == 4
    )
    out = tmp_path / "r.parquet"
    assert _cli(*data, "--format", "parquet", "--output", str(out), query).returncode == 0
    assert pq.read_table(out).equals(expected)
    table = _cli(*data, "-", stdin=query)
    assert table.returncode == 0 and "correlation_id" in table.stdout.splitlines()[0]
    catalog_json = json.loads(_cli(*data, "--catalog", "--format", "json").stdout)
    assert "robot_dds_commands" in [v["name"] for v in catalog_json["views"]]

    refused = _cli(*data, "DROP VIEW spans")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "read-only" in refused.stderr
    bad = _cli(*data, "SELECT * FROM nope")
    assert bad.returncode == 1 and bad.stderr.startswith("otel-tele sql: ")
    missing = _cli("--data-dir", str(tmp_path / "nowhere"), "SELECT 1")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    for usage in (
        (),
        ("--format", "parquet", "SELECT 1"),
        ("--catalog", "SELECT 1"),
        ("--format", "xml", "SELECT 1"),
    ):
        got = _cli(*data, *usage)
        assert got.returncode == 2, usage
    assert not list(tmp_path.glob(".*tmp"))


def test_readme_lists_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's catalog section is generated from the declarations: regenerate it with
    ``otel-tele sql --catalog --format markdown`` (no OTEL_TELE_POSTGRES_DSN set)."""
    monkeypatch.delenv("OTEL_TELE_POSTGRES_DSN", raising=False)
    with open_catalog(tmp_path) as catalog:
        generated = catalog_markdown(catalog.views(), catalog.unavailable)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- sql-catalog:begin -->\n", 1)[1].split("<!-- sql-catalog:end -->", 1)[0]
    assert section == generated


def test_spans_view_reads_older_schema_versions_and_reads_footers_at_open(tmp_path: Path) -> None:
    """The store's views bind files by column name only when a file of an older schema version is
    there (it about doubles DuckDB's cost per file and query): its rows read back with the columns it
    lacks as null. The footers are read when the catalog opens: its first query reads none."""
    from otel_tele.exporters.store import _parts, schema

    root = tmp_path / "store"
    new = [{"trace_id": "b" * 32, "span_id": "1" * 16, "name": "new", "dropped_events_count": 3}]
    _parts.publish(root, "spans", [pa.Table.from_pylist(new, schema=schema.SCHEMAS["spans"])], fsync=False)
    (spans_view,) = [v for v in schema.sql_views(resolve({"data_dir": tmp_path})) if v.name == "spans"]
    assert spans_view.select is not None and spans_view.prefetch
    current = spans_view.select()
    assert current is not None and "union_by_name" not in current and "hive_partitioning = false" in current
    # A part of schema version 1 (no dropped counts yet), in the first partition DuckDB binds.
    old_schema = pa.schema(
        [f for f in schema.SCHEMAS["spans"] if not f.name.startswith("dropped_")],
        metadata={schema.VERSION_KEY: b"1", schema.SIGNAL_KEY: b"spans"},
    )
    old_dir = root / "spans" / "date=2000-01-01"
    old_dir.mkdir()
    old = [{"trace_id": "a" * 32, "span_id": "2" * 16, "name": "old"}]
    pq.write_table(pa.Table.from_pylist(old, schema=old_schema), old_dir / "c-1-1-1.parquet")
    mixed = spans_view.select()
    assert mixed is not None and "union_by_name = true" in mixed
    with open_catalog(tmp_path) as catalog:
        rows = catalog.query(
            "SELECT trace_id, name, dropped_events_count FROM spans ORDER BY trace_id"
        ).to_pylist()
        assert rows == [
            {"trace_id": "a" * 32, "name": "old", "dropped_events_count": None},
            {"trace_id": "b" * 32, "name": "new", "dropped_events_count": 3},
        ]
        assert catalog.query(f"SELECT name FROM spans WHERE trace_id = '{'b' * 32}'").to_pylist() == [
            {"name": "new"}
        ]
    # Footers read at open (not only the one DuckDB binds the view with): the first query reads no
    # file (where DuckDB's plan says what it read).
    (old_dir / "c-1-1-1.parquet").unlink()
    _parts.publish(root, "spans", [pa.Table.from_pylist(new, schema=schema.SCHEMAS["spans"])], fsync=False)
    explain = "EXPLAIN ANALYZE SELECT count(*) FROM read_parquet('{}')".format(
        schema.dataset_glob(root, "spans")
    )
    if "Data Read" in duckdb.connect().execute(explain).fetchall()[0][1]:
        with open_catalog(tmp_path, allow_writes=True) as catalog:
            plan = "".join(catalog.query("EXPLAIN ANALYZE SELECT count(*) FROM spans").column(1).to_pylist())
            assert "Data Read" not in plan
