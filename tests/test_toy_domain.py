"""A fifth domain as a third party would ship it: the registry is the only place to edit.

``tests/toy_domain/`` holds a plug-in distribution, ``toy-tele``: a vocabulary (one event), an
instrumentation helper, a sink writing a SQLite table, a query, a CLI command, settings, and ONE
registry entry (``toy_tele-0.0.dist-info/entry_points.txt``: ``[otel_tele.domains]``). Each test
puts a copy of it on ``PYTHONPATH`` of a subprocess (``importlib.metadata`` finds the dist-info
there; ``domains()`` is read once per process) and checks that every part works end to end — and
that nothing outside that folder (but this test and the docs' walk-through) names it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import otel_tele
from otel_tele import semconv

ROOT = Path(__file__).resolve().parent.parent
TOY = Path(__file__).resolve().parent / "toy_domain"
N = 50

#: What the plug-in imports from otel-tele's plug-in interface: the descriptors (``otel_tele.plugin``:
#: Domain, SinkSpec, OverloadPolicy, Option) and the settings (``otel_tele.settings``: the Settings a
#: sink is built from, and resolve() for a CLI to read the configuration the sink reads). Everything
#: else comes from the public API; no private module.
PLUGIN_API: dict[str, set[str]] = {
    "otel_tele.plugin": {"DROP", "WAIT", "Domain", "OverloadPolicy", "SinkSpec", "Option"},
    "otel_tele.settings": {"Settings", "resolve"},
    "otel_tele.sql": {"SQLITE_READER", "SqliteSource", "SqlView"},
}
PUBLIC_API: dict[str, set[str]] = {
    "otel_tele": set(otel_tele.__all__),
    "otel_tele.semconv": set(semconv.__all__),
}


def _env(pythonpath: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _python(script: str, env: dict[str, str], cwd: Path) -> Any:
    done = _run(["-c", textwrap.dedent(script)], env, cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the plug-in distribution (package + dist-info), as a folder for PYTHONPATH."""
    path = tmp_path_factory.mktemp("site") / "toy"
    shutil.copytree(TOY, path, ignore=shutil.ignore_patterns("__pycache__"))
    return path


RECORD = """
    import json, sys
    import otel_tele
    from otel_tele import semconv
    from toy_tele.instrumentation import ping
    from toy_tele.query import pings, summary

    n = int(sys.argv[1])
    telemetry = otel_tele.setup(service_name="toy-test", data_dir="data", sinks=["toy"])
    for i in range(n):
        ping(i, latency_ms=i / 2, note=f"ping {i}", ok=i % 5 != 0)
    telemetry.events.emit("toy.ping", {"toy.note": "no sequence number"})  # rejected: booked failed
    telemetry.events.emit("elsewhere.event", {"k": 1})  # no toy.ping: booked not_routed
    flushed = telemetry.force_flush()
    books = {f"{s.sink}/{s.signal}": vars(s) | {"reconciles": s.reconciles} for s in telemetry.sink_stats()}
    stored = pings("data/toy.db")
    event = semconv.EVENTS.get("toy.ping")
    print(json.dumps({
        "flushed": flushed,
        "sinks": list(telemetry.sinks),
        "destinations": [list(d) for d in telemetry.destinations],
        "books": books,
        "stored": stored,
        "summary": summary("data/toy.db"),
        "event": None if event is None else {a.key: a.type.value for a in event.attributes},
        "metrics": [m.name for m in semconv.METRICS if m.event == "toy.ping"],
        "shutdown": telemetry.shutdown(),
    }))
"""


@pytest.fixture(scope="module")
def recorded(toy_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One process with the plug-in installed: setup(sinks=[..., "toy"]), N pings, force_flush()."""
    cwd = tmp_path_factory.mktemp("run")
    done = _run(["-c", textwrap.dedent(RECORD), str(N)], _env(toy_path), cwd)
    assert done.returncode == 0, done.stderr
    return cwd, json.loads(done.stdout.strip().splitlines()[-1])


def test_events_of_the_toy_instrumentation_land_in_the_toy_table(
    recorded: tuple[Path, dict[str, Any]],
) -> None:
    _cwd, out = recorded
    assert out["flushed"] is True and out["shutdown"] is True
    assert out["sinks"] == ["toy"]
    assert ["logs", "sink:toy", "data/toy.db"] in out["destinations"]
    assert [row["seq"] for row in out["stored"]] == list(range(N))
    assert out["stored"][3] | {"ts_ns": 0} == {
        "ts_ns": 0,
        "seq": 3,
        "latency_ms": 1.5,
        "note": "ping 3",
        "ok": 1,
        "service": "toy-test",
    }
    assert all(row["ts_ns"] > 0 for row in out["stored"])
    assert out["summary"] == {"pings": N, "failed_pings": N // 5, "mean_latency_ms": (N - 1) / 4}


def test_the_toy_sink_keeps_the_books(recorded: tuple[Path, dict[str, Any]]) -> None:
    """emitted == exported + dropped + failed + queued + pending + not_routed, for the toy sink
    and every other stage of the pipeline."""
    _cwd, out = recorded
    toy = out["books"]["toy/logs"]
    assert (toy["emitted"], toy["exported"], toy["failed"], toy["not_routed"]) == (N + 2, N, 1, 1)
    assert toy["dropped"] == toy["queued"] == toy["pending"] == 0
    assert all(books["reconciles"] for books in out["books"].values()), out["books"]


def test_the_vocabulary_index_holds_the_toy_event(recorded: tuple[Path, dict[str, Any]]) -> None:
    _cwd, out = recorded
    assert out["event"] == {"toy.seq": "int", "toy.latency_ms": "float", "toy.note": "str", "toy.ok": "bool"}
    assert out["metrics"] == ["toy.pings"]


def test_the_toy_cli_command_prints_the_query(recorded: tuple[Path, dict[str, Any]], toy_path: Path) -> None:
    cwd, _out = recorded
    env = _env(toy_path, OTEL_TELE_DATA_DIR="data")
    done = _run(["-m", "otel_tele", "toy", "pings", "--format", "json", "--limit", "3"], env, cwd)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["summary"]["pings"] == N
    assert [row["seq"] for row in answer["pings"]] == [0, 1, 2]
    table = _run(["-m", "otel_tele", "toy", "pings"], env, cwd)
    assert table.returncode == 0, table.stderr
    assert f"{N} pings, {N // 5} not ok" in table.stdout
    assert "seq=49 latency_ms=24.5 ok=1 note=ping 49" in table.stdout


def test_otel_tele_sql_reads_the_toy_table(recorded: tuple[Path, dict[str, Any]], toy_path: Path) -> None:
    """The plug-in's ``Domain.sql_views`` puts its table in the catalog; it joins the core views."""
    cwd, _out = recorded
    env = _env(toy_path, OTEL_TELE_DATA_DIR="data")
    query = (
        "SELECT count(*) AS n, sum(1 - ok) AS failed, (SELECT count(*) FROM spans) AS spans FROM toy_pings"
    )
    done = _run(["-m", "otel_tele", "sql", "--format", "json", query], env, cwd)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": N, "failed": N // 5, "spans": 0}]
    catalog = _run(["-m", "otel_tele", "sql", "--catalog", "--format", "json"], env, cwd)
    views = {v["name"]: v for v in json.loads(catalog.stdout)["views"]}
    assert views["toy_pings"]["domain"] == "toy"
    assert [c["name"] for c in views["toy_pings"]["columns"]] == [
        "ts_ns",
        "seq",
        "latency_ms",
        "note",
        "ok",
        "service",
    ]


def test_help_lists_the_toy_command_only_with_the_plug_in_installed(toy_path: Path, tmp_path: Path) -> None:
    with_toy = _run(["-m", "otel_tele", "--help"], _env(toy_path), tmp_path)
    without = _run(["-m", "otel_tele", "--help"], _env(None), tmp_path)
    assert with_toy.returncode == without.returncode == 0
    assert re.search(r"^\s+toy\s+the toy domain's pings", with_toy.stdout, re.M), with_toy.stdout
    assert not re.search(r"(?<![a-z])toy", without.stdout, re.I)


def test_doctor_lists_the_toy_domain_its_sink_and_its_options(
    recorded: tuple[Path, dict[str, Any]], toy_path: Path
) -> None:
    cwd, _out = recorded
    env = _env(toy_path, OTEL_TELE_SINKS="toy", OTEL_TELE_DATA_DIR="data")
    done = _run(["-m", "otel_tele", "doctor", "--format", "json"], env, cwd)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    config = {row["option"]: (row["value"], row["source"]) for row in report["configuration"]}
    assert config["sinks"] == (["toy"], "OTEL_TELE_SINKS")
    assert config["toy_db_name"] == ("toy.db", "default")
    sink = next(row for row in report["destinations"] if row["exporter"] == "sink:toy")
    assert (sink["signal"], sink["destination"], sink["reachable"]) == ("logs", "data/toy.db", True)
    toy = next(row for row in report["domains"] if row["domain"] == "toy")
    assert (toy["sinks"], toy["attached"], toy["distribution"]) == ("toy", "toy", "toy-tele")
    assert report["warnings"] == []
    human = _run(["-m", "otel_tele", "doctor"], env, cwd)
    assert human.returncode == 0 and "sink:toy" in human.stdout and "toy-tele" in human.stdout


def test_the_toy_sink_options_resolve_like_the_core_ones(toy_path: Path, tmp_path: Path) -> None:
    """``Domain.options`` joins the option table: argument > environment > default; a bad argument
    raises, a bad environment value is reported and defaulted."""
    out = _python(
        """
        import json
        import otel_tele
        from otel_tele._settings import resolve
        from toy_tele.exporter.options import TOY_DB_NAME
        from toy_tele.instrumentation import ping
        from toy_tele.query import summary

        try:
            otel_tele.setup(sinks=["toy"], toy_db_name="../outside.db")
            refused = None
        except ValueError as exc:
            refused = str(exc)
        bad_env = resolve({}, {"OTEL_TELE_TOY_DB_NAME": "a/b.db"})
        telemetry = otel_tele.setup(sinks=["toy"], data_dir="data")  # OTEL_TELE_TOY_DB_NAME=pings.db
        ping(7, latency_ms=1.0)
        flushed = telemetry.force_flush()
        print(json.dumps({
            "refused": refused,
            "bad_env": [bad_env.get(TOY_DB_NAME), list(bad_env.problems)],
            "flushed": flushed,
            "summary": summary("data/pings.db"),
            "shutdown": telemetry.shutdown(),
        }))
        """,
        _env(toy_path, OTEL_TELE_TOY_DB_NAME="pings.db"),
        tmp_path,
    )
    assert out["refused"] is not None and "toy_db_name" in out["refused"] and "file name" in out["refused"]
    assert out["bad_env"][0] == "toy.db"
    assert any("OTEL_TELE_TOY_DB_NAME" in problem for problem in out["bad_env"][1])
    assert out["flushed"] and out["shutdown"]
    assert out["summary"]["pings"] == 1
    assert not (tmp_path / "data" / "toy.db").exists()


def test_the_toy_overload_policy_applies(toy_path: Path, tmp_path: Path) -> None:
    """``Domain.overload`` joins the policy table: ``toy.*`` pings drop under overload, failed pings
    (the toy's classifier) wait for room, ``OTEL_TELE_OVERLOAD`` overrides a toy key, and a burst
    through tiny queues keeps every failed ping while the books count every dropped one."""
    out = _python(
        """
        import json
        import otel_tele
        from otel_tele import _overload
        from toy_tele.instrumentation import ping
        from toy_tele.query import pings

        tiny = {"event_queue_size": 64, "blrp_max_queue_size": 64, "blrp_max_export_batch_size": 16}
        telemetry = otel_tele.setup(service_name="toy-test", data_dir="data", sinks=["toy"], **tiny)
        n = 2_000
        for i in range(n):
            ping(i, latency_ms=1.0, ok=i % 5 != 0)
        flushed = telemetry.force_flush()
        stored = pings("data/toy.db")
        snapshot = telemetry.overload.snapshot()
        print(json.dumps({
            "flushed": flushed,
            "policies": {p.domain: p.mode for p in _overload.policies() if p.domain.startswith("toy")},
            "keys": [_overload.domain_of("toy.ping", {"toy.ok": ok}) for ok in (True, False)],
            "stored_ok": sum(1 for row in stored if row["ok"]),
            "stored_failed": sum(1 for row in stored if not row["ok"]),
            "dropped": {key: snapshot[key]["dropped"] for key in ("toy", "toy.failed")},
            "waits": [telemetry.overload.wait_s("toy"), telemetry.overload.wait_s("toy.failed")],
            "override": otel_tele._settings.resolve({"overload": "toy=wait"}).overload,
            "shutdown": telemetry.shutdown(),
        }))
        """,
        _env(toy_path),
        tmp_path,
    )
    assert out["flushed"] and out["shutdown"]
    assert out["policies"] == {"toy": "drop", "toy.failed": "wait"}
    assert out["keys"] == ["toy", "toy.failed"]
    assert out["waits"] == [0, 30.0]
    assert out["stored_failed"] == 400 and out["dropped"]["toy.failed"] == 0
    assert out["stored_ok"] + out["dropped"]["toy"] == 1_600
    assert out["override"] == {"toy": "wait"}


def test_a_broken_plug_in_costs_only_its_own_parts(tmp_path: Path) -> None:
    """A plug-in sink whose dependencies are missing: setup() carries on without it, and the hint
    (log, doctor) names the plug-in's distribution and extra, not otel-tele's. Its options that are
    not Options or take a core name are left out (logged); its good one is resolved. A descriptor
    module that reads the registry while being loaded is skipped with a reason."""
    site = tmp_path / "site"
    (site / "toy_broken-1.0.dist-info").mkdir(parents=True)
    (site / "toy_broken-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: toy-broken\nVersion: 1.0\n"
    )
    (site / "toy_broken-1.0.dist-info" / "entry_points.txt").write_text(
        "[otel_tele.domains]\ntoy_broken = toy_broken:DOMAIN\ntoy_tangled = toy_tangled:DOMAIN\n"
    )
    (site / "toy_broken.py").write_text(
        textwrap.dedent(
            """
            from otel_tele._registry import Domain, SinkSpec

            DOMAIN = Domain(
                name="toy_broken",
                title="broken",
                vocabulary="otel_tele.semconv._types",  # no EVENTS, no METRICS: an empty vocabulary
                sinks=(SinkSpec("brokensink", "toy_broken_missing_dep:Sink", extra="fast"),),
                options="toy_broken_options:OPTIONS",
            )
            """
        )
    )
    (site / "toy_broken_options.py").write_text(
        textwrap.dedent(
            """
            from otel_tele._settings import Option

            OPTIONS = (
                Option("data_dir", "OTEL_TELE_BROKEN_DATA_DIR", str, "hijacked", "takes a core name"),
                "not an option",
                Option("broken_colour", "OTEL_TELE_BROKEN_COLOUR", str.strip, "blue", "resolved"),
            )
            """
        )
    )
    # A descriptor module that imports more than the registry would see a partial one: refused.
    (site / "toy_tangled.py").write_text(
        "from otel_tele._settings import Option\n"
        "from otel_tele._registry import Domain\n"
        "DOMAIN = Domain(name='toy_tangled', title='tangled', vocabulary='otel_tele.semconv._types')\n"
    )
    env = _env(site, OTEL_TELE_SINKS="brokensink", OTEL_TELE_BROKEN_DATA_DIR="/elsewhere")
    done = _run(
        [
            "-c",
            textwrap.dedent(
                """
                import json, logging
                logging.basicConfig(level=logging.WARNING, format="%(message)s")
                import otel_tele
                telemetry = otel_tele.setup(service_name="x", broken_colour=" red ")
                print(json.dumps({
                    "sinks": list(telemetry.sinks),
                    "colour": telemetry.settings.values["broken_colour"],
                    "data_dir": str(telemetry.settings.data_dir),
                    "shutdown": telemetry.shutdown(),
                }))
                """
            ),
        ],
        env,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"sinks": [], "colour": "red", "data_dir": "telemetry", "shutdown": True}
    assert "pip install 'toy-broken[fast]'" in done.stderr
    assert "domain 'toy_broken' option 'data_dir' left out" in done.stderr
    assert "domain 'toy_broken' option a value that is not an Option left out" in done.stderr
    assert "'toy_tangled' failed to load: RegistryReentered" in done.stderr
    assert "may import only otel_tele._registry" in done.stderr
    doctor = _run(["-m", "otel_tele", "doctor", "--format", "json"], env, tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    row = next(r for r in json.loads(doctor.stdout)["destinations"] if r["exporter"] == "sink:brokensink")
    assert row["reachable"] is False
    assert "pip install 'toy-broken[fast]'" in row["note"] and "toy_broken_missing_dep" in row["note"]


# -- the proof: only the plug-in's own folder and its one registry entry ---------------------------
def _otel_tele_imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) of every otel_tele import in ``path`` (name None for ``import module``)."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "otel_tele"]
        elif (
            isinstance(node, ast.ImportFrom)
            and not node.level
            and (node.module or "").startswith("otel_tele")
        ):
            found += [(str(node.module), alias.name) for alias in node.names]
    return found


def test_the_toy_imports_only_the_public_api_and_the_plug_in_interface() -> None:
    allowed = PUBLIC_API | PLUGIN_API
    seen: set[str] = set()
    wrong: list[str] = []
    for path in sorted(TOY.rglob("*.py")):
        for module, name in _otel_tele_imports(path):
            seen.add(module)
            if module not in allowed or (name is not None and name not in allowed[module]):
                wrong.append(f"{path.relative_to(TOY)}: {module}{'' if name is None else ':' + name}")
    assert not wrong, "the toy reaches into otel-tele beyond the plug-in interface:\n" + "\n".join(wrong)
    assert seen == set(allowed)  # and it does use each part (the lists here stay honest)


#: Outside the plug-in's folder, only this test and the docs' walk-through may name it.
NAMING_ALLOWED = ("tests/toy_domain/", "tests/test_toy_domain.py", "docs/architecture.md")


def test_nothing_outside_the_toy_folder_names_it() -> None:
    """The proof that the registry entry is the only edit: no core module, build file, config or
    other test mentions the toy (the word ``toy``: ``destroy`` does not count)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    word = re.compile(rb"(?<![a-z])toy", re.I)
    naming = [
        name
        for name in listed.stdout.splitlines()
        if not name.startswith(NAMING_ALLOWED)
        and (ROOT / name).is_file()
        and word.search((ROOT / name).read_bytes())
    ]
    assert naming == [], f"files outside {NAMING_ALLOWED[0]} naming the toy domain: {naming}"
