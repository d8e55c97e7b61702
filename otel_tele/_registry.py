"""The one registry of domains: each domain is a plug-in named by an entry point.

A domain is declared once, as data (:class:`Domain`), in its own module and registered under the
``otel_tele.domains`` entry-point group. Everything that lists domains — the sinks ``setup()`` can
attach and their options, the CLI's command groups, ``serve``'s HTTP routers, the demo, ``doctor`` —
derives its list from :func:`domains`, so the core names no domain and a new domain (ours or a
third party's distribution) is one folder per layer plus one entry point.

Descriptors hold import strings, not modules: reading the registry imports no domain code, and a
domain whose optional dependencies are missing still shows up (its parts fail to load with a hint
naming the extra).

The public face of this module (and of :mod:`otel_tele._options`) is :mod:`otel_tele.plugin`.

Example::

    from otel_tele.plugin import domains
    [domain.name for domain in domains()]          # ['robot', 'fda', 'inference', 'flow', 'store']
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

_log = logging.getLogger("otel_tele")

#: The entry-point group a distribution registers its domains in.
ENTRY_POINT_GROUP = "otel_tele.domains"


@dataclass(frozen=True)
class SinkSpec:
    """One sink a domain ships: short name (``OTEL_TELE_SINKS``), ``"module:Class"``, the pip extra
    that brings its dependencies, and the exporter entry-point name it registers under."""

    name: str
    target: str
    extra: str = ""
    entry_point: str = ""
    default: bool = True  # attached by setup() unless OTEL_TELE_SINKS says otherwise
    #: "module:function(settings)" -> its retention state (:class:`otel_tele._maintenance.StorageState`),
    #: read by the health page; "" when the sink reports none.
    state: str = ""


#: Overload modes: a record waits for queue room (lossless, bounded by ``OTEL_TELE_OVERLOAD_MAX_WAIT``)
#: or is dropped at once and counted.
WAIT = "wait"
DROP = "drop"


@dataclass(frozen=True)
class OverloadPolicy:
    """What a domain's records do when a queue between the recording call and storage is full.

    ``domain`` is the policy's key: the domain's name, or ``<name>.<part>`` when the domain tells its
    records apart (``fda.production``, ``fda.dev``); ``OTEL_TELE_OVERLOAD=<key>=wait|drop`` overrides
    ``mode``. ``events`` names events that always take this policy; ``always_waits`` marks few,
    essential records that wait their full maximum even after a wait for the same queue ran out.

    Example::

        OverloadPolicy("robot", DROP, "a control loop never blocks; robot=wait makes the log lossless")
    """

    domain: str
    mode: str
    why: str
    events: tuple[str, ...] = ()
    always_waits: bool = False


@dataclass(frozen=True)
class Domain:
    """A domain's parts across the layers, as import strings (``"module"`` or ``"module:attr"``).

    ``order`` sorts domains wherever they are listed (help text, routers, demo). Every part but the
    name and vocabulary is optional.
    """

    name: str
    title: str
    vocabulary: str  # module declaring EVENTS / METRICS
    order: int = 100
    sinks: tuple[SinkSpec, ...] = ()
    #: "module:attr" -> tuple of setting Options (:class:`otel_tele._options.Option`) the domain's
    #: sinks and instrumentation read; ours declare them in the descriptor module itself.
    options: str | None = None
    cli: str | None = None  # module with register(subparsers)
    router: str | None = None  # "module:factory" returning a FastAPI APIRouter
    demo: str | None = None  # module with the demo's run(data_dir) step
    reader: str | None = None  # "module:factory(telemetry)": the query API its instrumentation reads
    dashboard: str | None = None  # "module:factory" -> the domain's dashboard Page (factory(settings))
    views: str | None = (
        None  # "module:factory" -> the SDK metric Views its instruments need (factory(settings))
    )
    #: "module:factory" -> the domain's views in the SQL catalog (``otel-tele sql``): factory(settings)
    #: returns a sequence of :class:`otel_tele._sql_view.SqlView`.
    sql_views: str | None = None
    instrumentation: tuple[str, ...] = field(default=())  # public instrumentation modules
    #: What the domain's events (named ``<name>.*``) do when a queue is full; the first policy is
    #: the default of every such event. None declared: the core's default (drop and count).
    overload: tuple[OverloadPolicy, ...] = ()
    #: ``"module:function"``: ``function(event_name, attributes) -> policy key | None`` picks one of
    #: ``overload`` per event (None: the first). It runs on the recording thread: cheap, never
    #: raising, and comparing a caller's value only after checking that it is a ``str``.
    overload_classifier: str | None = None
    #: The distribution that registered the domain (filled in by :func:`domains`): install hints
    #: name it, so a third party's sink says ``pip install 'their-dist[extra]'``, not ours.
    distribution: str = ""


class RegistryReentered(RuntimeError):
    """A domain's entry-point module read the registry while the registry was loading it."""


_lock = threading.RLock()
_found: tuple[Domain, ...] | None = None
_reading = False


def domains() -> tuple[Domain, ...]:
    """Every registered domain, in ``order`` (read from the entry points once per process).

    A broken registration (an entry point that fails to load or is not a :class:`Domain`) is
    logged and skipped: one bad plug-in must not take the others down. A descriptor module imports
    only :mod:`otel_tele.plugin` (this module and :mod:`otel_tele._options`; the rest are import
    strings): one that imports
    otel-tele modules reading the registry (``otel_tele._settings`` …) would see a partial registry,
    so it is refused instead.
    """
    global _found, _reading
    if _found is not None:
        return _found
    with _lock:
        if _found is not None:
            return _found
        if _reading:
            raise RegistryReentered(
                "the registry was read while loading a domain's descriptor: a descriptor module may "
                "import only otel_tele._registry, otel_tele._options or otel_tele.plugin (the public "
                "plug-in interface over both) and name its parts by import strings"
            )
        _reading = True
        try:
            _found = _read_entry_points()
        finally:
            _reading = False
        return _found


def _read_entry_points() -> tuple[Domain, ...]:
    found: dict[str, Domain] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            domain = ep.load()
        except Exception as exc:  # a third-party plug-in may fail in any way
            _log.warning(
                "otel-tele: domain entry point %r failed to load: %s: %.300s",
                ep.name,
                type(exc).__name__,
                exc,
            )
            continue
        if not isinstance(domain, Domain):
            _log.warning("otel-tele: domain entry point %r is not a Domain; skipped", ep.name)
            continue
        if not domain.distribution and ep.dist is not None:
            domain = dataclasses.replace(domain, distribution=ep.dist.name)
        found.setdefault(domain.name, domain)
    return tuple(sorted(found.values(), key=lambda d: (d.order, d.name)))


def sink_specs() -> dict[str, SinkSpec]:
    """Every registered sink by short name, in domain order."""
    return {spec.name: spec for domain in domains() for spec in domain.sinks}


def domain_of_sink(name: str) -> Domain | None:
    return next((d for d in domains() if any(s.name == name for s in d.sinks)), None)


def load(target: str) -> Any:
    """The object an import string names: ``"module:attr"`` (``"module"``: the module itself).

    Raises ``ImportError`` when the module (or a dependency of it) is missing and ``AttributeError``
    when the module has no such attribute.
    """
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r} (from {target!r})") from None
