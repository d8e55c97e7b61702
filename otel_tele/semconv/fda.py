"""Iterative-solver (FDA) vocabulary (spec 000): runs, iterations and run events.

A run is a span (``fda.run``); every recorded iteration is an ``fda.iteration`` event and every run
event (RUN_STARTED, CERT_PASS, …) an ``fda.run.event`` event. Run-level attributes are namespaced
(``fda.run_id`` …); the per-iteration attributes of ``fda.iteration`` are the spec's field names
verbatim (``E``, ``grad_norm``, ``lambda`` …): the event name is their namespace, the names are the
Parquet column names, and the recorder's hot path hands its keyword dict over without renaming.

Example::

    from otel_tele.semconv import fda
    fda.FIELDS["phi_residual"]      # AttrType.FLOAT
    fda.CORE_FIELDS                 # the fields every recorded sample must carry
"""

from __future__ import annotations

import re as _re
from collections.abc import Mapping
from typing import Any

from ._types import Attr, AttrType, Event, Metric

I, F, S, J = AttrType.INT, AttrType.FLOAT, AttrType.STR, AttrType.JSON  # noqa: E741

# Run-level attribute keys (on the span and on every record of the run)
RUN_ID = "fda.run_id"
FLOW_NAME = "fda.flow_name"
MODE = "fda.mode"
TRIAL_ID = "fda.trial_id"
# Run-event attribute keys
T_WALL_MS = "fda.t_wall_ms"
EVENT = "fda.event"
PAYLOAD = "fda.payload"

MODES: tuple[str, ...] = ("production", "dev", "tuner")
PHASES: tuple[str, ...] = ("RED", "AMBER", "GREEN")

#: Spec field → type. Core fields must be present (non-null) in every recorded sample; ``phi_residual``
#: and ``invariant_drift_max`` are promoted to core by the spec's audit. ``t_wall_ms`` is measured by the
#: recorder; ``run_id``/``flow_name`` are run-level.
CORE_FIELDS: Mapping[str, AttrType] = {
    "phase": S,
    "iter": I,
    "t_wall_ms": F,
    "E": F,
    "grad_norm": F,
    "eta_dd": F,
    "gamma": F,
    "alpha": F,
    "phi_residual": F,
    "invariant_drift_max": F,
}
#: ``trial_id`` is recommended too, but it is a run-level setting (``fda.run(trial_id=...)``).
RECOMMENDED_FIELDS: Mapping[str, AttrType] = {
    "lambda": F,
    "lambda_j": J,
    "sparsity_wx": F,
    "level_active_max": I,
    "sparsity_mode": S,
    "flow_family": S,
    "lens_name": S,
}
DIAGNOSTIC_FIELDS: Mapping[str, AttrType] = {"metric_ber": F, "warnings": S, "notes": S}
#: Every per-iteration field, in column order.
FIELDS: Mapping[str, AttrType] = {**CORE_FIELDS, **RECOMMENDED_FIELDS, **DIAGNOSTIC_FIELDS}
#: Fields the caller passes to ``run.iteration()`` (everything but what the recorder measures).
CALLER_FIELDS: frozenset[str] = frozenset(FIELDS) - {"t_wall_ms"}
#: Core fields the caller must pass.
REQUIRED_CALLER_FIELDS: frozenset[str] = frozenset(CORE_FIELDS) - {"t_wall_ms"}
#: Fields whose units and computation method the manifest must declare.
CERTIFICATION_FIELDS: tuple[str, ...] = ("phi_residual", "invariant_drift_max")

# Event names (spec 000 "Events"): the lifecycle ones are emitted by the recorder itself.
RUN_STARTED = "RUN_STARTED"
RUN_FINISHED = "RUN_FINISHED"
CANCELLED = "CANCELLED"
TIMEOUT = "TIMEOUT"
SPEC_LINT_FAIL = "SPEC_LINT_FAIL"
ROW_CAP_REACHED = "ROW_CAP_REACHED"
#: Events that end a run: the capsule sink completes the run's files when it sees one.
END_EVENTS: frozenset[str] = frozenset({RUN_FINISHED, CANCELLED})
#: The status of a run that ended normally but whose file holds fewer rows than were recorded
#: (dropped under overload; the summary's ``rows_dropped`` says how many).
COMPLETED_WITH_LOSS = "completed_with_loss"
SPEC_EVENTS: tuple[str, ...] = (
    SPEC_LINT_FAIL,
    "CERT_FAIL",
    "CERT_PASS",
    "TUNER_MOVE_REJECTED",
    "ROLLBACK",
    TIMEOUT,
    CANCELLED,
    RUN_STARTED,
    RUN_FINISHED,
    "LENS_SELECTED",
    "SCALE_ACTIVATED",
)

# Log record event names and the span name
RUN = "fda.run"
ITERATION = "fda.iteration"
RUN_EVENT = "fda.run.event"
ARTIFACT = "fda.artifact"

# Artifact attribute keys (``fda.artifact``: a checkpoint, QA log or config snapshot of a run)
ARTIFACT_NAME = "fda.artifact.name"
ARTIFACT_KIND = "fda.artifact.kind"
#: A local file to copy (absolute path); only honoured with ``ARTIFACT_ORIGIN`` of the same process.
ARTIFACT_SOURCE = "fda.artifact.source"
#: Inline content, base64 (at most ``MAX_INLINE_ARTIFACT_BYTES`` before encoding).
ARTIFACT_CONTENT = "fda.artifact.content"
ARTIFACT_SIZE = "fda.artifact.size"
#: The recording process's token: a path travels only to a sink in the same process (a path in a
#: record received over OTLP names a file on another machine, or one a remote peer must not read).
ARTIFACT_ORIGIN = "fda.artifact.origin"
ARTIFACT_KINDS: tuple[str, ...] = ("checkpoint", "qa_log", "config", "file")
#: Bytes passed inline; larger artifacts are attached as files, which the sink streams.
MAX_INLINE_ARTIFACT_BYTES = 1 << 20

_RUN_ATTRS = (Attr(RUN_ID, S), Attr(FLOW_NAME, S), Attr(MODE, S), Attr(TRIAL_ID, S))
EVENTS: tuple[Event, ...] = (
    Event(
        ITERATION,
        (
            *_RUN_ATTRS,
            *(Attr(name, kind, "ms" if name == "t_wall_ms" else None) for name, kind in FIELDS.items()),
        ),
        "one recorded solver iteration",
    ),
    Event(
        RUN_EVENT,
        (*_RUN_ATTRS, Attr(T_WALL_MS, F, "ms"), Attr(EVENT, S), Attr(PAYLOAD, J)),
        "RUN_STARTED, RUN_FINISHED, CERT_PASS, … with a JSON payload",
    ),
    Event(
        ARTIFACT,
        (
            *_RUN_ATTRS,
            Attr(T_WALL_MS, F, "ms"),
            Attr(ARTIFACT_NAME, S),
            Attr(ARTIFACT_KIND, S),
            Attr(ARTIFACT_SOURCE, S),
            Attr(ARTIFACT_CONTENT, S),
            Attr(ARTIFACT_SIZE, I, "By"),
            Attr(ARTIFACT_ORIGIN, S),
        ),
        "a file stored with the run (checkpoint, QA log, config snapshot): a local path or inline bytes",
    ),
)

METRICS: tuple[Metric, ...] = (
    Metric(
        "fda.iterations",
        "counter",
        "{iteration}",
        "recorded solver iterations",
        ITERATION,
        labels=(FLOW_NAME, MODE),
    ),
    Metric("fda.energy", "gauge", "1", "latest energy E", ITERATION, value="E", labels=(FLOW_NAME,)),
    Metric(
        "fda.phi_residual",
        "gauge",
        "1",
        "latest physics residual norm",
        ITERATION,
        value="phi_residual",
        labels=(FLOW_NAME,),
    ),
    Metric(
        "fda.invariant_drift_max",
        "gauge",
        "1",
        "latest maximum invariant drift",
        ITERATION,
        value="invariant_drift_max",
        labels=(FLOW_NAME,),
    ),
    Metric("fda.run.events", "counter", "{event}", "run events", RUN_EVENT, labels=(FLOW_NAME, EVENT)),
)

# -- names that become paths ------------------------------------------------------------------------
MAX_NAME_LENGTH = 128
_NAME = _re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RUN_ID = _re.compile(r"fda_run_[A-Za-z0-9._-]+")


def check_name(kind: str, value: object) -> str:
    """``value`` if it is a safe flow name / trial id / run id (it becomes a folder or file name).

    Letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most 128 characters:
    no separators, no ``..``, no absolute paths, no NUL. Raises ``ValueError`` otherwise.

    Example::

        check_name("flow_name", "deconv_wavelet_v1")   # -> "deconv_wavelet_v1"
        check_name("flow_name", "../x")                 # ValueError
    """
    if not isinstance(value, str):
        raise ValueError(f"{kind} must be a string, got {type(value).__name__}")
    if not value or len(value) > MAX_NAME_LENGTH or not _NAME.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid {kind} {value[:80]!r}: use 1-{MAX_NAME_LENGTH} letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (it becomes a file name)"
        )
    if kind == "run_id" and not _RUN_ID.fullmatch(value):
        raise ValueError(f"invalid run_id {value[:80]!r}: run ids start with 'fda_run_'")
    return value


#: Names an artifact may not take, so that a run folder's own files (the capsule sink's layout,
#: ``otel_tele.exporters.capsule.schema``) are never overwritten; the recorder refuses them before emitting.
RESERVED_ARTIFACT_NAMES: frozenset[str] = frozenset(
    {"manifest.toml", "telemetry.parquet", "events.parquet", "artifacts.jsonl"}
)


def check_artifact_name(value: object) -> str:
    """``value`` if it can name an artifact file: a safe name (:func:`check_name`) that is not one of
    the run folder's own files. Raises ``ValueError`` otherwise.

    Example::

        check_artifact_name("checkpoint_0001.pkl")   # -> "checkpoint_0001.pkl"
        check_artifact_name("manifest.toml")         # ValueError
    """
    name = check_name("artifact name", value)
    if name in RESERVED_ARTIFACT_NAMES or name.endswith(".arrows"):
        raise ValueError(f"artifact name {name!r} is reserved for the run folder's own files")
    return name


def overload_policy(event_name: str, attributes: Any) -> str | None:
    """The overload policy key of an FDA record by its run's mode (``Domain.overload_classifier``):
    ``fda.dev`` / ``fda.tuner``, else None (the domain's first policy, ``fda.production``).

    Runs on the recording thread: the caller's value is compared only once it is known to be a str.
    """
    mode = attributes.get(MODE) if isinstance(attributes, Mapping) else None
    if type(mode) is str and mode in MODES and mode != "production":
        return f"fda.{mode}"
    return None
