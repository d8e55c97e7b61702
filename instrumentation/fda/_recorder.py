"""The run recorder behind :mod:`otel_tele.instrumentation.fda`: ``run()``, ``Run``, run ids."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import otel_tele
from otel_tele._event_buffer import EventBuffer, current_context, holds_none, row_recorder
from otel_tele._internal import PROCESS_TOKEN, fork_safe, guard, safe_str
from otel_tele._setup import on_reset
from otel_tele.semconv import fda as v
from otel_tele.semconv import to_json

__all__ = ["Run", "default_telemetry", "new_run_id", "run"]

_log = logging.getLogger("otel_tele")
_clock = time.perf_counter_ns
_wall_ns = time.time_ns
_ITERATION = v.ITERATION
_RUN_EVENT = v.RUN_EVENT
_ALLOWED = frozenset(v.CALLER_FIELDS | {"lambda_"}) - {"lambda"}
_REQUIRED = v.REQUIRED_CALLER_FIELDS
#: Iterations handed to the event queue at a time (more: the loop holds more rows back; fewer: more
#: hand-overs, each a lock and a few C passes).
_CHUNK = 512

_lock = fork_safe(threading.Lock())
_last_second = ""
_issued: set[str] = set()
_default: otel_tele.Pipeline | None = None


def new_run_id(now: datetime | None = None) -> str:
    """``fda_run_YYYYMMDD_HHMMSS_xxxxxx`` (UTC time, then 6 random hex digits).

    The spec's ``fda_run_YYYYMMDD_HHMMSS`` alone collides when two runs start in the same second —
    routinely so for parallel tuner workers, even forked ones — so a random suffix follows; names still
    sort by start time. Ids issued in this process are never repeated.
    """
    global _last_second
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")
    with _lock:
        if stamp != _last_second:
            _last_second = stamp
            _issued.clear()
        while (run_id := f"fda_run_{stamp}_{secrets.token_hex(3)}") in _issued:
            pass
        _issued.add(run_id)
        return run_id


def default_telemetry() -> otel_tele.Pipeline:
    """The global pipeline, or a private one with only the capsule sink (built once per process)."""
    global _default
    telemetry = otel_tele.get_telemetry()
    if telemetry is not None:
        return telemetry
    with _lock:
        if _default is None or getattr(_default, "_shut", False):
            _default = otel_tele.setup(
                service_name="fda",
                local=True,
                sinks=["capsule"],
                traces_exporter="none",
                metrics_exporter="none",
                logs_exporter="none",
            )
        return _default


class Run:
    """One solver run; get it from :func:`run`. ``iteration()`` is the hot path (a few checks and
    a deque append; see ``EventBuffer``)."""

    def __init__(
        self,
        telemetry: otel_tele.Pipeline,
        flow_name: str,
        *,
        mode: str,
        run_id: str,
        trial_id: str | None,
        strict: bool,
        max_rows: int,
        sample_first: int,
        sample_every: int,
        timeout_s: float | None,
    ) -> None:
        self.telemetry = telemetry
        self.run_id = run_id
        self.flow_name = flow_name
        self.mode = mode
        self.trial_id = trial_id
        self.strict = strict
        self.max_rows = max_rows
        self.sample_first = sample_first
        self.sample_every = sample_every
        self.lint_failures = 0
        self.timed_out = False
        self.ended = False
        self._emit = telemetry.events.emit
        self._start_ns = _clock()
        self._deadline_ns = self._start_ns + int(timeout_s * 1e9) if timeout_s else None
        self._capped = False
        self._production = mode == "production"
        self._lint_seen: set[frozenset[str]] = set()
        self._base = {v.RUN_ID: run_id, v.FLOW_NAME: flow_name, v.MODE: mode}
        if trial_id is not None:
            self._base[v.TRIAL_ID] = trial_id
        # Iterations are appended to a buffer and join the event queue a chunk at a time, each the
        # event ``emit`` would queue (see ``EventBuffer``); their context, the run's span, is set by
        # run() (``_bind_context``).
        self._buffer = EventBuffer(telemetry.events, _ITERATION, self._base, context=current_context())
        # The hot call: a short path for calls before ``fast_calls`` whose field names are the last
        # ones validated (nothing to cap, sample, check or lint), ``_check`` for the others. A row's
        # record time: the wall clock at the start plus the row's monotonic offset.
        self._recorder = row_recorder(
            self._buffer,
            self._check,
            start_ns=self._start_ns,
            origin_ns=_wall_ns(),
            fast_calls=0 if timeout_s else max_rows if mode == "production" else sample_first,
            offset_key="t_wall_ms",
            clock=_clock,
            chunk=_CHUNK,
        )
        self.iteration = self._recorder.record  # type: ignore[method-assign]

    def _bind_context(self, context: Any) -> None:
        """Rows recorded in ``context`` (the run's span) need not carry their own."""
        self._buffer.context = self._recorder.context = context

    @property
    def calls(self) -> int:
        """``iteration()`` calls so far."""
        return self._recorder.calls

    @property
    def recorded(self) -> int:
        """Iterations recorded (handed to telemetry) so far."""
        return self._buffer.appended

    def iteration(self, **fields: Any) -> None:
        """Record one iteration (subject to sampling). Raises ``ValueError`` for unknown field names,
        and in strict mode for a missing core field; otherwise never raises.

        (Each run replaces this method by its row recorder's own call: see ``__init__``.)"""
        self._recorder.record(**fields)

    def _check(self, index: int, fields: dict[str, Any]) -> bool:
        """The checks of a call the short path of ``iteration`` does not take (capped, sampled, new
        field names, a missing value, a deadline): whether to record it (``fields`` made ready)."""
        if self._production:
            if index >= self.max_rows:
                if not self._capped:
                    self._cap()
                return False
        elif index >= self.sample_first and (index - self.sample_first) % self.sample_every:
            return False  # sampled out (the first sample_first calls are always recorded, and checked)
        names = tuple(fields)
        incomplete = False
        if names != self._recorder.valid_names:  # a call site passes the same names in the same order
            keys = fields.keys()
            if not keys <= _ALLOWED:
                raise ValueError(
                    f"fda run {self.run_id}: unknown field(s) {sorted(keys - _ALLOWED)}; "
                    f"known: {sorted(_ALLOWED)}"
                )
            incomplete = not keys >= _REQUIRED
            if not incomplete:
                self._recorder.valid_names, self._recorder.renames = names, "lambda_" in keys
        if incomplete or holds_none(fields):
            self._lint(index, fields)
        if self._deadline_ns is not None and not self.timed_out and _clock() > self._deadline_ns:
            self._timeout()
        if "lambda_" in fields:
            fields["lambda"] = fields.pop("lambda_")
        return True

    def event(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        """Record a run event (``CERT_PASS``, ``LENS_SELECTED`` …) with a JSON-able payload."""
        if not isinstance(name, str) or not name or len(name) > 64 or not name.isprintable():
            raise ValueError(f"fda run {self.run_id}: invalid event name {name!r}")
        self._event(name, payload)

    def attach(
        self,
        name: str,
        source: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        kind: str = "file",
    ) -> None:
        """Store ``source`` (a file path, or bytes up to 1 MiB) with the run as ``name``.

        A production run publishes its artifacts with its folder (listed in ``manifest.toml`` with size
        and sha256); a dev/tuner run keeps them in ``flows/<flow>/artifacts/<run_id>/``. Attaching a
        name again replaces the earlier artifact. Raises ``ValueError`` for an unsafe name, an unknown
        kind, a run that has ended, a path that is not a regular file (symlinks refused) or bytes over
        the limit. The file is read by the capsule sink later (at the latest when the run ends).

        Example::

            with fda.run("deconv_wavelet_v1") as run:
                run.attach("checkpoint_0001.pkl", "/scratch/ckpt.pkl", kind="checkpoint")
                run.attach("qa.log", b"all checks passed\n", kind="qa_log")
        """
        v.check_artifact_name(name)
        if kind not in v.ARTIFACT_KINDS:
            raise ValueError(f"artifact kind must be one of {', '.join(v.ARTIFACT_KINDS)}, got {kind!r}")
        if self.ended:
            raise ValueError(f"fda run {self.run_id} has ended: attach artifacts inside the run")
        attributes: dict[str, Any] = {
            **self._base,
            v.T_WALL_MS: (_clock() - self._start_ns) / 1e6,
            v.ARTIFACT_NAME: name,
            v.ARTIFACT_KIND: kind,
        }
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            if len(data) > v.MAX_INLINE_ARTIFACT_BYTES:
                raise ValueError(
                    f"artifact {name!r}: {len(data)} bytes inline; over {v.MAX_INLINE_ARTIFACT_BYTES} "
                    "bytes, write it to a file and attach the path (it is streamed)"
                )
            attributes[v.ARTIFACT_CONTENT] = base64.b64encode(data).decode("ascii")
            attributes[v.ARTIFACT_SIZE] = len(data)
        else:
            try:
                path = os.path.abspath(os.fspath(source))
            except TypeError:
                path = None
            if not isinstance(path, str):
                raise ValueError(
                    f"artifact {name!r}: the source must be a str path, a path-like or bytes, "
                    f"got {type(source).__name__}"
                )
            try:
                info = os.lstat(path)
            except OSError as exc:
                raise ValueError(f"artifact {name!r}: cannot read {path!r} ({exc.strerror})") from None
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"artifact {name!r}: {path!r} is not a regular file (symlinks are refused)")
            attributes[v.ARTIFACT_SOURCE] = path
            attributes[v.ARTIFACT_SIZE] = info.st_size
            attributes[v.ARTIFACT_ORIGIN] = PROCESS_TOKEN
        self._buffer.hand_over()  # the iterations recorded before it go first
        self._emit(v.ARTIFACT, attributes)

    def config(self, mapping: Mapping[str, Any], *, name: str = "config.json") -> None:
        """Snapshot the run's configuration as JSON beside the manifest (an artifact of kind ``config``).

        Example::

            run.config({"lambda": 0.1, "lens": "db4", "levels": 5})
        """
        if not isinstance(mapping, Mapping):
            raise ValueError("config must be a mapping")
        text = json.dumps(json.loads(to_json(dict(mapping))), indent=2, sort_keys=True, ensure_ascii=False)
        self.attach(name, text.encode("utf-8") + b"\n", kind="config")

    # -- internals --------------------------------------------------------------------------------
    def _event(self, name: str, payload: Mapping[str, Any] | None) -> None:
        attributes: dict[str, Any] = {
            **self._base,
            v.EVENT: name,
            v.T_WALL_MS: (_clock() - self._start_ns) / 1e6,
        }
        if payload is not None:
            try:
                # A plain JSON-able copy: the caller may mutate its payload once we return.
                attributes[v.PAYLOAD] = json.loads(to_json(payload))
            except Exception as exc:  # nested too deep, a hostile repr …: this event fails alone
                self.telemetry.events.reject("fda run event", exc)
                return
        self._buffer.hand_over()  # the iterations recorded before it go first
        self._emit(_RUN_EVENT, attributes)

    def _lint(self, index: int, fields: Mapping[str, Any]) -> None:
        problem = frozenset(key for key in _REQUIRED if fields.get(key) is None)
        if not problem:
            return
        if self.strict:
            raise ValueError(f"fda run {self.run_id}: core field(s) missing: {sorted(problem)}")
        self.lint_failures += 1
        if problem in self._lint_seen:
            return
        self._lint_seen.add(problem)
        _log.warning(
            "fda run %s: iteration call %d lacks core field(s) %s", self.run_id, index, sorted(problem)
        )
        self._event(v.SPEC_LINT_FAIL, {"call": index, "iter": fields.get("iter"), "missing": sorted(problem)})

    def _cap(self) -> None:
        self._capped = True
        self._event(
            v.ROW_CAP_REACHED,
            {
                "max_rows": self.max_rows,
                "message": "production row cap reached; later iterations not recorded",
            },
        )

    def _timeout(self) -> None:
        self.timed_out = True
        self._event(v.TIMEOUT, {"calls": self.calls})

    def summary(self, status: str) -> dict[str, Any]:
        return {
            "status": status,
            "iterations": self.calls,
            # What this process handed to telemetry; the capsule sink stores ``rows_recorded``
            # (rows in the file) and ``rows_dropped`` beside it, from what it actually wrote.
            "rows_emitted": self.recorded,
            "truncated": self._capped,
            "spec_lint_failures": self.lint_failures,
            "timed_out": self.timed_out,
        }


def _check_options(
    flow_name: str,
    mode: str,
    trial_id: str | None,
    run_id: str | None,
    strict: bool,
    units: Mapping[str, Any] | None,
    method: Mapping[str, Any] | None,
) -> str:
    v.check_name("flow_name", flow_name)
    if mode not in v.MODES:
        raise ValueError(f"mode must be one of {', '.join(v.MODES)}, got {mode!r}")
    if trial_id is not None:
        v.check_name("trial_id", trial_id)
    elif mode == "tuner":
        raise ValueError("tuner runs need a trial_id")
    if run_id is not None and isinstance(run_id, str) and not run_id.startswith("fda_run_"):
        run_id = f"fda_run_{run_id}"
    run_id = v.check_name("run_id", run_id) if run_id is not None else new_run_id()
    for name, value in (("units", units), ("method", method)):
        if value is not None and not isinstance(value, Mapping):
            raise ValueError(f"{name} must be a mapping of field name to description")
        if strict and not all(key in (value or {}) for key in v.CERTIFICATION_FIELDS):
            raise ValueError(f"strict run: {name} must declare {' and '.join(v.CERTIFICATION_FIELDS)}")
    return run_id


@contextlib.contextmanager
def run(
    flow_name: str,
    *,
    mode: str = "production",
    trial_id: str | None = None,
    units: Mapping[str, Any] | None = None,
    method: Mapping[str, Any] | None = None,
    strict: bool = False,
    run_id: str | None = None,
    max_rows: int = 1_000_000,
    sample_first: int = 1000,
    sample_every: int = 10,
    timeout_s: float | None = None,
    retention_days: int | None = None,
    telemetry: otel_tele.Pipeline | None = None,
    flush_timeout_millis: float = 30_000,
) -> Iterator[Run]:
    """Record one solver run; see the module documentation. Names are validated (``ValueError``)
    before anything is emitted.

    Example::

        with fda.run("deconv_wavelet_v1", mode="dev") as r:
            r.iteration(iter=0, phase="RED", E=3.2, grad_norm=1.0, eta_dd=0.4, gamma=0.1, alpha=0.5,
                        phi_residual=0.2, invariant_drift_max=0.0)
    """
    run_id = _check_options(flow_name, mode, trial_id, run_id, strict, units, method)
    if min(max_rows, sample_first, sample_every) < 1:
        raise ValueError("max_rows, sample_first and sample_every must be positive")
    telemetry = telemetry or default_telemetry()
    recorder = Run(
        telemetry,
        flow_name,
        mode=mode,
        run_id=run_id,
        trial_id=trial_id,
        strict=strict,
        max_rows=max_rows,
        sample_first=sample_first,
        sample_every=sample_every,
        timeout_s=timeout_s,
    )
    span = telemetry.tracer("otel_tele.fda").start_span(v.RUN, attributes=dict(recorder._base))
    with trace.use_span(span, end_on_exit=False):
        recorder._bind_context(current_context())
        recorder._event(
            v.RUN_STARTED,
            {
                "mode": mode,
                "trial_id": trial_id,
                "units": dict(units or {}),
                "method": dict(method or {}),
                "max_rows": max_rows,
                "retention_days": retention_days,
                "strict": strict,
                "sampling": {"sample_first": sample_first, "sample_every": sample_every}
                if mode != "production"
                else {"all_up_to_max_rows": max_rows},
            },
        )
        if not strict and not all(
            key in (units or {}) and key in (method or {}) for key in v.CERTIFICATION_FIELDS
        ):
            recorder._event(
                v.SPEC_LINT_FAIL, {"missing": "units/method of phi_residual and invariant_drift_max"}
            )
        try:
            yield recorder
        except KeyboardInterrupt:
            _end(recorder, span, v.CANCELLED, "cancelled", None)
            raise
        except BaseException as exc:
            _end(recorder, span, v.RUN_FINISHED, "failed", exc)
            raise
        else:
            _end(recorder, span, v.RUN_FINISHED, "completed", None)
        finally:
            span.end()
    if flush_timeout_millis > 0:
        with guard("fda run flush"):
            # The capsule sink only: the run's own storage, never OTLP or another sink.
            if not telemetry.flush_sink("capsule", flush_timeout_millis):
                _log.warning("fda run %s: telemetry not flushed within %.0f ms", run_id, flush_timeout_millis)


def _end(recorder: Run, span: Any, event: str, status: str, exc: BaseException | None) -> None:
    """Close the run's records. Never raises: it runs while the caller's own exception propagates."""
    recorder.ended = True
    summary = recorder.summary(status)
    if exc is not None:
        summary["error"] = f"{type(exc).__name__}: {safe_str(exc, 1000)}"[:1000]
        with guard("fda run span exception"):
            try:
                span.record_exception(exc)
            except Exception:  # an exception whose __str__ raises: the span keeps its type
                span.record_exception(RuntimeError(summary["error"]))
    with guard("fda run span"):
        span.set_status(Status(StatusCode.ERROR if status != "completed" else StatusCode.OK))
        span.set_attributes({"fda.iterations": recorder.calls, "fda.rows_emitted": recorder.recorded})
    recorder._event(event, summary)  # hands every iteration over first


def _reset_default() -> None:
    global _default
    with _lock:
        previous, _default = _default, None
    if previous is not None:
        previous.shutdown(5_000)


on_reset(_reset_default)
