"""Iterative-solver (FDA) vocabulary (spec 000): runs, iterations and run events."""

from __future__ import annotations

from ._types import Attr, AttrType, Event, Metric

I, F, S, J = AttrType.INT, AttrType.FLOAT, AttrType.STR, AttrType.JSON

RUN_ID = "fda.run_id"
FLOW_NAME = "fda.flow_name"
MODE = "fda.mode"
TRIAL_ID = "fda.trial_id"
T_WALL_MS = "fda.t_wall_ms"
EVENT = "fda.event"
PAYLOAD = "fda.payload"

#: Spec field name → (attribute key, type). ``lambda`` is a Python keyword: callers pass ``lambda_``.
CORE_FIELDS: dict[str, AttrType] = {
    "phase": S, "iter": I, "t_wall_ms": F, "E": F, "grad_norm": F, "eta_dd": F, "gamma": F, "alpha": F,
    "phi_residual": F, "invariant_drift_max": F,
}
RECOMMENDED_FIELDS: dict[str, AttrType] = {
    "trial_id": S, "lambda": F, "lambda_j": J, "sparsity_wx": F, "level_active_max": I, "sparsity_mode": S,
    "flow_family": S, "lens_name": S,
}
DIAGNOSTIC_FIELDS: dict[str, AttrType] = {"metric_ber": F, "warnings": S, "notes": S}


def field_key(name: str) -> str:
    """The attribute key of a spec field (``fda.iter.<field>``)."""
    return f"fda.iter.{name}"


# Event names
RUN = "fda.run"  # span name
ITERATION = "fda.iteration"
RUN_EVENT = "fda.run.event"

EVENTS: tuple[Event, ...] = (
    Event(ITERATION, (Attr(RUN_ID, S), Attr(FLOW_NAME, S), Attr(MODE, S),
                      *(Attr(field_key(name), kind) for name, kind in
                        {**CORE_FIELDS, **RECOMMENDED_FIELDS, **DIAGNOSTIC_FIELDS}.items())),
          "one recorded solver iteration"),
    Event(RUN_EVENT, (Attr(RUN_ID, S), Attr(FLOW_NAME, S), Attr(MODE, S), Attr(TRIAL_ID, S),
                      Attr(T_WALL_MS, F, "ms"), Attr(EVENT, S), Attr(PAYLOAD, J)),
          "RUN_STARTED, RUN_FINISHED, CERT_PASS, … with a JSON payload"),
)

METRICS: tuple[Metric, ...] = (
    Metric("fda.iterations", "counter", "{iteration}", "recorded solver iterations", ITERATION,
           labels=(FLOW_NAME, MODE)),
    Metric("fda.energy", "gauge", "1", "latest energy E", ITERATION, value=field_key("E"),
           labels=(FLOW_NAME,)),
    Metric("fda.phi_residual", "gauge", "1", "latest physics residual norm", ITERATION,
           value=field_key("phi_residual"), labels=(FLOW_NAME,)),
    Metric("fda.run.events", "counter", "{event}", "run events", RUN_EVENT, labels=(FLOW_NAME, EVENT)),
)
