"""The examples in the README and in public docstrings run as written."""

from __future__ import annotations

import ast
import importlib
import os
import re
import textwrap
from pathlib import Path

import pytest

from otel_tele import testing

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = (
    "otel_tele",
    "otel_tele._setup",
    "otel_tele._pipeline",
    "otel_tele._events",
    "otel_tele.testing",
    "otel_tele.semconv",
    "otel_tele.plugin",
    "otel_tele.settings",
)


def _run(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "<example>", "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()
    testing.reset()


def readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)


def docstring_blocks() -> list[tuple[str, str]]:
    blocks = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        docs = [module.__doc__ or ""] + [
            getattr(obj, "__doc__", "") or ""
            for obj in vars(module).values()
            if getattr(obj, "__module__", None) == module_name
        ]
        for doc in docs:
            for match in re.finditer(r"Example::\n\n((?:[ \t]+.*\n|\n)+)", doc + "\n"):
                code = textwrap.dedent(match.group(1))
                try:
                    ast.parse(code)
                except SyntaxError:
                    continue  # a shell example
                blocks.append((module_name, code))
    return blocks


def newcomer_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* settings (the suite's conftest sets some), as for someone trying the README; only the
    Prometheus port is a free one, so that parallel runs do not collide on 9464."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")


@pytest.mark.parametrize("code", readme_blocks())
def test_readme_python_examples_run(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block of the README runs with default settings (test functions it defines are
    called)."""
    newcomer_environment(monkeypatch)
    _run(code, tmp_path, monkeypatch)


@pytest.mark.parametrize(("module", "code"), docstring_blocks())
def test_docstring_examples_run(
    module: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Python 'Example::' in a public docstring runs."""
    code = code.replace("...\n", "pass\n")
    _run(code, tmp_path, monkeypatch)
