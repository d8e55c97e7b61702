"""What a record does when telemetry cannot keep up: the overload mechanism; each domain declares
its own policy in its registry descriptor (``Domain.overload``).

Two bounded queues sit between a recording call and storage: the domain-event queue
(``OTEL_TELE_EVENT_QUEUE_SIZE``) and each sink's batch queue (``OTEL_BLRP_MAX_QUEUE_SIZE``). When one
is full a record either **waits** for room (backpressure on the recording call, at most
``OTEL_TELE_OVERLOAD_MAX_WAIT`` ms, then dropped and counted) or is **dropped** at once and counted.
Which one is the policy of the record's domain (:func:`policies`: every domain's
:class:`~otel_tele._registry.OverloadPolicy`, then the core's own); ``OTEL_TELE_OVERLOAD`` overrides
it per policy key, e.g. ``<domain>=wait`` for a lossless log.

An event named ``<domain>.*`` takes its domain's first policy, unless the policy of one of its
``events`` names it or the domain's classifier (``Domain.overload_classifier``) picks another;
everything else is ``other``.

Every drop is counted per policy key (``otel_tele.overload.dropped``), every wait timed
(``otel_tele.overload.wait``), reported by a WARNING at most every ``_WARN_EVERY_S`` per key, and
noted in ``<data_dir>/overload/`` where ``otel-tele doctor`` shows it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._registry import DROP, WAIT, domains, load
from ._registry import OverloadPolicy as Policy

_log = logging.getLogger("otel_tele")

MODES = (WAIT, DROP)
_WARN_EVERY_S = 10.0
_JOURNALS_KEPT = 64  # processes whose overloads doctor can show

#: The key of a record no domain claims.
OTHER = "other"

#: The core's own policies, after every domain's: what ``otel-tele serve`` receives over OTLP, and
#: records of no declared domain.
CORE_POLICIES: tuple[Policy, ...] = (
    Policy(
        "otlp",
        WAIT,
        "otel-tele serve holds the sender's request while sinks drain, then reports what it could not "
        "take as an OTLP partial success (rejected records, counted dropped)",
    ),
    Policy(OTHER, DROP, "events of no declared domain"),
)

Classifier = Callable[[str, Any], Any]


@dataclass(frozen=True)
class _DomainRule:
    """How one domain's events (``<name>.*``) find their policy key."""

    default: str
    keys: frozenset[str]
    classify: Classifier | None


@dataclass(frozen=True)
class _Table:
    policies: tuple[Policy, ...]
    by_event: Mapping[str, str]
    by_prefix: Mapping[str, _DomainRule]


def _declared(domain: Any) -> tuple[Policy, ...]:
    """A domain's well-formed policies; a malformed one (a third party's) is logged and left out."""
    kept: list[Policy] = []
    for policy in domain.overload:
        key = getattr(policy, "domain", None)
        if (
            isinstance(policy, Policy)
            and type(key) is str
            and (key == domain.name or key.startswith(f"{domain.name}."))
            and policy.mode in MODES
        ):
            kept.append(policy)
        else:
            _log.warning(
                "otel-tele: domain %r overload policy %.200r left out: expected an OverloadPolicy keyed "
                "by the domain's name (or <name>.<part>) with mode wait or drop",
                domain.name,
                policy,
            )
    return tuple(kept)


def _classifier(domain: Any) -> Classifier | None:
    if not domain.overload_classifier:
        return None
    try:
        found = load(domain.overload_classifier)
    except Exception as exc:  # a third party's classifier may fail in any way: its default applies
        _log.warning(
            "otel-tele: domain %r overload classifier %r not loaded (%s: %.200s); its first policy applies",
            domain.name,
            domain.overload_classifier,
            type(exc).__name__,
            exc,
        )
        return None
    return found if callable(found) else None


@functools.cache
def _table() -> _Table:
    """Every domain's policies from the registry, then the core's; built once per process (by the
    first pipeline's :class:`Overload`, not on a recording call)."""
    policies: list[Policy] = []
    by_event: dict[str, str] = {}
    by_prefix: dict[str, _DomainRule] = {}
    core = {policy.domain for policy in CORE_POLICIES}
    for domain in domains():
        declared = tuple(p for p in _declared(domain) if p.domain not in core)
        if not declared:
            continue
        policies += declared
        for policy in declared:
            by_event.update(dict.fromkeys(policy.events, policy.domain))
        keys = frozenset(policy.domain for policy in declared)
        by_prefix[domain.name] = _DomainRule(declared[0].domain, keys, _classifier(domain))
    return _Table((*policies, *CORE_POLICIES), by_event, by_prefix)


def policies() -> tuple[Policy, ...]:
    """The policy table (README "Overload" prints it): every domain's, in registry order, then the
    core's ``otlp`` and ``other``."""
    return _table().policies


def defaults() -> Mapping[str, str]:
    """Each policy key's declared mode."""
    return {policy.domain: policy.mode for policy in policies()}


def always_waits() -> frozenset[str]:
    return frozenset(policy.domain for policy in policies() if policy.always_waits)


def __getattr__(name: str) -> Any:
    """``POLICIES``, ``DEFAULTS``, ``ALWAYS_WAITS``: the table as constants, read from the registry
    when first asked for (importing this module reads no entry point)."""
    values = {"POLICIES": policies, "DEFAULTS": defaults, "ALWAYS_WAITS": always_waits}
    if name in values:
        return values[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse(raw: str) -> Mapping[str, str]:
    """``OTEL_TELE_OVERLOAD``: ``key=wait|drop`` pairs, comma separated (keys: :func:`policies`)."""
    known = defaults()
    chosen: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        domain, sep, mode = (piece.strip().lower() for piece in part.partition("="))
        if not sep or domain not in known or mode not in MODES:
            raise ValueError(
                f"expected domain=wait|drop pairs with domain one of {', '.join(known)}, got {part!r}"
            )
        chosen[domain] = mode
    return chosen


def domain_of(name: Any, attributes: Any) -> str:
    """The policy key of an event (a domain's key, ``other``); never raises."""
    if type(name) is not str:
        return OTHER
    table = _table()
    key = table.by_event.get(name)
    if key is not None:
        return key
    rule = table.by_prefix.get(name.partition(".")[0])
    if rule is None:
        return OTHER
    if rule.classify is None:
        return rule.default
    try:
        chosen = rule.classify(name, attributes)
    except Exception:  # a classifier's bug (or a hostile attribute) must not reach the caller
        return rule.default
    return chosen if type(chosen) is str and chosen in rule.keys else rule.default


#: Where a queued domain event's name rides in its attribute dict (``DomainEvents.emit``); such a
#: dict also travels as itself to a sink that takes events as rows (``_event_rows``).
QUEUED_NAME_KEY = "otel_tele.event.queued_name"


def _record_domain(record: Any) -> str:
    if type(record) is dict:  # a queued event dict (see QUEUED_NAME_KEY)
        return domain_of(record.get(QUEUED_NAME_KEY), record)
    if type(record) is tuple and record:  # an event made a sink's row, led by its name (_event_rows)
        return domain_of(record[0], None)
    lr = getattr(record, "log_record", record)
    return domain_of(getattr(lr, "event_name", None), getattr(lr, "attributes", None))


class Overload:
    """The resolved policy of one pipeline and its books: drops and waits per domain."""

    def __init__(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        max_wait_ms: float = 30_000,
        journal_dir: Path | None = None,
        service: str | None = None,
    ) -> None:
        self.modes = {**defaults(), **(overrides or {})}
        self._always_waits = always_waits()
        self.max_wait_s = max_wait_ms / 1000
        self._journal_dir = journal_dir
        self._service = service or "unknown_service"
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()
        self.dropped: dict[str, int] = dict.fromkeys(self.modes, 0)
        self.waited_s: dict[str, float] = dict.fromkeys(self.modes, 0.0)
        self.timeouts: dict[str, int] = dict.fromkeys(self.modes, 0)
        self._reported: dict[str, int] = dict.fromkeys(self.modes, 0)
        self._warned_at: dict[str, float] = {}
        self._journal_at = -_WARN_EVERY_S
        self._dirty = False

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()
        for book in (self.dropped, self.timeouts, self._reported):
            for key in book:
                book[key] = 0
        for key in self.waited_s:
            self.waited_s[key] = 0.0
        self._warned_at.clear()
        self._dirty = False

    # -- policy ------------------------------------------------------------------------------------
    def wait_s(self, domain: str, *, stuck: bool = False) -> float:
        """How long a record of ``domain`` may wait for room (0: drop at once). ``stuck``: a wait
        for this queue already ran out and it has not moved since."""
        if self.modes.get(domain) != WAIT or (stuck and domain not in self._always_waits):
            return 0.0
        return self.max_wait_s

    def wait_for_records(self, records: Iterable[Any], *, stuck: bool = False) -> tuple[float, str]:
        """How long ``records`` (SDK log records) may wait for room: the policy of the first of a
        "wait" domain among them (records queued behind it are kept too), and that domain."""
        for record in records:
            domain = _record_domain(record)
            if self.wait_s(domain, stuck=stuck):
                return self.max_wait_s, domain
        return 0.0, OTHER

    # -- books -------------------------------------------------------------------------------------
    def note_drop(self, domain: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[domain] = self.dropped.get(domain, 0) + count
            self._dirty = True

    def note_drops(self, records: Iterable[Any]) -> None:
        """``note_drop`` for SDK log records, each booked to its own domain."""
        counts: dict[str, int] = {}
        for record in records:
            domain = _record_domain(record)
            counts[domain] = counts.get(domain, 0) + 1
        for domain, count in counts.items():
            self.note_drop(domain, count)

    def note_wait(self, domain: str, seconds: float, *, timed_out: bool) -> None:
        with self._lock:
            self.waited_s[domain] = self.waited_s.get(domain, 0.0) + seconds
            if timed_out:
                self.timeouts[domain] = self.timeouts.get(domain, 0) + 1
            self._dirty = True

    def report(self) -> None:
        """Warn about new drops (at most every ``_WARN_EVERY_S`` per domain) and note them for
        ``doctor``. Called from telemetry threads, never from a recording call."""
        if not self._dirty and not self._report_lock.locked():
            return
        with self._report_lock:  # a concurrent report finishes its warning before this one returns
            self._report()

    def _report(self) -> None:
        if not self._dirty:
            return
        now = time.monotonic()
        warn: list[tuple[str, int, int]] = []
        with self._lock:
            self._dirty = False
            for domain, total in self.dropped.items():
                new = total - self._reported.get(domain, 0)
                if new <= 0:
                    continue
                if now - self._warned_at.get(domain, -_WARN_EVERY_S) < _WARN_EVERY_S:
                    self._dirty = True  # warn about these later
                    continue
                self._warned_at[domain] = now
                self._reported[domain] = total
                warn.append((domain, new, total))
        for domain, new, total in warn:
            _log.warning(
                "overload: %d %s records dropped (queue full, policy %s%s); %d in all",
                new,
                domain,
                self.modes.get(domain, DROP),
                f" after waiting up to {self.max_wait_s:g} s" if self.modes.get(domain) == WAIT else "",
                total,
            )
        if warn or now - self._journal_at >= _WARN_EVERY_S:
            self._journal_at = now
            self._write_journal()
        else:
            self._dirty = True  # noted in the journal later

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                domain: {
                    "policy": self.modes[domain],
                    "dropped": self.dropped.get(domain, 0),
                    "waited_s": round(self.waited_s.get(domain, 0.0), 6),
                    "wait_timeouts": self.timeouts.get(domain, 0),
                }
                for domain in self.modes
            }

    def _write_journal(self) -> None:
        if self._journal_dir is None:
            return
        try:
            self._journal_dir.mkdir(parents=True, exist_ok=True)
            path = self._journal_dir / f"{os.getpid()}.json"
            if not path.exists():
                _keep_newest(self._journal_dir, _JOURNALS_KEPT - 1)
            tmp = path.with_name(f".{path.name}.tmp")
            body = {
                "service": self._service,
                "pid": os.getpid(),
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "domains": {d: s for d, s in self.snapshot().items() if s["dropped"] or s["waited_s"]},
            }
            tmp.write_text(json.dumps(body, indent=1) + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            _log.debug("overload journal not written: %s", exc)


def _keep_newest(journal_dir: Path, count: int) -> None:
    """Bound the journal folder (every process that ever overloaded leaves a file): oldest go first."""
    files = sorted(journal_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[count:]:
        old.unlink(missing_ok=True)


def journal_dir(settings: Any) -> Path:
    """Where a pipeline notes its overloads for ``doctor``: ``<data_dir>/overload/<pid>.json``."""
    return Path(settings.data_dir) / "overload"


def read_journal(journal_dir: Path) -> list[dict[str, Any]]:
    """What ``doctor`` shows: one row per process and domain that dropped or waited."""
    rows: list[dict[str, Any]] = []
    if not journal_dir.is_dir():
        return rows
    for path in sorted(journal_dir.glob("*.json")):
        try:
            body = json.loads(path.read_text())
            for domain, seen in dict(body.get("domains") or {}).items():
                rows.append(
                    {
                        "service": str(body.get("service")),
                        "pid": body.get("pid"),
                        "updated_at": str(body.get("updated_at")),
                        "domain": str(domain),
                        **{k: seen.get(k) for k in ("policy", "dropped", "waited_s", "wait_timeouts")},
                    }
                )
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return rows
