"""The plan of the house, checked: the layer contract of tests/layers.toml, no import cycles, and a
core that names no domain (docs/architecture.md explains the rules)."""

from __future__ import annotations

import ast
import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from otel_tele._registry import Domain, domains, load
from otel_tele._settings import all_options
from tests._import_graph import ROOT, Import, cycles, imports, modules

RULES = tomllib.loads((Path(__file__).parent / "layers.toml").read_text(encoding="utf-8"))
MODULES = modules()
EDGES = imports(MODULES)


def layer_of(module: str) -> str:
    for layer, patterns in RULES["layers"].items():
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return str(layer)
    raise AssertionError(f"{module} is in no layer of tests/layers.toml")


def _home(module: str, package: str) -> str | None:
    """The subpackage (or shared module) of ``package`` that ``module`` lives in."""
    if not module.startswith(package + "."):
        return None
    return module[len(package) + 1 :].split(".")[0]


def breaks(edge: Import) -> str | None:
    """Why ``edge`` breaks the contract, or None."""
    source, target = layer_of(edge.importer), layer_of(edge.imported)
    allowed = RULES["allow"][source]
    if source != target and "*" not in allowed and target not in allowed:
        return f"{source} may not import {target}"
    for package in RULES["siblings"]["packages"]:
        mine, theirs = _home(edge.importer, package), _home(edge.imported, package)
        if mine is None or theirs is None or mine == theirs or theirs.startswith("_"):
            continue
        return f"{package}.{mine} may not import its sibling {package}.{theirs}"
    return None


def _exceptions() -> set[tuple[str, str]]:
    return {(entry["importer"], entry["imported"]) for entry in RULES.get("exception", [])}


def test_every_module_has_a_layer() -> None:
    assert {layer_of(module) for module in MODULES} <= set(RULES["layers"]) == set(RULES["allow"])


def test_imports_keep_the_layer_contract() -> None:
    broken = {(e.importer, e.imported): f"{e}: {why}" for e in EDGES if (why := breaks(e))}
    unexpected = [why for pair, why in sorted(broken.items()) if pair not in _exceptions()]
    assert not unexpected, "imports that break tests/layers.toml:\n" + "\n".join(unexpected)


def test_listed_exceptions_are_still_needed() -> None:
    """The exception list only shrinks: an entry that no longer breaks a rule must go."""
    broken = {(e.importer, e.imported) for e in EDGES if breaks(e)}
    stale = sorted(_exceptions() - broken)
    assert not stale, f"remove from tests/layers.toml, no longer needed: {stale}"


def test_no_import_cycles() -> None:
    known = [sorted(entry) for entry in RULES.get("cycles", {}).get("known", [])]
    found = cycles(EDGES)
    assert [c for c in found if c not in known] == [], "import cycles:\n" + "\n".join(
        " <-> ".join(c) for c in found
    )
    assert [c for c in known if c not in found] == [], "remove from [cycles] known in tests/layers.toml"


def test_core_names_no_domain() -> None:
    """The core finds domains through the registry, never by an import path written in its code."""
    named = []
    for module, path in MODULES.items():
        if layer_of(module) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if any(f"otel_tele.{part}." in text for part in ("exporters", "instrumentation", "domains")):
                    named.append(f"{module}:{node.lineno}: {text[:80]!r}")
    assert not named, "core modules naming a domain's module:\n" + "\n".join(named)


def test_core_names_no_domain_event_or_policy() -> None:
    """Nor by its events or policy keys: a core string that is a registered domain's name or starts
    with ``<domain>.`` (``fda.mode``, ``robot.dds.command``, ``fda.production``) is domain knowledge
    in the wrong layer — the overload table, for one, comes from each descriptor (``Domain.overload``)."""
    names = [re.escape(domain.name) for domain in domains()]
    domain_word = re.compile(rf"^(?:{'|'.join(names)})(?:\.\w|$)")
    named = []
    for module, path in MODULES.items():
        if layer_of(module) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and domain_word.match(node.value)
            ):
                named.append(f"{module}:{node.lineno}: {node.value[:80]!r}")
    assert not named, "core modules naming a domain's event, attribute or policy:\n" + "\n".join(named)


#: The specs' public classes (their names are what users know) are façades over parts with one job
#: each (docs/architecture.md): their own bodies stay small, the work lives in the parts.
FACADES = {
    "otel_tele.instrumentation.robot._collector": "TelemetryCollector",
    "otel_tele.robot_query": "TelemetryQuery",
    "otel_tele.instrumentation.inference._logger": "TelemetryLogger",
}
FACADE_MAX_LINES = 120


@pytest.mark.parametrize(("module", "name"), sorted(FACADES.items()))
def test_the_spec_classes_stay_thin_facades(module: str, name: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    lines = (found.end_lineno or found.lineno) - found.lineno + 1
    assert lines <= FACADE_MAX_LINES, f"{name} is {lines} lines: move the work into a part of its own"


def _domain_prefixes(domain: Domain) -> tuple[str, ...]:
    names = (domain.name, *(spec.name for spec in domain.sinks))
    return tuple(f"{name}_" for name in names)


def test_core_option_table_names_no_domain() -> None:
    """Every option is in the one table, and the core's part of it names no domain: a domain's
    options are declared by the domain (``Domain.options``), named after it or one of its sinks."""
    rules = RULES["settings"]
    core = load(rules["core_table"])
    everything = domains()
    prefixes = tuple(p for d in everything for p in _domain_prefixes(d))
    env_prefixes = tuple(rules["domain_prefixes"]) + tuple(f"OTEL_TELE_{p.upper()}" for p in prefixes)
    misplaced = [
        f"{option.name} ({option.env})"
        for option in core
        if option.name.startswith(prefixes) or (option.env or "").startswith(env_prefixes)
    ]
    assert not misplaced, f"domain options in the core table {rules['core_table']}: {misplaced}"
    for domain in everything:
        if not domain.options:
            continue
        declared = load(domain.options)
        assert declared, f"{domain.name}: Domain.options names an empty tuple"
        stray = [o.name for o in declared if not o.name.startswith(_domain_prefixes(domain))]
        assert not stray, f"{domain.name}'s options not named after it or its sinks: {stray}"
        table = {option.name for option in all_options()}
        assert {o.name for o in declared} <= table, f"{domain.name}'s options are not all in the table"


@pytest.mark.parametrize(
    ("importer", "imported", "why"),
    [
        ("otel_tele.instrumentation.x", "otel_tele.exporters.y", "instrumentation may not import exporters"),
        ("otel_tele.runs", "otel_tele.exporters._capsule_x", "query may not import exporters"),
        ("otel_tele.runs", "otel_tele.exporters.capsule.schema", None),
        ("otel_tele._pipeline", "otel_tele.cli", "core may not import app"),
        ("otel_tele.exporters.a.w", "otel_tele.exporters.b.w", "may not import its sibling"),
        ("otel_tele.exporters.a.w", "otel_tele.exporters._shared", None),
    ],
)
def test_the_checker_catches_what_it_should(importer: str, imported: str, why: str | None) -> None:
    found = breaks(Import(importer, imported, 1))
    assert (found is None) if why is None else (found is not None and why in found)


def test_the_graph_reader_resolves_relative_and_lazy_imports(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("from . import a\n")
    (tmp_path / "pkg" / "a.py").write_text("def f():\n    from .sub import b\n")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("from ..a import f\nimport pkg.sub\n")
    found = modules(tmp_path, {"pkg": "pkg"})
    edges = {(e.importer, e.imported) for e in imports(found)}
    assert edges == {
        ("pkg", "pkg.a"),
        ("pkg.a", "pkg.sub.b"),
        ("pkg.sub.b", "pkg.a"),
        ("pkg.sub.b", "pkg.sub"),
    }
    assert cycles(imports(found)) == [["pkg.a", "pkg.sub.b"]]
    assert ROOT.joinpath("setup.py").exists()


def test_the_docs_show_every_home() -> None:
    """README's Layout table and docs/architecture.md name every domain package the code has."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :]
    plan = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for folder in ("exporters", "instrumentation"):
        for package in sorted(p.parent.name for p in (ROOT / folder).glob("*/__init__.py")):
            assert f"`{package}`" in layout, f"README Layout does not name {folder}/{package}/"
            assert f"{folder}/{package}/" in plan, f"docs/architecture.md does not name {folder}/{package}/"
