"""``TelemetryCollector``: spec 004's collector API, emitting OTel domain events instead of SQL.

Every typed method builds one attribute dict in the robot vocabulary and hands it to the domain-event
fast path (``telemetry.events.emit``); the telemetry thread turns it into an OTel log record and
updates the robot metrics, and the pipeline's ``sqlite`` sink maps it to its row. The collector names
no sink or query module: standalone, it builds its private pipeline with ``otel_tele.setup(local=True,
sinks="sqlite", ...)`` (the sink picked by name through the registry) and asks the sink to create its
storage at construction, as the spec says; its reads (``get_events`` …) go through the robot domain's
reader (``Domain.reader``, the query layer), loaded by name.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from otel_tele import _registry
from otel_tele._internal import fork_safe, safe_str
from otel_tele._pipeline import Telemetry
from otel_tele._setup import setup
from otel_tele._sink import Sink, close_once
from otel_tele.semconv import robot as r

from ._events import ROUTES, EventType, Route, TelemetryEvent, event_type_of, is_stored, system_route

_make_event = TelemetryEvent.make

_log = logging.getLogger("otel_tele")
DEFAULT_DB_PATH = "data/telemetry.db"
_time_ns = time.time_ns
_mono = time.monotonic
_STATUS_KEYS = (
    ("power_status", r.POWER_STATUS),
    ("enable_status", r.ENABLE_STATUS),
    ("error_status", r.ERROR_STATUS),
    ("recv_status", r.RECV_STATUS),
    ("exec_status", r.EXEC_STATUS),
)
_CAMERA_KEYS = (
    ("actual_fps", r.ACTUAL_FPS),
    ("target_fps", r.TARGET_FPS),
    ("drop_count", r.DROP_COUNT),
    ("motion_score", r.MOTION_SCORE),
    ("connected", r.CONNECTED),
    ("stalled", r.STALLED),
    ("resolution_w", r.RESOLUTION_W),
    ("resolution_h", r.RESOLUTION_H),
)
# Seconds the domain-event thread may hold a record before the batching processor sees it.
_EVENT_HANDOFF_MS = 50
_QUEUE_SIZE = 262_144
#: Events ``emit()`` remembers as emitted. Retention is what costs (measured: maxlen 0 / 100 / 1,000 /
#: 10,000 → emit p50 about 2.48 / 2.47 / 2.74 / 2.77 µs: the payloads stay alive and out of cache);
#: 1,000 keeps ten times get_events' default limit.
DEFAULT_MAXLEN = 1_000


#: The sink the collector's records are stored by, and the window of ``get_stats``' rates.
SINK = "sqlite"
RATE_WINDOW_S = 10.0


#: Opens a reader of what a pipeline stored: ``reader(telemetry)`` → a context manager with
#: ``events``, ``correlated`` and ``stats`` (``otel_tele._robot_legacy.Reader``).
ReaderFactory = Callable[[Telemetry], Any]


def registered_reader(telemetry: Telemetry) -> Any:
    """The reader the robot domain registers (``Domain.reader``): instrumentation names no query
    module, the registry does."""
    target = next((d.reader for d in _registry.domains() if d.name == "robot" and d.reader), None)
    if target is None:
        raise RuntimeError("no reader is registered for the robot domain")
    factory: ReaderFactory = _registry.load(target)
    return factory(telemetry)


def _copy(value: Any) -> Any:
    # The fast path takes the attribute dict over and encodes it later, on the telemetry thread: a
    # shallow copy keeps a caller who reuses its dict from changing what was recorded.
    return dict(value) if type(value) is dict else value


class TelemetryCollector:
    """Robot telemetry collector (spec 004 API, plus the original th3cl4w spellings).

    Standalone, it builds a private OTel pipeline whose SQLite sink writes to ``db_path`` (schema
    created here); a batch is written once ``batch_size`` records are queued or ``flush_interval_s``
    has passed, and ``close()`` flushes. With ``telemetry=`` it emits through that pipeline instead
    (``get_collector()`` does this once ``otel_tele.setup()`` has run).

    ``maxlen`` (the original ring buffer's size) is the live window: the last ``maxlen`` events
    ``emit()`` returned are remembered as emitted, so ``get_events`` gives them back with the caller's
    source and payload (the tables keep only their columns) and ``get_stats`` counts the types that
    are not stored (``WS_SEND``). Older events are answered from the database as stored, through
    ``reader`` (default: the robot domain's registered reader, :func:`registered_reader`).

    Example::

        tc = TelemetryCollector(db_path="data/telemetry.db")
        tc.log_command(seq=1, funcode=1, joint_id=2, target_value=45.0, data={"id": 2, "angle": 45.0})
        tc.enable()
        tc.emit("dds", EventType.STATE_UPDATE, {"detail": "armed"}, tc.new_correlation_id())
        tc.close()
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        batch_size: int = 50,
        flush_interval_s: float = 0.1,
        *,
        telemetry: Telemetry | None = None,
        retention_days: float | None = None,
        maxlen: int = DEFAULT_MAXLEN,
        reader: ReaderFactory | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(maxlen, int) or isinstance(maxlen, bool) or maxlen < 0:
            raise ValueError(f"maxlen must be a non-negative integer, got {maxlen!r}")
        # (event, record time in ns): what emit() returned, and the time its stored row carries.
        self._live: deque[tuple[TelemetryEvent, int]] = deque(maxlen=maxlen)
        if not isinstance(flush_interval_s, int | float) or not 0 < flush_interval_s < math.inf:
            raise ValueError(
                f"flush_interval_s must be a positive number of seconds, got {flush_interval_s!r}"
            )
        self.batch_size = batch_size
        self.flush_interval_s = float(flush_interval_s)
        self._open_reader = reader or registered_reader
        self._retention_days = retention_days
        self._enabled = False
        self._subscribers: tuple[Callable[[dict[str, Any]], Any], ...] = ()
        self._lock = fork_safe(threading.Lock())
        self._sink: Sink | None = None
        self._own_pipeline = telemetry is None
        self.db_path: Path | None = Path(db_path if db_path is not None else DEFAULT_DB_PATH)
        if telemetry is not None:
            self._bind(telemetry)
        else:
            self._open_private()

    # -- pipeline ------------------------------------------------------------------------------
    def _open_private(self) -> None:
        assert self.db_path is not None
        flush_ms = max(1, round(self.flush_interval_s * 1000) - _EVENT_HANDOFF_MS)
        telemetry = setup(
            local=True,
            traces_exporter="none",
            metrics_exporter="none",
            logs_exporter="none",
            sinks=SINK,
            sink_options={SINK: {"db_path": self.db_path, "retention_days": self._retention_days}},
            service_name="robot-telemetry",
            blrp_schedule_delay_millis=flush_ms,
            blrp_max_export_batch_size=self.batch_size,
            bsp_schedule_delay_millis=flush_ms,
            bsp_max_export_batch_size=self.batch_size,
            # The batching queue holds as much as the event queue in front of it, or a burst the event
            # thread absorbed would be dropped one stage later.
            blrp_max_queue_size=_QUEUE_SIZE,
            event_queue_size=_QUEUE_SIZE,
        )
        sink = telemetry.sinks.get(SINK)
        if sink is not None:
            try:
                sink.open()  # the spec: the folder, six tables and indexes exist once the constructor returns
            except Exception as exc:  # a read-only or full disk must not stop the host from starting
                _log.error(
                    "robot telemetry database %s cannot be created (%s); records will be counted as "
                    "failed until it can",
                    safe_str(self.db_path),
                    safe_str(exc),
                )
        self._sink = sink
        self._set_telemetry(telemetry)

    def _bind(self, telemetry: Telemetry) -> None:
        sink = telemetry.sinks.get(SINK)
        self.db_path = Path(sink.location()) if sink is not None else None
        self._set_telemetry(telemetry)

    def _set_telemetry(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._emit_event = telemetry.events.emit
        self._closed = False

    def rebind(self, telemetry: Telemetry) -> None:
        """Emit through ``telemetry`` from now on (closing a private pipeline after flushing it)."""
        with self._lock:
            if telemetry is self.telemetry:
                return
            self._close_pipeline()
            self._own_pipeline = False
            self._bind(telemetry)

    def _close_pipeline(self) -> bool:
        if not self._own_pipeline:
            return self.telemetry.flush_sink(SINK, timeout_millis=10_000)
        ok = self.telemetry.shutdown(timeout_millis=10_000)
        if self._sink is not None:
            if not ok:  # past the deadline: a batch being written still lands before close() returns
                with self._sink.write_lock:
                    pass
            close_once(self._sink)
            self._sink = None
        return ok

    # -- switches ------------------------------------------------------------------------------
    def enable(self) -> None:
        """Turn ``emit()`` on (typed methods always record)."""
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    @staticmethod
    def new_correlation_id() -> str:
        """12 hex characters, as the original."""
        return os.urandom(6).hex()

    # -- emit (legacy event bus) ---------------------------------------------------------------
    def emit(
        self,
        source: str,
        event_type: EventType | str,
        payload: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> TelemetryEvent | None:
        """Record one legacy event, routed to its table (``WS_SEND`` is not stored); ``None`` if disabled."""
        if not self._enabled:
            return None
        try:
            kind = event_type if type(event_type) is EventType else event_type_of(event_type)
            if payload is None:
                payload = {}
            elif type(payload) is not dict:
                payload = dict(payload) if isinstance(payload, Mapping) else {"value": payload}
            if type(source) is not str:
                source = str(source)
            now_ns = _time_ns()
            event = _make_event(_mono() * 1000, now_ns / 1e6, source, kind, payload, correlation_id)
            self._live.append((event, now_ns))
            if self._subscribers:
                self._notify(event)
            route: Route | None = ROUTES.get(kind, system_route)
            if route is not None:
                route(self, source, kind, payload, correlation_id, now_ns)
            return event
        except Exception as exc:
            self._failed("TelemetryCollector.emit", exc)
            return None

    # -- typed methods -------------------------------------------------------------------------
    def log_command(
        self,
        seq: int | None = None,
        funcode: int = 0,
        joint_id: int | None = None,
        target_value: float | None = None,
        data: Any = None,
        correlation_id: str | None = None,
        raw_len: int = 0,
    ) -> None:
        """One published DDS command (→ ``dds_commands``)."""
        try:
            self._log_command(seq, funcode, joint_id, target_value, data, correlation_id, raw_len)
            if self._subscribers:
                self._notify_typed(
                    "dds",
                    EventType.DDS_PUBLISH,
                    {
                        "seq": seq,
                        "funcode": funcode,
                        "joint_id": joint_id,
                        "target_value": target_value,
                        "data": data,
                        "raw_len": raw_len,
                    },
                    correlation_id,
                )
        except Exception as exc:
            self._failed("TelemetryCollector.log_command", exc)

    def _log_command(
        self,
        seq: Any = None,
        funcode: Any = 0,
        joint_id: Any = None,
        target_value: Any = None,
        data: Any = None,
        correlation_id: Any = None,
        raw_len: Any = 0,
        *,
        ts_ns: int | None = None,
    ) -> None:
        self._emit_event(
            r.DDS_COMMAND,
            {
                r.TS_MONO: _mono(),
                r.SEQ: seq,
                r.FUNCODE: funcode,
                r.JOINT_ID: joint_id,
                r.TARGET_VALUE: target_value,
                r.DATA_JSON: _copy(data),
                r.CORRELATION_ID: correlation_id,
                r.RAW_LEN: raw_len,
            },
            timestamp_ns=ts_ns or _time_ns(),
        )

    def log_feedback(
        self,
        seq: int | None = None,
        funcode: int = 0,
        angles: Any = None,
        status: Mapping[str, Any] | None = None,
    ) -> None:
        """One DDS feedback frame: angles (funcode 1) and/or status (funcode 3) (→ ``dds_feedback``).

        ``angles``: ``{"angle0": …, …, "angle6": …}``, ``{0: …}`` or a sequence of up to 7 values.
        """
        try:
            self._log_feedback(seq, funcode, angles, status)
            if self._subscribers:
                self._notify_typed(
                    "dds",
                    EventType.DDS_RECEIVE,
                    {"seq": seq, "funcode": funcode, "angles": angles, "status": status},
                    None,
                )
        except Exception as exc:
            self._failed("TelemetryCollector.log_feedback", exc)

    def _log_feedback(
        self,
        seq: Any = None,
        funcode: Any = 0,
        angles: Any = None,
        status: Any = None,
        *,
        ts_ns: int | None = None,
    ) -> None:
        attributes: dict[str, Any] = {r.TS_MONO: _mono(), r.SEQ: seq, r.FUNCODE: funcode}
        if angles:
            _put_angles(attributes, angles)
        if isinstance(status, Mapping):
            _put_mapped(attributes, status, _STATUS_KEYS, short=True)
        elif status:  # unusable as a status: keep it visible on the log record, not lost
            attributes[r.DATA_JSON] = {"angles": attributes.get(r.DATA_JSON), "status": status}
        self._emit_event(r.DDS_FEEDBACK, attributes, timestamp_ns=ts_ns or _time_ns())

    def log_smoother_tick(self, states: Iterable[Mapping[str, Any]] | None) -> None:
        """The interpolation state of each joint in ``states`` (``joint_id, target, current, sent,
        step_size, dirty``) — one ``smoother_state`` row each."""
        now = _time_ns()
        emit = self._emit_event
        kept = []
        try:
            for state in states or ():
                if not isinstance(state, Mapping):
                    self._failed("TelemetryCollector.log_smoother_tick (a state that is not a mapping)")
                    continue
                kept.append(state)
                emit(
                    r.SMOOTHER_TICK,
                    {
                        r.JOINT_ID: state.get("joint_id"),
                        r.SMOOTHER_TARGET: state.get("target"),
                        r.SMOOTHER_CURRENT: state.get("current"),
                        r.SMOOTHER_SENT: state.get("sent"),
                        r.SMOOTHER_STEP: state.get("step_size"),
                        r.SMOOTHER_DIRTY: state.get("dirty", True),
                    },
                    timestamp_ns=now,
                )
            if self._subscribers and kept:
                self._notify_typed("smoother", EventType.STATE_UPDATE, {"joints": kept}, None)
        except Exception as exc:
            self._failed("TelemetryCollector.log_smoother_tick", exc)

    def log_web_request(
        self,
        endpoint: str = "",
        method: str = "POST",
        params: Any = None,
        response_ms: float | None = None,
        status_code: int | None = None,
        ok: bool | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """One ``/api/`` request (→ ``web_requests``); ``instrument_app`` does this for FastAPI."""
        try:
            self._log_web_request(endpoint, method, params, response_ms, status_code, ok, correlation_id)
            if self._subscribers:
                self._notify_typed(
                    "web",
                    EventType.CMD_SENT,
                    {
                        "endpoint": endpoint,
                        "method": method,
                        "response_ms": response_ms,
                        "status_code": status_code,
                        "ok": ok,
                    },
                    correlation_id,
                )
        except Exception as exc:
            self._failed("TelemetryCollector.log_web_request", exc)

    def _log_web_request(
        self,
        endpoint: Any = "",
        method: Any = "POST",
        params: Any = None,
        response_ms: Any = None,
        status_code: Any = None,
        ok: Any = None,
        correlation_id: Any = None,
        *,
        ts_ns: int | None = None,
    ) -> None:
        if ok is None and isinstance(status_code, int) and not isinstance(status_code, bool):
            ok = status_code < 400
        self._emit_event(
            r.WEB_REQUEST,
            {
                r.ENDPOINT: endpoint,
                r.METHOD: method,
                r.PARAMS_JSON: _copy(params),
                r.RESPONSE_MS: response_ms,
                r.STATUS_CODE: status_code,
                r.OK: ok,
                r.CORRELATION_ID: correlation_id,
            },
            timestamp_ns=ts_ns or _time_ns(),
        )

    def log_camera_health(self, camera_id: str = "", stats: Mapping[str, Any] | None = None) -> None:
        """One camera health snapshot, e.g. ``CameraHealthMonitor.stats`` (→ ``camera_health``)."""
        try:
            self._log_camera_health(camera_id, stats)
            if self._subscribers:
                payload = dict(stats) if isinstance(stats, Mapping) else {"stats": stats} if stats else {}
                self._notify_typed("camera", EventType.CAM_FRAME, {"camera_id": camera_id, **payload}, None)
        except Exception as exc:
            self._failed("TelemetryCollector.log_camera_health", exc)

    def _log_camera_health(self, camera_id: Any = "", stats: Any = None, *, ts_ns: int | None = None) -> None:
        attributes: dict[str, Any] = {r.CAMERA_ID: camera_id}
        if isinstance(stats, Mapping):
            _put_mapped(attributes, stats, _CAMERA_KEYS)
            resolution = stats.get("resolution")
            if isinstance(resolution, list | tuple) and len(resolution) == 2:
                attributes.setdefault(r.RESOLUTION_W, resolution[0])
                attributes.setdefault(r.RESOLUTION_H, resolution[1])
        elif stats is not None:
            attributes[r.DATA_JSON] = stats  # not a snapshot: keep it visible on the log record
        self._emit_event(r.CAMERA_HEALTH, attributes, timestamp_ns=ts_ns or _time_ns())

    def log_system_event(
        self,
        event_type: str,
        source: str = "system",
        detail: str = "",
        data: Any = None,
        correlation_id: str | None = None,
        level: str = "info",
    ) -> None:
        """Power, enable, error, estop, connect … (→ ``system_events``)."""
        try:
            self._system_event(event_type, source, detail, data, correlation_id, level)
            if self._subscribers:
                kind = EventType.ERROR if level == "error" else EventType.STATE_UPDATE
                self._notify_typed(
                    source,
                    kind,
                    {"system_event_type": event_type, "detail": detail, "data": data, "level": level},
                    correlation_id,
                )
        except Exception as exc:
            self._failed("TelemetryCollector.log_system_event", exc)

    def _system_event(
        self,
        event_type: Any,
        source: Any = "system",
        detail: Any = "",
        data: Any = None,
        correlation_id: Any = None,
        level: Any = "info",
        *,
        ts_ns: int | None = None,
    ) -> None:
        self._emit_event(
            r.SYSTEM_EVENT,
            {
                r.SYSTEM_EVENT_TYPE: event_type,
                r.SOURCE: source,
                r.DETAIL: detail,
                r.DATA_JSON: _copy(data),
                r.CORRELATION_ID: correlation_id,
                r.LEVEL: level,
            },
            timestamp_ns=ts_ns or _time_ns(),
        )

    # The original code's spellings.
    log_dds_command = log_command
    log_dds_feedback = log_feedback
    log_smoother_state = log_smoother_tick

    def _failed(self, what: str, exc: BaseException | None = None) -> None:
        """A call that could not record: counted failed and logged (rate-limited), never raised."""
        self.telemetry.events.reject(what, exc)

    # -- live listeners ------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``callback(event_dict)`` for every event from now on (a failing callback is ignored)."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

    def unsubscribe(self, callback: Callable[[dict[str, Any]], Any]) -> None:
        with self._lock:
            self._subscribers = tuple(cb for cb in self._subscribers if cb != callback)

    def _notify_typed(self, source: str, kind: EventType, payload: dict[str, Any], cid: str | None) -> None:
        self._notify(_make_event(_mono() * 1000, time.time() * 1000, source, kind, payload, cid))

    def _notify(self, event: TelemetryEvent) -> None:
        as_dict = event.as_dict()
        for callback in self._subscribers:
            try:
                callback(as_dict)
            except Exception:  # a listener's bug is the listener's; the event is recorded anyway
                _log.debug("telemetry subscriber %r failed", callback, exc_info=True)

    # -- reads (answered from the SQLite store) ------------------------------------------------
    def _reader(self) -> Any:
        if not self._closed:
            # Include what was emitted before the call: this collector's database only, never a
            # collector or another sink (a dead one would cost every read its timeout).
            self.telemetry.flush_sink(SINK, timeout_millis=5_000)
        return self._open_reader(self.telemetry)

    def _live_window(self) -> list[tuple[TelemetryEvent, int]]:
        while True:
            try:
                return list(self._live)
            except RuntimeError:  # appended to while copied: copy again
                continue

    def _emitted(
        self, keep: Callable[[TelemetryEvent], bool]
    ) -> tuple[list[TelemetryEvent], frozenset[tuple[EventType | str, float]]]:
        """Remembered events that ``keep`` selects, and the (event type, ts) keys of every remembered
        event's stored row (so the database answer leaves those rows out)."""
        live = self._live_window()
        keys = frozenset(
            (event.event_type, ts_ns / 1e9) for event, ts_ns in live if is_stored(event.event_type)
        )
        return [event for event, _ in live if keep(event)], keys

    def get_events(
        self, limit: int = 100, event_type: EventType | str | None = None, source: str | None = None
    ) -> list[TelemetryEvent]:
        """The newest ``limit`` events (oldest first), optionally of one type or source: those in the
        live window as emitted, older ones as stored."""
        kind = event_type_of(event_type) if event_type is not None else None
        emitted, keys = self._emitted(
            lambda e: (kind is None or e.event_type == kind) and (source is None or e.source == source)
        )
        with self._reader() as reader:
            stored = [_as_event(row) for row in reader.events(limit, kind, source, skip=keys)]
        limit = max(0, int(limit))
        return sorted(stored + emitted, key=lambda e: e.wall_time_ms)[-limit:] if limit else []

    def get_pipeline(self, correlation_id: str) -> list[dict[str, Any]]:
        """Events sharing ``correlation_id`` in time order, each with ``latency_ms`` to the previous."""
        cid = str(correlation_id)
        emitted, keys = self._emitted(lambda e: e.correlation_id == cid)
        with self._reader() as reader:
            stored = [_as_event(row) for row in reader.correlated(cid, skip=keys)]
        return _pipeline_steps(stored + emitted)

    def get_stats(self) -> dict[str, Any]:
        """``{total_events, rates_per_sec, staleness_ms, avg_pipeline_latency_ms, active_correlations}``;
        event types that are not stored (``WS_SEND``) are counted from the live window."""
        now = time.time()
        with self._reader() as reader:
            stats: dict[str, Any] = reader.stats(now, RATE_WINDOW_S)
        unstored, _ = self._emitted(lambda e: not is_stored(e.event_type))
        _add_unstored(stats, unstored, now)
        return stats

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Records flow from construction; ``start()`` re-opens a collector that was closed."""
        with self._lock:
            if self._closed and self._own_pipeline:
                self._open_private()

    def flush(self, timeout_millis: float = 10_000) -> bool:
        """Write everything recorded so far to this collector's database (not to a collector or other
        sinks of a shared pipeline: ``telemetry.force_flush()`` does that); False if ``timeout_millis``
        passed first."""
        deadline = time.monotonic() + timeout_millis / 1000
        ok = self.telemetry.flush_sink(SINK, timeout_millis=timeout_millis)
        # Twice: DomainEvents.force_flush can miss a batch its thread has just taken off the queue but
        # not yet counted (a core race, reported); by now that count is in, so the second pass sees it.
        remaining_ms = max(0.0, (deadline - time.monotonic()) * 1000)
        return self.telemetry.flush_sink(SINK, timeout_millis=remaining_ms) and ok

    def stop(self) -> None:
        """Flush everything, then close the private pipeline and database (same as :meth:`close`)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_pipeline()

    close = stop

    def __enter__(self) -> TelemetryCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _put_angles(attributes: dict[str, Any], angles: Any) -> None:
    keys = r.ANGLES
    if isinstance(angles, Mapping):
        for name, value in angles.items():
            index = _angle_index(name)
            if index is not None:
                attributes[keys[index]] = value
    elif isinstance(angles, list | tuple):
        for index, value in enumerate(angles[:7]):
            attributes[keys[index]] = value
    else:
        attributes[r.DATA_JSON] = angles  # unusable as angles: keep it visible, not lost


def _angle_index(name: Any) -> int | None:
    if isinstance(name, int) and not isinstance(name, bool):
        return name if 0 <= name <= 6 else None
    if isinstance(name, str):
        digits = name[5:] if name.startswith("angle") else name[1:] if name.startswith("j") else name
        if digits.isascii() and digits.isdigit() and int(digits) <= 6:  # "²".isdigit() too
            return int(digits)
    return None


def _put_mapped(
    attributes: dict[str, Any],
    source: Mapping[str, Any],
    keys: tuple[tuple[str, str], ...],
    *,
    short: bool = False,
) -> None:
    for name, key in keys:
        value = source.get(name)
        if value is None and short:
            value = source.get(name.rsplit("_", 1)[0])  # "power" for "power_status"
        if value is not None:
            attributes[key] = value


def _as_event(row: Any) -> TelemetryEvent:
    """A stored row as the original returned it: the wall time in both time fields."""
    return TelemetryEvent(row.ts_ms, row.ts_ms, row.source, row.event_type, row.payload, row.correlation_id)


def _pipeline_steps(events: Iterable[TelemetryEvent]) -> list[dict[str, Any]]:
    """``get_pipeline``'s shape: the events in time order, each with ``latency_ms`` to the previous."""
    found = sorted(events, key=lambda event: event.wall_time_ms)
    steps = []
    for i, event in enumerate(found):
        kind = event.event_type
        steps.append(
            {
                "event": {
                    "ts": event.wall_time_ms,
                    "type": kind.value if isinstance(kind, EventType) else kind,
                    "source": event.source,
                },
                "latency_ms": event.wall_time_ms - found[i - 1].wall_time_ms if i else 0.0,
            }
        )
    return steps


def _add_unstored(stats: dict[str, Any], events: Iterable[TelemetryEvent], now: float) -> None:
    """Count emitted events that no table keeps (``WS_SEND``) into ``get_stats``' figures."""
    since_ms = (now - RATE_WINDOW_S) * 1000
    rates = stats["rates_per_sec"]
    newest: float | None = None
    for event in events:
        stats["total_events"] += 1
        newest = event.wall_time_ms if newest is None else max(newest, event.wall_time_ms)
        if event.wall_time_ms >= since_ms:
            kind = event.event_type
            name = kind.value if isinstance(kind, EventType) else kind
            rates[name] = rates.get(name, 0.0) + 1 / RATE_WINDOW_S
    if newest is not None:
        staleness = max(0.0, now * 1000 - newest)
        current = stats["staleness_ms"]
        stats["staleness_ms"] = staleness if current is None else min(current, staleness)
