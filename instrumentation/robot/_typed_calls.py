"""Spec 004's typed calls (``log_command``, ``log_feedback`` …): record one event, tell the listeners.

A base of :class:`~._collector.TelemetryCollector` rather than an object it holds, so a recording
call costs one method call, as before the collector was split (``bench/bench_robot_emit.py``). Every
call records through :class:`~._records.RobotRecords`, notifies :class:`~._listeners.Listeners` only
when someone listens, and never raises: a call that cannot record is counted failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._events import EventType
from ._listeners import Listeners
from ._records import RobotRecords


class TypedCalls:
    """The typed recording calls, over the records given to ``_bind_records`` and ``_listeners``."""

    _listeners: Listeners

    def _bind_records(self, records: RobotRecords) -> None:
        # Bound once: a recording call then costs one attribute load, as a method of its own did.
        self._command, self._feedback, self._smoother_tick = (
            records.command,
            records.feedback,
            records.smoother_tick,
        )
        self._web_request, self._camera_health = records.web_request, records.camera_health
        self._system_event = records.system_event

    def _failed(self, what: str, exc: BaseException | None = None) -> None:
        raise NotImplementedError

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
            self._command(seq, funcode, joint_id, target_value, data, correlation_id, raw_len)
            if self._listeners.callbacks:
                payload: dict[str, Any] = {"seq": seq, "funcode": funcode, "joint_id": joint_id}
                payload |= {"target_value": target_value, "data": data, "raw_len": raw_len}
                self._listeners.typed("dds", EventType.DDS_PUBLISH, payload, correlation_id)
        except Exception as exc:
            self._failed("TelemetryCollector.log_command", exc)

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
            self._feedback(seq, funcode, angles, status)
            if self._listeners.callbacks:
                payload = {"seq": seq, "funcode": funcode, "angles": angles, "status": status}
                self._listeners.typed("dds", EventType.DDS_RECEIVE, payload, None)
        except Exception as exc:
            self._failed("TelemetryCollector.log_feedback", exc)

    def log_smoother_tick(self, states: Iterable[Mapping[str, Any]] | None) -> None:
        """The interpolation state of each joint in ``states`` (``joint_id, target, current, sent,
        step_size, dirty``) — one ``smoother_state`` row each."""
        try:
            kept = self._smoother_tick(states, self._failed)
            if self._listeners.callbacks and kept:
                self._listeners.typed("smoother", EventType.STATE_UPDATE, {"joints": kept}, None)
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
            self._web_request(endpoint, method, params, response_ms, status_code, ok, correlation_id)
            if self._listeners.callbacks:
                payload: dict[str, Any] = {"endpoint": endpoint, "method": method, "response_ms": response_ms}
                payload |= {"status_code": status_code, "ok": ok}
                self._listeners.typed("web", EventType.CMD_SENT, payload, correlation_id)
        except Exception as exc:
            self._failed("TelemetryCollector.log_web_request", exc)

    def log_camera_health(self, camera_id: str = "", stats: Mapping[str, Any] | None = None) -> None:
        """One camera health snapshot, e.g. ``CameraHealthMonitor.stats`` (→ ``camera_health``)."""
        try:
            self._camera_health(camera_id, stats)
            if self._listeners.callbacks:
                payload = dict(stats) if isinstance(stats, Mapping) else {"stats": stats} if stats else {}
                self._listeners.typed(
                    "camera", EventType.CAM_FRAME, {"camera_id": camera_id, **payload}, None
                )
        except Exception as exc:
            self._failed("TelemetryCollector.log_camera_health", exc)

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
            if self._listeners.callbacks:
                kind = EventType.ERROR if level == "error" else EventType.STATE_UPDATE
                payload = {"system_event_type": event_type, "detail": detail, "data": data, "level": level}
                self._listeners.typed(source, kind, payload, correlation_id)
        except Exception as exc:
            self._failed("TelemetryCollector.log_system_event", exc)

    # The original code's spellings.
    log_dds_command = log_command
    log_dds_feedback = log_feedback
    log_smoother_state = log_smoother_tick
