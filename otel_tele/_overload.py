"""What each domain does when telemetry cannot keep up: the overload policy, declared once.

Two bounded queues sit between a recording call and storage: the domain-event queue
(``OTEL_TELE_EVENT_QUEUE_SIZE``) and each sink's batch queue (``OTEL_BLRP_MAX_QUEUE_SIZE``). When one
is full a record either **waits** for room (backpressure on the recording call, at most
``OTEL_TELE_OVERLOAD_MAX_WAIT`` ms, then dropped and counted) or is **dropped** at once and counted.
Which one is the domain's policy (:data:`POLICIES`); ``OTEL_TELE_OVERLOAD`` overrides it per domain,
e.g. ``robot=wait`` for a lossless robot log.

Every drop is counted per domain (``otel_tele.overload.dropped``), every wait timed
(``otel_tele.overload.wait``), reported by a WARNING at most every ``_WARN_EVERY_S`` per domain, and
noted in ``<data_dir>/overload/`` where ``otel-tele doctor`` shows it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_log = logging.getLogger("otel_tele")

WAIT = "wait"
DROP = "drop"
MODES = (WAIT, DROP)
_WARN_EVERY_S = 10.0
_JOURNALS_KEPT = 64  # processes whose overloads doctor can show


@dataclass(frozen=True)
class Policy:
    """One domain's default behaviour when a queue is full, and why."""

    domain: str
    mode: str
    why: str
    #: Few, essential records: they wait their full maximum even where a wait already ran out (a
    #: stuck sink otherwise makes later records of a "wait" domain drop at once until it recovers).
    always_waits: bool = False


#: The policy table (README "Overload" prints it). Domains are event-name prefixes, except that FDA
#: runs are told apart by mode; ``otlp`` is what ``otel-tele serve`` receives.
POLICIES: tuple[Policy, ...] = (
    Policy(
        "fda.production",
        WAIT,
        "spec 000: a production run records every iteration (certification); the solver waits for room",
    ),
    Policy(
        "fda.dev",
        DROP,
        "already sampled (first sample_first calls, then every sample_every-th); more is dropped, counted",
    ),
    Policy("fda.tuner", DROP, "as fda.dev: a tuner trial is sampled and must not slow the search"),
    Policy(
        "fda.events",
        WAIT,
        "run events of every mode (RUN_STARTED, RUN_FINISHED, CERT_PASS …): a few per run, and they "
        "carry its configuration and books",
        always_waits=True,
    ),
    Policy("robot", DROP, "a control loop never blocks; robot=wait makes the log lossless"),
    Policy("inference", DROP, "a request path never blocks on telemetry; inference=wait for lossless"),
    Policy(
        "flow",
        DROP,
        "flow meters aggregate in the metrics SDK and never queue; their bound is the cardinality limit",
    ),
    Policy(
        "otlp",
        WAIT,
        "otel-tele serve holds the sender's request while sinks drain, then reports what it could not "
        "take as an OTLP partial success (rejected records, counted dropped)",
    ),
    Policy("other", DROP, "events of no declared domain"),
)
DEFAULTS: Mapping[str, str] = {policy.domain: policy.mode for policy in POLICIES}
ALWAYS_WAITS: frozenset[str] = frozenset(policy.domain for policy in POLICIES if policy.always_waits)
_FDA_MODE = "fda.mode"
_FDA_RUN_EVENT = "fda.run.event"


def parse(raw: str) -> Mapping[str, str]:
    """``OTEL_TELE_OVERLOAD``: ``domain=wait|drop`` pairs, comma separated."""
    chosen: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        domain, sep, mode = (piece.strip().lower() for piece in part.partition("="))
        if not sep or domain not in DEFAULTS or mode not in MODES:
            raise ValueError(
                f"expected domain=wait|drop pairs with domain one of {', '.join(DEFAULTS)}, got {part!r}"
            )
        chosen[domain] = mode
    return chosen


def domain_of(name: Any, attributes: Any) -> str:
    """The policy domain of an event (``fda.production`` … ``other``); never raises."""
    if type(name) is not str:
        return "other"
    prefix = name.partition(".")[0]
    if prefix == "fda":
        if name == _FDA_RUN_EVENT:
            return "fda.events"
        mode = attributes.get(_FDA_MODE) if isinstance(attributes, Mapping) else None
        known = type(mode) is str and mode in ("production", "dev", "tuner")  # a caller's value: no ==
        return f"fda.{mode}" if known else "fda.production"
    return prefix if prefix in DEFAULTS else "other"


def _record_domain(record: Any) -> str:
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
        self.modes = {**DEFAULTS, **(overrides or {})}
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
        if self.modes.get(domain) != WAIT or (stuck and domain not in ALWAYS_WAITS):
            return 0.0
        return self.max_wait_s

    def wait_for_records(self, records: Iterable[Any], *, stuck: bool = False) -> tuple[float, str]:
        """How long ``records`` (SDK log records) may wait for room: the policy of the first of a
        "wait" domain among them (records queued behind it are kept too), and that domain."""
        for record in records:
            domain = _record_domain(record)
            if self.wait_s(domain, stuck=stuck):
                return self.max_wait_s, domain
        return 0.0, "other"

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
