"""Every ``setup()`` option, declared once: argument → environment variable → default.

A bad *argument* raises ``ValueError`` (the caller can fix their code); a bad *environment value* is
logged and replaced by the default (a deployment typo must not take the service down) — except a list
with some unknown names (``OTEL_TELE_SINKS=sqlite,bogus``), which keeps the known ones: falling back
to every default sink would do the opposite of what the operator asked. ``Settings.problems`` keeps
each message for ``otel-tele doctor``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _overload
from ._registry import domains, load, sink_specs

_log = logging.getLogger("otel_tele")

#: Every registered domain's sinks (:mod:`otel_tele._registry`), in the order they are attached.
KNOWN_SINKS: tuple[str, ...] = tuple(sink_specs())
#: The ones attached unless ``OTEL_TELE_SINKS`` says otherwise (each needs no server: ``postgres``
#: falls back to an embedded database without a DSN).
DEFAULT_SINKS: tuple[str, ...] = tuple(name for name, spec in sink_specs().items() if spec.default)
OTLP_PROTOCOLS: tuple[str, ...] = ("grpc", "http/protobuf")


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_names(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))


def _parse_patterns(raw: str) -> tuple[str, ...]:
    """Whitespace-separated regular expressions (each must compile)."""
    patterns = tuple(raw.split())
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return patterns


def _parse_positive_int(raw: str) -> int:
    value = int(raw.strip())
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {raw!r}")
    return value


def _parse_port(raw: str) -> int:
    value = int(raw.strip())
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a TCP port (0-65535), got {raw!r}")
    return value


def _parse_positive_float(raw: str) -> float:
    value = float(raw.strip())
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"expected a positive number, got {raw!r}")
    return value


def _parse_str(raw: str) -> str:
    value = raw.strip()
    if not value or "\x00" in value:
        raise ValueError(f"expected a non-empty string, got {raw!r}")
    return value


def _parse_protocol(raw: str) -> str:
    value = raw.strip().lower()
    if value not in OTLP_PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(OTLP_PROTOCOLS)}, got {raw!r}")
    return value


def _parse_bin_unit(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("minutes", "hours", "days", "weeks"):
        raise ValueError(f"expected minutes, hours, days or weeks, got {raw!r}")
    return value


class PartlyInvalid(ValueError):
    """Some of a list's names are unknown; ``value`` is the list without them."""

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.value = value


def _parse_sinks(raw: str) -> tuple[str, ...]:
    names = _parse_names(raw)
    unknown = [name for name in names if name not in KNOWN_SINKS and name != "none"]
    known = tuple(name for name in names if name in KNOWN_SINKS)
    if unknown:
        raise PartlyInvalid(f"unknown sink(s) {', '.join(unknown)}; known: {', '.join(KNOWN_SINKS)}", known)
    return known


@dataclass(frozen=True)
class Option:
    """One setting: where it comes from and how a raw string becomes a value."""

    name: str
    env: str | None
    parse: Callable[[str], Any]
    default: Any
    doc: str
    secret: bool = False


def _opt(
    name: str, env: str | None, parse: Callable[[str], Any], default: Any, doc: str, **kw: Any
) -> Option:
    return Option(name, env, parse, default, doc, **kw)


OPTIONS: tuple[Option, ...] = (
    _opt("disabled", "OTEL_SDK_DISABLED", _parse_bool, False, "turn every signal into a no-op"),
    _opt("service_name", "OTEL_SERVICE_NAME", _parse_str, None, "resource service.name"),
    _opt("service_version", "OTEL_TELE_SERVICE_VERSION", _parse_str, None, "resource service.version"),
    _opt("traces_exporter", "OTEL_TRACES_EXPORTER", _parse_names, ("otlp",), "span exporters by name"),
    _opt(
        "metrics_exporter",
        "OTEL_METRICS_EXPORTER",
        _parse_names,
        ("otlp", "prometheus"),
        "metric exporters/readers by name",
    ),
    _opt("logs_exporter", "OTEL_LOGS_EXPORTER", _parse_names, ("otlp",), "log record exporters by name"),
    _opt(
        "otlp_endpoint",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        _parse_str,
        None,
        "collector endpoint; without one (nor a signal's own), default exporter lists stay local",
    ),
    _opt(
        "shutdown_timeout_millis",
        "OTEL_TELE_SHUTDOWN_TIMEOUT",
        _parse_positive_int,
        3_000,
        "one total deadline of shutdown(), and of the flush at interpreter exit",
    ),
    _opt("otlp_protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", _parse_protocol, "grpc", "grpc or http/protobuf"),
    _opt(
        "otlp_timeout_millis",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        _parse_positive_int,
        10_000,
        "timeout of one OTLP export",
    ),
    _opt("prometheus_host", "OTEL_EXPORTER_PROMETHEUS_HOST", _parse_str, "127.0.0.1", "/metrics bind host"),
    _opt("prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", _parse_port, 9464, "/metrics port (0: any)"),
    _opt(
        "metric_export_interval_millis",
        "OTEL_METRIC_EXPORT_INTERVAL",
        _parse_positive_int,
        60_000,
        "push interval of periodic metric readers",
    ),
    _opt(
        "metric_export_timeout_millis",
        "OTEL_METRIC_EXPORT_TIMEOUT",
        _parse_positive_int,
        30_000,
        "timeout of one metric export",
    ),
    _opt(
        "bsp_schedule_delay_millis", "OTEL_BSP_SCHEDULE_DELAY", _parse_positive_int, 5_000, "span batch delay"
    ),
    _opt("bsp_max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", _parse_positive_int, 2_048, "span queue bound"),
    _opt(
        "bsp_max_export_batch_size",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        _parse_positive_int,
        512,
        "spans per export",
    ),
    _opt(
        "bsp_export_timeout_millis",
        "OTEL_BSP_EXPORT_TIMEOUT",
        _parse_positive_int,
        30_000,
        "span export timeout",
    ),
    _opt(
        "blrp_schedule_delay_millis",
        "OTEL_BLRP_SCHEDULE_DELAY",
        _parse_positive_int,
        1_000,
        "log batch delay",
    ),
    _opt("blrp_max_queue_size", "OTEL_BLRP_MAX_QUEUE_SIZE", _parse_positive_int, 262_144, "log queue bound"),
    _opt(
        "blrp_max_export_batch_size",
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
        _parse_positive_int,
        2_048,
        "log records per export",
    ),
    _opt(
        "blrp_export_timeout_millis",
        "OTEL_BLRP_EXPORT_TIMEOUT",
        _parse_positive_int,
        30_000,
        "log export timeout",
    ),
    _opt(
        "data_dir",
        "OTEL_TELE_DATA_DIR",
        lambda raw: Path(_parse_str(raw)),
        Path("telemetry"),
        "root folder of the embedded sinks",
    ),
    _opt(
        "capsule_dir",
        "OTEL_TELE_CAPSULE_DIR",
        lambda raw: Path(_parse_str(raw)),
        None,
        "FDA capsule root (default <data_dir>/telematry_cfs)",
    ),
    _opt(
        "capsule_flush_rows",
        "OTEL_TELE_CAPSULE_FLUSH_ROWS",
        _parse_positive_int,
        65_536,
        "a production run's rows reach its journal (durable) at least every this many rows",
    ),
    _opt(
        "capsule_flush_seconds",
        "OTEL_TELE_CAPSULE_FLUSH_SECONDS",
        _parse_positive_float,
        1.0,
        "... or this many seconds after the oldest row not yet durable",
    ),
    _opt(
        "capsule_max_open_runs",
        "OTEL_TELE_CAPSULE_MAX_OPEN_RUNS",
        _parse_positive_int,
        64,
        "production runs the capsule sink keeps open at once; records of further runs are rejected",
    ),
    _opt(
        "store_dir",
        "OTEL_TELE_STORE_DIR",
        lambda raw: Path(_parse_str(raw)),
        None,
        "general store root (default <data_dir>/store)",
    ),
    _opt(
        "store_retention_days",
        "OTEL_TELE_STORE_RETENTION_DAYS",
        _parse_positive_float,
        30.0,
        "days the general store keeps a day's partition (by the day it was written)",
    ),
    _opt(
        "store_flush_rows",
        "OTEL_TELE_STORE_FLUSH_ROWS",
        _parse_positive_int,
        50_000,
        "the general store writes a part (durable) once this many rows of a signal are held",
    ),
    _opt(
        "store_flush_bytes",
        "OTEL_TELE_STORE_FLUSH_BYTES",
        _parse_positive_int,
        32 * 1024 * 1024,
        "... or this many bytes (Arrow, in memory)",
    ),
    _opt(
        "store_flush_seconds",
        "OTEL_TELE_STORE_FLUSH_SECONDS",
        _parse_positive_float,
        2.0,
        "... or this many seconds after the oldest row not yet durable",
    ),
    _opt(
        "store_compact_interval_s",
        "OTEL_TELE_STORE_COMPACT_INTERVAL",
        _parse_positive_float,
        300.0,
        "seconds between the general store's retention and compaction passes",
    ),
    _opt(
        "store_part_bytes",
        "OTEL_TELE_STORE_PART_BYTES",
        _parse_positive_int,
        128 * 1024 * 1024,
        "size a compaction merges small parts into (bytes of Parquet)",
    ),
    _opt("sinks", "OTEL_TELE_SINKS", _parse_sinks, DEFAULT_SINKS, "our sinks to attach"),
    _opt(
        "postgres_dsn",
        "OTEL_TELE_POSTGRES_DSN",
        _parse_str,
        None,
        "PostgreSQL DSN of the inference sink",
        secret=True,
    ),
    _opt(
        "inference_retention_days",
        "OTEL_TELE_INFERENCE_RETENTION_DAYS",
        _parse_positive_int,
        60,
        "days of inference telemetry kept before pruning",
    ),
    _opt(
        "inference_prune_interval_s",
        "OTEL_TELE_INFERENCE_PRUNE_INTERVAL",
        _parse_positive_float,
        3600.0,
        "seconds between the sink's scheduled prunes",
    ),
    _opt(
        "inference_lock_timeout_ms",
        "OTEL_TELE_INFERENCE_LOCK_TIMEOUT",
        _parse_positive_int,
        200,
        "lock_timeout of one prune batch (ms): pruning waits no longer than this for ingest",
    ),
    _opt(
        "inference_alert_table_bytes",
        "OTEL_TELE_INFERENCE_ALERT_TABLE_BYTES",
        _parse_positive_int,
        100_000_000,
        "alert when system_telemetry is larger (bytes)",
    ),
    _opt(
        "inference_alert_rows",
        "OTEL_TELE_INFERENCE_ALERT_ROWS",
        _parse_positive_int,
        1_000_000,
        "alert when system_telemetry has more rows (suggests pruning failure)",
    ),
    _opt(
        "inference_alert_efficiency_drop",
        "OTEL_TELE_INFERENCE_ALERT_EFFICIENCY_DROP",
        _parse_positive_float,
        0.2,
        "alert when a model's last-24-hour ms/token exceeds its 60-day baseline by this fraction",
    ),
    _opt(
        "postgres_pool_max_size",
        "OTEL_TELE_POSTGRES_POOL_MAX_SIZE",
        _parse_positive_int,
        4,
        "connections in the inference store's pool",
    ),
    _opt("capture_bin_size", "OTEL_TELE_CAPTURE_BIN_SIZE", _parse_positive_int, 5, "capture sink bin size"),
    _opt(
        "capture_bin_unit",
        "OTEL_TELE_CAPTURE_BIN_UNIT",
        _parse_bin_unit,
        "minutes",
        "capture sink bin unit: minutes, hours, days or weeks",
    ),
    _opt("capture_bins", "OTEL_TELE_CAPTURE_BINS", _parse_positive_int, 288, "bins per capture window"),
    _opt(
        "capture_key",
        "OTEL_TELE_CAPTURE_KEY",
        _parse_str,
        None,
        "capture bundle name prefix (default: the service name)",
    ),
    _opt("scrub", "OTEL_TELE_SCRUB", _parse_bool, True, "scrub secrets from every signal before export"),
    _opt(
        "scrub_keys",
        "OTEL_TELE_SCRUB_KEYS",
        _parse_names,
        (),
        "more attribute/parameter name stems whose values are redacted",
    ),
    _opt(
        "scrub_allow_keys",
        "OTEL_TELE_SCRUB_ALLOW_KEYS",
        _parse_names,
        (),
        "attribute/parameter names never redacted by name",
    ),
    _opt(
        "scrub_patterns",
        "OTEL_TELE_SCRUB_PATTERNS",
        _parse_patterns,
        (),
        "more value regexes to redact (whitespace-separated)",
    ),
    _opt(
        "overload",
        "OTEL_TELE_OVERLOAD",
        _overload.parse,
        {},
        "per-domain overload policy overrides, e.g. robot=wait (README: Overload)",
    ),
    _opt(
        "overload_max_wait_ms",
        "OTEL_TELE_OVERLOAD_MAX_WAIT",
        _parse_positive_int,
        30_000,
        "longest a recording call of a 'wait' domain waits for queue room before dropping",
    ),
    _opt(
        "metric_cardinality_limit",
        "OTEL_TELE_METRIC_CARDINALITY_LIMIT",
        _parse_positive_int,
        2_000,
        "label sets kept per event-fed metric; more fold into one otel.metric.overflow=true series",
    ),
    _opt(
        "flow_cardinality_limit",
        "OTEL_TELE_FLOW_CARDINALITY_LIMIT",
        _parse_positive_int,
        10_000,
        "node/class series the flow meters keep (the capture grid's rows); more are a bundle warning",
    ),
    _opt(
        "event_queue_size",
        "OTEL_TELE_EVENT_QUEUE_SIZE",
        _parse_positive_int,
        262_144,
        "domain events buffered between caller and telemetry thread",
    ),
)
OPTIONS_BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}


@functools.cache
def domain_options() -> tuple[Option, ...]:
    """The options registered domains declare for their sinks (``Domain.options``), after the core's.

    Read on first use, not at import: a domain's options module may import this one. A module that
    fails to load, a value that is not a tuple of :class:`Option`, or a name already taken is
    logged and left out: a plug-in cannot break the core's settings.
    """
    found: list[Option] = []
    taken = set(OPTIONS_BY_NAME)
    for domain in domains():
        if not domain.options:
            continue
        try:
            options = tuple(load(domain.options))
        except Exception as exc:  # a third-party module may fail in any way
            _log.warning("otel-tele: options of domain %r failed to load: %s", domain.name, exc)
            continue
        for option in options:
            if not isinstance(option, Option) or option.name in taken:
                what = repr(option.name) if isinstance(option, Option) else "a value that is not an Option"
                _log.warning(
                    "otel-tele: domain %r option %s left out (not an Option, or taken)", domain.name, what
                )
                continue
            taken.add(option.name)
            found.append(option)
    return tuple(found)


def all_options() -> tuple[Option, ...]:
    """Every option ``resolve()`` resolves: the core's table, then the registered domains'."""
    return OPTIONS + domain_options()


@dataclass(frozen=True)
class Settings:
    """The resolved configuration; ``sources`` says where each value came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    #: Environment values that were rejected or partly ignored, one message each.
    problems: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def describe(self, *, typed: bool = False) -> list[tuple[str, Any, str]]:
        """(name, value, source) per option, secrets redacted. The value is printable text, or with
        ``typed`` a JSON value of its own type (number, boolean, list of names, null)."""
        rows = []
        for option in all_options():
            if option.name not in self.values:  # Settings built by hand, without the domains' options
                continue
            value = self.values[option.name]
            if option.secret and value:
                shown: Any = redact_dsn(str(value))
            else:
                shown = _typed(value) if typed else _show(value)
            rows.append((option.name, shown, self.sources.get(option.name, "default")))
        return rows


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def _typed(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return str(value) if isinstance(value, Path) else value


#: libpq keys whose values are shown; every other key's value (password, a typo'd ``passwrd``, an
#: unknown option) is replaced by ``***``.
SAFE_DSN_KEYS: frozenset[str] = frozenset(
    {"host", "hostaddr", "port", "dbname", "user", "sslmode", "connect_timeout", "application_name",
     "target_session_attrs"}
)  # fmt: skip
_DSN_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?:(?P<userinfo>[^@/?#]*)@)?(?P<rest>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?(?:#.*)?",
    re.S,
)
_DSN_PAIR = re.compile(r"\s*(?P<k>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<v>'(?:[^'\\]|\\.)*'?|[^\s']*)")


def dsn_parts(dsn: str) -> list[tuple[str, str, bool]]:
    """(key, value, shown) for every part of a libpq DSN (URL or key=value form); unparseable text
    is one part that is not shown."""
    text = dsn.strip()
    url = _DSN_URL.fullmatch(text) if "://" in text else None
    if url is not None:
        parts = [("scheme", url["scheme"], True)]
        userinfo = url["userinfo"]
        if userinfo is not None:
            user, colon, password = userinfo.partition(":")
            parts.append(("user", user, True))
            if colon:
                parts.append(("password", password, False))
        parts.append(("rest", url["rest"], True))
        for pair in (url["query"] or "").split("&"):
            key, _, value = pair.partition("=")
            if pair:
                parts.append(("?" + key, value, key in SAFE_DSN_KEYS))
        return parts
    parts, pos = [], 0
    while pos < len(text):
        match = _DSN_PAIR.match(text, pos)
        if match is None or match.end() == pos:
            return [*parts, ("", text[pos:], False)]
        parts.append((match["k"], match["v"], match["k"] in SAFE_DSN_KEYS))
        pos = match.end()
    return parts


def redact_dsn(dsn: str) -> str:
    """A DSN for display: only host, port, database, user and harmless options are shown; the
    password and every other value (a typo'd ``passwrd=``, an unknown key) become ``***``."""
    parts = dsn_parts(dsn)
    if parts and parts[0][0] == "scheme":
        fields = {k: v for k, v, _shown in parts if not k.startswith("?")}
        out = fields["scheme"]
        if "user" in fields:
            out += fields["user"] + (":***" if "password" in fields else "") + "@"
        out += fields["rest"]
        query = [f"{k[1:]}={v if shown else '***'}" for k, v, shown in parts if k.startswith("?")]
        return out + ("?" + "&".join(query) if query else "")
    return " ".join(f"{k}={v if shown else '***'}" if k else "***" for k, v, shown in parts)


def dsn_secrets(dsn: str) -> list[str]:
    """The DSN's values that are never shown (to be removed from third-party messages we log)."""
    return [
        value.strip("'") for _key, value, shown in dsn_parts(dsn) if not shown and len(value.strip("'")) >= 3
    ]


def _coerce_argument(option: Option, value: Any) -> Any:
    """Validate an explicit argument: same rules as the environment, but raise."""
    if (
        isinstance(value, str | int | float)
        and not isinstance(value, bool)
        and option.parse is not _parse_bool
    ):
        try:
            return option.parse(str(value))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"setup({option.name}=...): {exc}") from None
    if option.parse is _parse_bool and isinstance(value, bool):
        return value
    if option.parse in (_parse_names, _parse_sinks, _parse_patterns) and isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise ValueError(f"setup({option.name}=...): expected a list of names")
        if option.parse is _parse_patterns:
            return _coerce_argument(option, " ".join(value)) if value else ()
        return _coerce_argument(option, ",".join(value))
    if option.parse is _overload.parse and isinstance(value, Mapping):
        return _coerce_argument(option, ",".join(f"{k}={v}" for k, v in value.items()))
    if option.name == "data_dir" and isinstance(value, os.PathLike):
        return Path(value)
    raise ValueError(f"setup({option.name}=...): unsupported value {value!r} of type {type(value).__name__}")


def resolve(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every option from explicit arguments, then ``environ``, then defaults."""
    environ = os.environ if environ is None else environ
    options = all_options()
    unknown = set(arguments) - {option.name for option in options}
    if unknown:
        raise ValueError(f"setup() got unknown option(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: list[str] = []
    for option in options:
        if arguments.get(option.name) is not None:
            values[option.name] = _coerce_argument(option, arguments[option.name])
            sources[option.name] = "argument"
            continue
        raw = environ.get(option.env) if option.env else None
        if raw is not None and raw.strip():
            shown = "***" if option.secret else repr(raw)
            try:
                values[option.name] = option.parse(raw)
                sources[option.name] = option.env or "environment"
                continue
            except PartlyInvalid as exc:
                values[option.name] = exc.value
                sources[option.name] = option.env or "environment"
                problems.append(f"{option.env}={shown}: {exc}; using {_show(exc.value)}")
                _log.error("%s", problems[-1])
                continue
            except (ValueError, TypeError) as exc:
                problems.append(f"ignoring {option.env}={shown} ({exc}); using the default")
                _log.error("%s", problems[-1])
        values[option.name] = option.default
        sources[option.name] = "default"
    return Settings(values, sources, tuple(problems))
