"""The robot vocabulary's events, one method per spec 004 table: a call's arguments → one event.

Each method builds one attribute dict in the robot vocabulary (``otel_tele.semconv.robot``) and hands
it to the domain-event fast path (``telemetry.events.emit``); the ``sqlite`` sink maps it to its row.
The collector's typed calls and ``emit()``'s routes (:data:`._events.ROUTES`) both record through
here; ``ts_ns`` is the record time a route shares with the event ``emit()`` returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from otel_tele.semconv import robot as r

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

#: ``telemetry.events.emit``: (event name, attributes, timestamp_ns=) → None.
Emit = Callable[..., None]


def _copy(value: Any) -> Any:
    # The fast path takes the attribute dict over and encodes it later, on the telemetry thread: a
    # shallow copy keeps a caller who reuses its dict from changing what was recorded.
    return dict(value) if type(value) is dict else value


class RobotRecords:
    """Records robot events through ``emit`` (rebound when the collector changes pipeline)."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit

    def command(
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
        self.emit(
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

    def feedback(
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
        self.emit(r.DDS_FEEDBACK, attributes, timestamp_ns=ts_ns or _time_ns())

    def smoother_tick(
        self, states: Iterable[Mapping[str, Any]] | None, failed: Callable[[str], None]
    ) -> list[Mapping[str, Any]]:
        """One ``smoother_state`` event per joint state; a state that is not a mapping is reported
        to ``failed`` and skipped. Returns the states recorded."""
        now = _time_ns()
        emit = self.emit
        kept = []
        for state in states or ():
            if not isinstance(state, Mapping):
                failed("TelemetryCollector.log_smoother_tick (a state that is not a mapping)")
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
        return kept

    def web_request(
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
        self.emit(
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

    def camera_health(self, camera_id: Any = "", stats: Any = None, *, ts_ns: int | None = None) -> None:
        attributes: dict[str, Any] = {r.CAMERA_ID: camera_id}
        if isinstance(stats, Mapping):
            _put_mapped(attributes, stats, _CAMERA_KEYS)
            resolution = stats.get("resolution")
            if isinstance(resolution, list | tuple) and len(resolution) == 2:
                attributes.setdefault(r.RESOLUTION_W, resolution[0])
                attributes.setdefault(r.RESOLUTION_H, resolution[1])
        elif stats is not None:
            attributes[r.DATA_JSON] = stats  # not a snapshot: keep it visible on the log record
        self.emit(r.CAMERA_HEALTH, attributes, timestamp_ns=ts_ns or _time_ns())

    def system_event(
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
        self.emit(
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
