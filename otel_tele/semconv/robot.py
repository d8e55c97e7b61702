"""Robot-arm control vocabulary (spec 004): DDS commands and feedback, smoother, web, cameras, system.

One event per kind of record the spec keeps (how a sink stores them is the sink's); ``/api/`` requests
are HTTP server spans under the OTel HTTP semantic conventions (``http.route``,
``http.request.method``, ``http.response.status_code``, ``http.server.request.duration``) carrying
:data:`PARAMS_JSON` and :data:`CORRELATION_ID`; ``log_web_request`` emits :data:`WEB_REQUEST` with the
same keys. Counters give Prometheus the rates (``rate(robot_dds_commands_total[1m])`` per funcode),
gauges the latest camera fps and drops.
"""

from __future__ import annotations

import enum

from ._types import Attr, AttrType, Event, Metric

INT, F, S, B, J = AttrType.INT, AttrType.FLOAT, AttrType.STR, AttrType.BOOL, AttrType.JSON

# Attribute keys
TS_MONO = "robot.ts_mono"
SEQ = "robot.dds.seq"
FUNCODE = "robot.dds.funcode"
RAW_LEN = "robot.dds.raw_len"
JOINT_ID = "robot.joint.id"
TARGET_VALUE = "robot.target_value"
DATA_JSON = "robot.data_json"
CORRELATION_ID = "robot.correlation_id"
ANGLES = tuple(f"robot.angle{i}" for i in range(7))
POWER_STATUS = "robot.status.power"
ENABLE_STATUS = "robot.status.enable"
ERROR_STATUS = "robot.status.error"
RECV_STATUS = "robot.status.recv"
EXEC_STATUS = "robot.status.exec"
SMOOTHER_TARGET = "robot.smoother.target"
SMOOTHER_CURRENT = "robot.smoother.current"
SMOOTHER_SENT = "robot.smoother.sent"
SMOOTHER_STEP = "robot.smoother.step_size"
SMOOTHER_DIRTY = "robot.smoother.dirty"
ENDPOINT = "http.route"  # OTel HTTP semconv
METHOD = "http.request.method"  # OTel HTTP semconv
STATUS_CODE = "http.response.status_code"  # OTel HTTP semconv
PARAMS_JSON = "robot.web.params_json"
RESPONSE_MS = "robot.web.response_ms"
OK = "robot.web.ok"
CAMERA_ID = "robot.camera.id"
ACTUAL_FPS = "robot.camera.actual_fps"
TARGET_FPS = "robot.camera.target_fps"
DROP_COUNT = "robot.camera.drop_count"
MOTION_SCORE = "robot.camera.motion_score"
CONNECTED = "robot.camera.connected"
RESOLUTION_W = "robot.camera.resolution_w"
RESOLUTION_H = "robot.camera.resolution_h"
STALLED = "robot.camera.stalled"
SYSTEM_EVENT_TYPE = "robot.system.event_type"
SOURCE = "robot.source"
DETAIL = "robot.system.detail"
LEVEL = "robot.system.level"

# Event names
DDS_COMMAND = "robot.dds.command"
DDS_FEEDBACK = "robot.dds.feedback"
SMOOTHER_TICK = "robot.smoother.tick"
WEB_REQUEST = "robot.web.request"
CAMERA_HEALTH = "robot.camera.health"
SYSTEM_EVENT = "robot.system.event"


class EventType(enum.Enum):
    """The original collector's event types (its ``emit()`` bus, spec 004), unchanged: each routes to
    one of the events above (``WS_SEND`` to none) and is what stored rows read back as."""

    CMD_SENT = "cmd_sent"
    DDS_PUBLISH = "dds_publish"
    DDS_RECEIVE = "dds_receive"
    CMD_ACK = "cmd_ack"
    CMD_EXEC = "cmd_exec"
    STATE_UPDATE = "state_update"
    WS_SEND = "ws_send"
    WS_RECEIVE = "ws_receive"
    CAM_FRAME = "cam_frame"
    ERROR = "error"


#: Funcodes of spec 004 (``dds_commands``: 1 set_joint, 2 set_all, 5 enable, 6 power, 7 reset;
#: ``dds_feedback``: 1 angles, 3 status).
COMMAND_FUNCODES = {1: "set_joint", 2: "set_all", 5: "enable", 6: "power", 7: "reset"}
FEEDBACK_FUNCODES = {1: "angles", 3: "status"}

EVENTS: tuple[Event, ...] = (
    Event(
        DDS_COMMAND,
        (
            Attr(TS_MONO, F, "s"),
            Attr(SEQ, INT),
            Attr(FUNCODE, INT),
            Attr(JOINT_ID, INT),
            Attr(TARGET_VALUE, F, doc="angle in deg, or gripper opening in mm"),
            Attr(DATA_JSON, J),
            Attr(CORRELATION_ID, S),
            Attr(RAW_LEN, INT, "By"),
        ),
        "a command published to the arm",
    ),
    Event(
        DDS_FEEDBACK,
        (
            Attr(TS_MONO, F, "s"),
            Attr(SEQ, INT),
            Attr(FUNCODE, INT),
            *(Attr(key, F, "deg") for key in ANGLES),
            Attr(POWER_STATUS, INT),
            Attr(ENABLE_STATUS, INT),
            Attr(ERROR_STATUS, INT),
            Attr(RECV_STATUS, INT),
            Attr(EXEC_STATUS, INT),
            Attr(DATA_JSON, J),
        ),
        "a feedback frame from the arm (angle6 is the gripper)",
    ),
    Event(
        SMOOTHER_TICK,
        (
            Attr(JOINT_ID, INT),
            Attr(SMOOTHER_TARGET, F),
            Attr(SMOOTHER_CURRENT, F),
            Attr(SMOOTHER_SENT, F),
            Attr(SMOOTHER_STEP, F),
            Attr(SMOOTHER_DIRTY, B),
        ),
        "one joint's interpolation state on a sampled smoother tick",
    ),
    Event(
        WEB_REQUEST,
        (
            Attr(ENDPOINT, S),
            Attr(METHOD, S),
            Attr(PARAMS_JSON, J),
            Attr(RESPONSE_MS, F, "ms"),
            Attr(STATUS_CODE, INT),
            Attr(CORRELATION_ID, S),
            Attr(OK, B),
        ),
        "an /api/ request logged explicitly (HTTP server spans map to the same row)",
    ),
    Event(
        CAMERA_HEALTH,
        (
            Attr(CAMERA_ID, S),
            Attr(ACTUAL_FPS, F, "{frame}/s"),
            Attr(TARGET_FPS, F, "{frame}/s"),
            Attr(DROP_COUNT, INT),
            Attr(MOTION_SCORE, F),
            Attr(CONNECTED, B),
            Attr(RESOLUTION_W, INT, "{pixel}"),
            Attr(RESOLUTION_H, INT, "{pixel}"),
            Attr(STALLED, B),
            Attr(DATA_JSON, J),
        ),
        "a camera health snapshot",
    ),
    Event(
        SYSTEM_EVENT,
        (
            Attr(SYSTEM_EVENT_TYPE, S),
            Attr(SOURCE, S),
            Attr(DETAIL, S),
            Attr(DATA_JSON, J),
            Attr(CORRELATION_ID, S),
            Attr(LEVEL, S),
        ),
        "power, enable, error, estop, connect …",
    ),
)

METRICS: tuple[Metric, ...] = (
    Metric(
        "robot.dds.commands", "counter", "{command}", "DDS commands published", DDS_COMMAND, labels=(FUNCODE,)
    ),
    Metric(
        "robot.dds.feedback",
        "counter",
        "{frame}",
        "DDS feedback frames received",
        DDS_FEEDBACK,
        labels=(FUNCODE,),
    ),
    Metric(
        "robot.web.requests",
        "counter",
        "{request}",
        "/api/ requests logged through log_web_request",
        WEB_REQUEST,
        labels=(ENDPOINT, METHOD, STATUS_CODE),
    ),
    Metric(
        "robot.smoother.samples",
        "counter",
        "{sample}",
        "sampled smoother joint states",
        SMOOTHER_TICK,
        labels=(JOINT_ID,),
    ),
    Metric(
        "robot.camera.fps",
        "gauge",
        "{frame}/s",
        "latest camera frame rate",
        CAMERA_HEALTH,
        value=ACTUAL_FPS,
        labels=(CAMERA_ID,),
    ),
    Metric(
        "robot.camera.drops",
        "gauge",
        "{frame}",
        "latest camera dropped-frame count",
        CAMERA_HEALTH,
        value=DROP_COUNT,
        labels=(CAMERA_ID,),
    ),
    Metric(
        "robot.system.events",
        "counter",
        "{event}",
        "system events",
        SYSTEM_EVENT,
        labels=(SYSTEM_EVENT_TYPE, LEVEL),
    ),
)
