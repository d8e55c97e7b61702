"""``otel-tele doctor``: resolved configuration, active sinks, where data goes, what is reachable.

Each destination row: ``signal``, ``exporter``, ``destination``, ``reachable`` (true, false, or null
when there is nothing to probe) and a ``note``. A folder or database file counts as reachable only if
it exists; one that does not exist yet says so (and whether setup() can create it). Unknown exporter
names and rejected environment values are listed as warnings. Then every registered domain, its sinks
and the distribution that registered it (a third-party plug-in included).
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import _components as components
from .. import _overload
from .._registry import domains
from .._settings import Settings, resolve
from ._output import add_format_option, emit, print_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("doctor", help="show configuration, sinks and endpoint reachability")
    add_format_option(parser)
    parser.set_defaults(handler=run)


def tcp_reachable(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def otlp_target(settings: Settings) -> tuple[str, int]:
    default_port = 4317 if settings.otlp_protocol == "grpc" else 4318
    url = urlsplit(settings.otlp_endpoint or f"http://localhost:{default_port}")
    if not url.hostname:  # "host:port" without a scheme
        url = urlsplit(f"http://{settings.otlp_endpoint}")
    return url.hostname or "localhost", url.port or default_port


def _row(
    signal: str, exporter: str, destination: str, reachable: bool | None, note: str = ""
) -> dict[str, Any]:
    return {
        "signal": signal,
        "exporter": exporter,
        "destination": destination,
        "reachable": reachable,
        "note": note,
    }


def _exporter_row(signal: str, name: str, settings: Settings) -> dict[str, Any]:
    if name == "otlp":
        host, port = otlp_target(settings)
        return _row(signal, name, f"{settings.otlp_protocol} {host}:{port}", tcp_reachable(host, port))
    if name == "prometheus" and signal == "metrics":
        host, port = settings.prometheus_host, settings.prometheus_port
        in_use = tcp_reachable(host, port) if port else False
        # setup() binds this port: free is what it needs (in use: another process already serves it).
        note = "port in use: setup() cannot serve /metrics here" if in_use else "port free"
        return _row(signal, name, f"http://{host}:{port}/metrics", not in_use, note)
    if name == "console":
        return _row(signal, name, "stdout", None)
    try:
        components.exporter_entry_point(signal, name)
    except components.ComponentUnavailable as exc:
        return _row(signal, name, "-", False, f"unknown exporter: {exc}")
    return _row(signal, name, name, None, "entry point")


def _local_state(info: dict[str, Any]) -> tuple[bool | None, str]:
    """Reachable and a note for a sink that writes under a local ``folder`` (from its describe())."""
    reachable, note = info.get("reachable"), str(info.get("note", ""))
    if info.get("folder") is None:
        return reachable, note
    folder = Path(info["folder"])
    if folder.is_dir():
        return reachable, note
    if folder.exists():
        return False, f"{folder} is not a folder"
    parent = next((p for p in folder.absolute().parents if p.exists()), None)
    if parent is not None and parent.is_dir() and os.access(parent, os.W_OK):
        return False, f"folder {folder} does not exist yet (created on the first record)"
    return False, f"folder {folder} does not exist and cannot be created"


def destinations(settings: Settings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for signal in ("traces", "metrics", "logs"):
        names, kept_local = components.exporter_names(signal, settings)
        for name in names:
            if name != "none":
                rows.append(_exporter_row(signal, name, settings))
        if kept_local:
            note = "not attached: no OTLP endpoint configured (local first; set OTEL_EXPORTER_OTLP_ENDPOINT)"
            rows.append(_row(signal, "otlp", "-", None, note))
    for name in settings.sinks:
        try:
            sink = components.build_sink(name, settings)
        except components.ComponentUnavailable as exc:
            rows.append(_row("-", f"sink:{name}", "-", False, str(exc)))
            continue
        try:
            info = sink.describe()
        finally:
            components.close_sink(sink)
        reachable, note = _local_state(info)
        rows.append(
            _row(",".join(sorted(sink.signals)), f"sink:{name}", info.get("location", ""), reachable, note)
        )
    return rows


def warnings(settings: Settings, rows: list[dict[str, Any]]) -> list[str]:
    """Rejected environment values and unknown exporter names."""
    found = list(settings.problems)
    found += [
        f"{row['signal']} exporter {row['exporter']!r} is unknown: it is skipped"
        for row in rows
        if str(row["note"]).startswith("unknown exporter")
    ]
    return found


def overload_policy(settings: Settings) -> list[dict[str, Any]]:
    """The overload policy per domain as this configuration resolves it."""
    chosen = _overload.Overload(settings.overload, max_wait_ms=settings.overload_max_wait_ms)
    return [
        {
            "domain": policy.domain,
            "policy": chosen.modes[policy.domain],
            "max_wait_ms": settings.overload_max_wait_ms if chosen.wait_s(policy.domain) else 0,
            "source": "OTEL_TELE_OVERLOAD" if policy.domain in settings.overload else "default",
        }
        for policy in _overload.policies()
    ]


def registered_domains(settings: Settings) -> list[dict[str, Any]]:
    """Every registered domain (:mod:`otel_tele._registry`): its sinks, which are attached, and the
    distribution that registered it (a third party's plug-in shows up here)."""
    return [
        {
            "domain": domain.name,
            "sinks": ",".join(spec.name for spec in domain.sinks) or "-",
            "attached": ",".join(spec.name for spec in domain.sinks if spec.name in settings.sinks) or "-",
            "distribution": domain.distribution,
            "title": domain.title,
        }
        for domain in domains()
    ]


def run(args: argparse.Namespace) -> int:
    settings = resolve({})
    typed = args.format == "json"
    config = [{"option": n, "value": v, "source": s} for n, v, s in settings.describe(typed=typed)]
    sinks = destinations(settings)
    problems = warnings(settings, sinks)
    policy = overload_policy(settings)
    registered = registered_domains(settings)
    seen = _overload.read_journal(_overload.journal_dir(settings))
    if args.format == "json":
        emit(
            {
                "configuration": config,
                "destinations": sinks,
                "domains": registered,
                "warnings": problems,
                "overload_policy": policy,
                "overloads": seen,
            },
            "json",
        )
        return 0
    print("Configuration (argument > environment > default):")
    print_table(config)
    print("\nWhere telemetry goes:")
    print_table(sinks)
    print("\nDomains (registry; OTEL_TELE_SINKS picks the sinks attached):")
    print_table(registered)
    print("\nOverload policy (a full queue: wait for room, or drop and count):")
    print_table(policy)
    print(f"\nQueue-full seen by processes writing under {_overload.journal_dir(settings)}:")
    if seen:
        print_table(seen)
    else:
        print("none")
    for problem in problems:
        print(f"WARNING: {problem}")
    return 0
