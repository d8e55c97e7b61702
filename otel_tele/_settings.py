"""Every ``setup()`` option, declared once: argument → environment variable → default.

A bad *argument* raises ``ValueError`` (the caller can fix their code); a bad *environment value* is
logged and replaced by the default (a deployment typo must not take the service down) — except a list
with some unknown names (``OTEL_TELE_SINKS=sqlite,bogus``), which keeps the known ones: falling back
to every default sink would do the opposite of what the operator asked. ``Settings.problems`` keeps
each message for ``otel-tele doctor``.

One table, two homes: the core's options are declared here (:data:`OPTIONS`, read as typed
attributes: ``settings.data_dir``); each domain declares its own in its registry entry module
(``otel_tele/domains/<domain>.py``, named by ``Domain.options``), read typed with
``settings.get(THE_OPTION)``. :func:`all_options` is the table :func:`resolve` and ``doctor`` use.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import _overload
from ._options import (
    Option,
    T,
    parse_bool,
    parse_names,
    parse_path,
    parse_port,
    parse_positive_int,
    parse_str,
)
from ._registry import domains, load, sink_specs

_log = logging.getLogger("otel_tele")

#: Every registered domain's sinks (:mod:`otel_tele._registry`), in the order they are attached.
KNOWN_SINKS: tuple[str, ...] = tuple(sink_specs())
#: The ones attached unless ``OTEL_TELE_SINKS`` says otherwise (each needs no server: ``postgres``
#: falls back to an embedded database without a DSN).
DEFAULT_SINKS: tuple[str, ...] = tuple(name for name, spec in sink_specs().items() if spec.default)
OTLP_PROTOCOLS: tuple[str, ...] = ("grpc", "http/protobuf")


def _parse_patterns(raw: str) -> tuple[str, ...]:
    """Whitespace-separated regular expressions (each must compile)."""
    patterns = tuple(raw.split())
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return patterns


def _parse_protocol(raw: str) -> str:
    value = raw.strip().lower()
    if value not in OTLP_PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(OTLP_PROTOCOLS)}, got {raw!r}")
    return value


class PartlyInvalid(ValueError):
    """Some of a list's names are unknown; ``value`` is the list without them."""

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.value = value


def _parse_sinks(raw: str) -> tuple[str, ...]:
    names = parse_names(raw)
    unknown = [name for name in names if name not in KNOWN_SINKS and name != "none"]
    known = tuple(name for name in names if name in KNOWN_SINKS)
    if unknown:
        raise PartlyInvalid(f"unknown sink(s) {', '.join(unknown)}; known: {', '.join(KNOWN_SINKS)}", known)
    return known


DISABLED: Option[bool] = Option(
    "disabled", "OTEL_SDK_DISABLED", parse_bool, False, "turn every signal into a no-op"
)
SERVICE_NAME: Option[str | None] = Option(
    "service_name", "OTEL_SERVICE_NAME", parse_str, None, "resource service.name"
)
SERVICE_VERSION: Option[str | None] = Option(
    "service_version", "OTEL_TELE_SERVICE_VERSION", parse_str, None, "resource service.version"
)
TRACES_EXPORTER: Option[tuple[str, ...]] = Option(
    "traces_exporter", "OTEL_TRACES_EXPORTER", parse_names, ("otlp",), "span exporters by name"
)
METRICS_EXPORTER: Option[tuple[str, ...]] = Option(
    "metrics_exporter",
    "OTEL_METRICS_EXPORTER",
    parse_names,
    ("otlp", "prometheus"),
    "metric exporters/readers by name",
)
LOGS_EXPORTER: Option[tuple[str, ...]] = Option(
    "logs_exporter", "OTEL_LOGS_EXPORTER", parse_names, ("otlp",), "log record exporters by name"
)
OTLP_ENDPOINT: Option[str | None] = Option(
    "otlp_endpoint",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    parse_str,
    None,
    "collector endpoint; without one (nor a signal's own), default exporter lists stay local",
)
SHUTDOWN_TIMEOUT_MILLIS: Option[int] = Option(
    "shutdown_timeout_millis",
    "OTEL_TELE_SHUTDOWN_TIMEOUT",
    parse_positive_int,
    3_000,
    "one total deadline of shutdown(), and of the flush at interpreter exit",
)
OTLP_PROTOCOL: Option[str] = Option(
    "otlp_protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", _parse_protocol, "grpc", "grpc or http/protobuf"
)
OTLP_TIMEOUT_MILLIS: Option[int] = Option(
    "otlp_timeout_millis",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    parse_positive_int,
    10_000,
    "timeout of one OTLP export",
)
PROMETHEUS_HOST: Option[str] = Option(
    "prometheus_host", "OTEL_EXPORTER_PROMETHEUS_HOST", parse_str, "127.0.0.1", "/metrics bind host"
)
PROMETHEUS_PORT: Option[int] = Option(
    "prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", parse_port, 9464, "/metrics port (0: any)"
)
METRIC_EXPORT_INTERVAL_MILLIS: Option[int] = Option(
    "metric_export_interval_millis",
    "OTEL_METRIC_EXPORT_INTERVAL",
    parse_positive_int,
    60_000,
    "push interval of periodic metric readers",
)
METRIC_EXPORT_TIMEOUT_MILLIS: Option[int] = Option(
    "metric_export_timeout_millis",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    parse_positive_int,
    30_000,
    "timeout of one metric export",
)
BSP_SCHEDULE_DELAY_MILLIS: Option[int] = Option(
    "bsp_schedule_delay_millis", "OTEL_BSP_SCHEDULE_DELAY", parse_positive_int, 5_000, "span batch delay"
)
BSP_MAX_QUEUE_SIZE: Option[int] = Option(
    "bsp_max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", parse_positive_int, 2_048, "span queue bound"
)
BSP_MAX_EXPORT_BATCH_SIZE: Option[int] = Option(
    "bsp_max_export_batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", parse_positive_int, 512, "spans per export"
)
BSP_EXPORT_TIMEOUT_MILLIS: Option[int] = Option(
    "bsp_export_timeout_millis", "OTEL_BSP_EXPORT_TIMEOUT", parse_positive_int, 30_000, "span export timeout"
)
BLRP_SCHEDULE_DELAY_MILLIS: Option[int] = Option(
    "blrp_schedule_delay_millis", "OTEL_BLRP_SCHEDULE_DELAY", parse_positive_int, 1_000, "log batch delay"
)
BLRP_MAX_QUEUE_SIZE: Option[int] = Option(
    "blrp_max_queue_size", "OTEL_BLRP_MAX_QUEUE_SIZE", parse_positive_int, 262_144, "log queue bound"
)
BLRP_MAX_EXPORT_BATCH_SIZE: Option[int] = Option(
    "blrp_max_export_batch_size",
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    parse_positive_int,
    2_048,
    "log records per export",
)
BLRP_EXPORT_TIMEOUT_MILLIS: Option[int] = Option(
    "blrp_export_timeout_millis", "OTEL_BLRP_EXPORT_TIMEOUT", parse_positive_int, 30_000, "log export timeout"
)
DATA_DIR: Option[Path] = Option(
    "data_dir", "OTEL_TELE_DATA_DIR", parse_path, Path("telemetry"), "root folder of the embedded sinks"
)
SINKS: Option[tuple[str, ...]] = Option(
    "sinks", "OTEL_TELE_SINKS", _parse_sinks, DEFAULT_SINKS, "our sinks to attach"
)
SCRUB: Option[bool] = Option(
    "scrub", "OTEL_TELE_SCRUB", parse_bool, True, "scrub secrets from every signal before export"
)
SCRUB_KEYS: Option[tuple[str, ...]] = Option(
    "scrub_keys",
    "OTEL_TELE_SCRUB_KEYS",
    parse_names,
    (),
    "more attribute/parameter name stems whose values are redacted",
)
SCRUB_ALLOW_KEYS: Option[tuple[str, ...]] = Option(
    "scrub_allow_keys",
    "OTEL_TELE_SCRUB_ALLOW_KEYS",
    parse_names,
    (),
    "attribute/parameter names never redacted by name",
)
SCRUB_PATTERNS: Option[tuple[str, ...]] = Option(
    "scrub_patterns",
    "OTEL_TELE_SCRUB_PATTERNS",
    _parse_patterns,
    (),
    "more value regexes to redact (whitespace-separated)",
)
OVERLOAD: Option[Mapping[str, str]] = Option(
    "overload",
    "OTEL_TELE_OVERLOAD",
    _overload.parse,
    {},
    "per-domain overload policy overrides, e.g. robot=wait (README: Overload)",
)
OVERLOAD_MAX_WAIT_MS: Option[int] = Option(
    "overload_max_wait_ms",
    "OTEL_TELE_OVERLOAD_MAX_WAIT",
    parse_positive_int,
    30_000,
    "longest a recording call of a 'wait' domain waits for queue room before dropping",
)
METRIC_CARDINALITY_LIMIT: Option[int] = Option(
    "metric_cardinality_limit",
    "OTEL_TELE_METRIC_CARDINALITY_LIMIT",
    parse_positive_int,
    2_000,
    "label sets kept per event-fed metric; more fold into one otel.metric.overflow=true series",
)
EVENT_QUEUE_SIZE: Option[int] = Option(
    "event_queue_size",
    "OTEL_TELE_EVENT_QUEUE_SIZE",
    parse_positive_int,
    262_144,
    "domain events buffered between caller and telemetry thread",
)

#: The core's options, in the order ``doctor`` lists them; each domain declares its own sinks' options
#: in its package (``Domain.options``), joined after these by :func:`all_options`.
OPTIONS: tuple[Option[Any], ...] = (
    DISABLED,
    SERVICE_NAME,
    SERVICE_VERSION,
    TRACES_EXPORTER,
    METRICS_EXPORTER,
    LOGS_EXPORTER,
    OTLP_ENDPOINT,
    SHUTDOWN_TIMEOUT_MILLIS,
    OTLP_PROTOCOL,
    OTLP_TIMEOUT_MILLIS,
    PROMETHEUS_HOST,
    PROMETHEUS_PORT,
    METRIC_EXPORT_INTERVAL_MILLIS,
    METRIC_EXPORT_TIMEOUT_MILLIS,
    BSP_SCHEDULE_DELAY_MILLIS,
    BSP_MAX_QUEUE_SIZE,
    BSP_MAX_EXPORT_BATCH_SIZE,
    BSP_EXPORT_TIMEOUT_MILLIS,
    BLRP_SCHEDULE_DELAY_MILLIS,
    BLRP_MAX_QUEUE_SIZE,
    BLRP_MAX_EXPORT_BATCH_SIZE,
    BLRP_EXPORT_TIMEOUT_MILLIS,
    DATA_DIR,
    SINKS,
    SCRUB,
    SCRUB_KEYS,
    SCRUB_ALLOW_KEYS,
    SCRUB_PATTERNS,
    OVERLOAD,
    OVERLOAD_MAX_WAIT_MS,
    METRIC_CARDINALITY_LIMIT,
    EVENT_QUEUE_SIZE,
)
OPTIONS_BY_NAME: Mapping[str, Option[Any]] = {option.name: option for option in OPTIONS}


@functools.cache
def domain_options() -> tuple[Option[Any], ...]:
    """The options registered domains declare for their sinks (``Domain.options``), after the core's.

    Read on first use, not at import: a domain's options module may import this one. A module that
    fails to load, a value that is not a tuple of :class:`Option`, or a name already taken is
    logged and left out: a plug-in cannot break the core's settings.
    """
    found: list[Option[Any]] = []
    taken = set(OPTIONS_BY_NAME)
    for domain in domains():
        targets = (domain.options,) if isinstance(domain.options, str) else domain.options or ()
        options: list[Any] = []
        for target in targets:
            try:
                options.extend(load(target))
            except Exception as exc:  # a third-party module may fail in any way
                _log.warning("otel-tele: options of domain %r failed to load: %s", domain.name, exc)
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


def all_options() -> tuple[Option[Any], ...]:
    """Every option ``resolve()`` resolves: the core's table, then the registered domains'."""
    return OPTIONS + domain_options()


@dataclass(frozen=True)
class Settings:
    """The resolved configuration; ``sources`` says where each value came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    #: Environment values that were rejected or partly ignored, one message each.
    problems: tuple[str, ...] = ()

    def get(self, option: Option[T]) -> T:
        """The value of ``option`` (a core option or one a domain declares), typed as declared.

        A ``Settings`` built by hand without the option gives its default.

        Example::

            settings.get(SERVICE_NAME)  # str | None, as settings.service_name
            settings.get(FLUSH_ROWS)  # a domain's Option[int] (its descriptor module declares it): int
        """
        return cast(T, self.values.get(option.name, option.default))

    # -- the core options, typed (a domain's: ``get(ITS_OPTION)``) ----------------------------------
    @property
    def disabled(self) -> bool:
        return self.get(DISABLED)

    @property
    def service_name(self) -> str | None:
        return self.get(SERVICE_NAME)

    @property
    def service_version(self) -> str | None:
        return self.get(SERVICE_VERSION)

    @property
    def traces_exporter(self) -> tuple[str, ...]:
        return self.get(TRACES_EXPORTER)

    @property
    def metrics_exporter(self) -> tuple[str, ...]:
        return self.get(METRICS_EXPORTER)

    @property
    def logs_exporter(self) -> tuple[str, ...]:
        return self.get(LOGS_EXPORTER)

    @property
    def otlp_endpoint(self) -> str | None:
        return self.get(OTLP_ENDPOINT)

    @property
    def shutdown_timeout_millis(self) -> int:
        return self.get(SHUTDOWN_TIMEOUT_MILLIS)

    @property
    def otlp_protocol(self) -> str:
        return self.get(OTLP_PROTOCOL)

    @property
    def otlp_timeout_millis(self) -> int:
        return self.get(OTLP_TIMEOUT_MILLIS)

    @property
    def prometheus_host(self) -> str:
        return self.get(PROMETHEUS_HOST)

    @property
    def prometheus_port(self) -> int:
        return self.get(PROMETHEUS_PORT)

    @property
    def metric_export_interval_millis(self) -> int:
        return self.get(METRIC_EXPORT_INTERVAL_MILLIS)

    @property
    def metric_export_timeout_millis(self) -> int:
        return self.get(METRIC_EXPORT_TIMEOUT_MILLIS)

    @property
    def bsp_schedule_delay_millis(self) -> int:
        return self.get(BSP_SCHEDULE_DELAY_MILLIS)

    @property
    def bsp_max_queue_size(self) -> int:
        return self.get(BSP_MAX_QUEUE_SIZE)

    @property
    def bsp_max_export_batch_size(self) -> int:
        return self.get(BSP_MAX_EXPORT_BATCH_SIZE)

    @property
    def bsp_export_timeout_millis(self) -> int:
        return self.get(BSP_EXPORT_TIMEOUT_MILLIS)

    @property
    def blrp_schedule_delay_millis(self) -> int:
        return self.get(BLRP_SCHEDULE_DELAY_MILLIS)

    @property
    def blrp_max_queue_size(self) -> int:
        return self.get(BLRP_MAX_QUEUE_SIZE)

    @property
    def blrp_max_export_batch_size(self) -> int:
        return self.get(BLRP_MAX_EXPORT_BATCH_SIZE)

    @property
    def blrp_export_timeout_millis(self) -> int:
        return self.get(BLRP_EXPORT_TIMEOUT_MILLIS)

    @property
    def data_dir(self) -> Path:
        return self.get(DATA_DIR)

    @property
    def sinks(self) -> tuple[str, ...]:
        return self.get(SINKS)

    @property
    def scrub(self) -> bool:
        return self.get(SCRUB)

    @property
    def scrub_keys(self) -> tuple[str, ...]:
        return self.get(SCRUB_KEYS)

    @property
    def scrub_allow_keys(self) -> tuple[str, ...]:
        return self.get(SCRUB_ALLOW_KEYS)

    @property
    def scrub_patterns(self) -> tuple[str, ...]:
        return self.get(SCRUB_PATTERNS)

    @property
    def overload(self) -> Mapping[str, str]:
        return self.get(OVERLOAD)

    @property
    def overload_max_wait_ms(self) -> int:
        return self.get(OVERLOAD_MAX_WAIT_MS)

    @property
    def metric_cardinality_limit(self) -> int:
        return self.get(METRIC_CARDINALITY_LIMIT)

    @property
    def event_queue_size(self) -> int:
        return self.get(EVENT_QUEUE_SIZE)

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


def _coerce_argument(option: Option[Any], value: Any) -> Any:
    """Validate an explicit argument: same rules as the environment, but raise."""
    if (
        isinstance(value, str | int | float)
        and not isinstance(value, bool)
        and option.parse is not parse_bool
    ):
        try:
            return option.parse(str(value))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"setup({option.name}=...): {exc}") from None
    if option.parse is parse_bool and isinstance(value, bool):
        return value
    if option.parse in (parse_names, _parse_sinks, _parse_patterns) and isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise ValueError(f"setup({option.name}=...): expected a list of names")
        if option.parse is _parse_patterns:
            return _coerce_argument(option, " ".join(value)) if value else ()
        return _coerce_argument(option, ",".join(value))
    if option.parse is _overload.parse and isinstance(value, Mapping):
        return _coerce_argument(option, ",".join(f"{k}={v}" for k, v in value.items()))
    if option.parse is parse_path and isinstance(value, os.PathLike):
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
        values[option.name], sources[option.name] = _from_environment(option, environ, problems)
    return Settings(values, sources, tuple(problems))


def _from_environment(option: Option[T], environ: Mapping[str, str], problems: list[str]) -> tuple[T, str]:
    """(value, source) of ``option`` from ``environ``, else its default; a bad value is logged and
    its message appended to ``problems``."""
    raw = environ.get(option.env) if option.env else None
    if raw is not None and raw.strip():
        shown = "***" if option.secret else repr(raw)
        try:
            return option.parse(raw), option.env or "environment"
        except PartlyInvalid as exc:
            problems.append(f"{option.env}={shown}: {exc}; using {_show(exc.value)}")
            _log.error("%s", problems[-1])
            return cast(T, exc.value), option.env or "environment"
        except (ValueError, TypeError) as exc:
            problems.append(f"ignoring {option.env}={shown} ({exc}); using the default")
            _log.error("%s", problems[-1])
    return option.default, "default"


def from_environment(option: Option[T], environ: Mapping[str, str] | None = None) -> T:
    """One option from the environment (default: the process's) or its default, as :func:`resolve`
    reads it: for a component built without resolved settings (``SqliteSink(path)``).

    Example::

        from_environment(SHUTDOWN_TIMEOUT_MILLIS)  # OTEL_TELE_SHUTDOWN_TIMEOUT, else 3000
    """
    return _from_environment(option, os.environ if environ is None else environ, [])[0]
