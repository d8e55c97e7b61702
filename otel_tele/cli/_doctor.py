"""``otel-tele doctor``: resolved configuration, active sinks, where data goes, what is reachable."""

from __future__ import annotations

import argparse
import socket
from typing import Any
from urllib.parse import urlsplit

from .. import _components as components
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


def destinations(settings: Settings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for signal in ("traces", "metrics", "logs"):
        for name in getattr(settings, f"{signal}_exporter"):
            if name == "otlp":
                host, port = otlp_target(settings)
                rows.append(
                    {
                        "signal": signal,
                        "exporter": "otlp",
                        "destination": f"{settings.otlp_protocol} {host}:{port}",
                        "reachable": tcp_reachable(host, port),
                    }
                )
            elif name == "prometheus" and signal == "metrics":
                host, port = settings.prometheus_host, settings.prometheus_port
                in_use = tcp_reachable(host, port) if port else False
                rows.append(
                    {
                        "signal": signal,
                        "exporter": "prometheus",
                        "destination": f"http://{host}:{port}/metrics",
                        "reachable": "port in use" if in_use else "port free",
                    }
                )
            elif name != "none":
                rows.append({"signal": signal, "exporter": name, "destination": name, "reachable": None})
    for name in settings.sinks:
        try:
            sink = components.build_sink(name, settings)
        except components.ComponentUnavailable as exc:
            rows.append(
                {"signal": "-", "exporter": f"sink:{name}", "destination": str(exc), "reachable": False}
            )
            continue
        try:
            info = sink.describe()
        finally:
            components.close_sink(sink)
        rows.append(
            {
                "signal": ",".join(sorted(sink.signals)),
                "exporter": f"sink:{name}",
                "destination": info.get("location", ""),
                "reachable": info.get("reachable"),
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    settings = resolve({})
    config = [{"option": n, "value": v, "source": s} for n, v, s in settings.describe()]
    sinks = destinations(settings)
    if args.format == "json":
        emit({"configuration": config, "destinations": sinks}, "json")
        return 0
    print("Configuration (argument > environment > default):")
    print_table(config)
    print("\nWhere telemetry goes:")
    print_table(sinks)
    return 0
