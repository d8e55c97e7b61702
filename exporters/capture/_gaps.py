"""Gap handling (FlowTime's ``GapInjector``) and synthetic gap injection for replay tests (spec 001).

Handling follows FlowTime exactly, one warning per affected bin:

- a missing value (empty cell) is kept and reported as ``data_gap`` when gap detection is on, or
  replaced by 0 (still ``data_gap``) when gap filling is on; by default it passes silently;
- NaN/±∞ is kept and reported as ``nan_detected`` (default), or replaced by 0 as ``nan_fill``.

Injection (ours) rewrites chosen bins *before* handling: ``zero`` (0), ``nan`` (NaN) or ``gap`` (value
removed, empty cell), and records one ``injected_<mode>`` warning per series listing the bins.
"""

from __future__ import annotations

import enum
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from otel_tele.semconv import flow

from ._format import all_finite
from .schema import (
    DATA_GAP,
    INJECTED_GAP,
    INJECTED_NAN,
    INJECTED_ZERO,
    NAN_DETECTED,
    NAN_FILL,
    CaptureWarning,
)

InjectionMode = Literal["zero", "nan", "gap"]
_INJECTED: dict[str, tuple[str, float | None]] = {
    "zero": (INJECTED_ZERO, 0.0),
    "nan": (INJECTED_NAN, float("nan")),
    "gap": (INJECTED_GAP, None),
}


class GapMode(enum.Enum):
    """FlowTime's ``GapHandlingMode`` for missing values."""

    IGNORE = "ignore"
    WARN = "warn"  # --gap-detect
    FILL_ZERO = "fill_zero"  # --gap-fill-gaps


@dataclass(frozen=True)
class GapInjection:
    """Rewrite bins of matching series (``None`` matches any node, metric or class).

    ``bins`` names bin indices; ``fraction`` instead picks that share of bins with a seeded RNG, so the
    same configuration always hits the same bins.
    """

    mode: InjectionMode
    node_id: str | None = None
    metric: str | None = None  # a semantics field ("arrivals") or manifest name ("Arrivals")
    class_id: str | None = None
    bins: tuple[int, ...] = ()
    fraction: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in _INJECTED:
            raise ValueError(f"injection mode must be one of {', '.join(_INJECTED)}, not {self.mode!r}")
        if (
            self.metric is not None
            and self.metric not in flow.BY_FIELD
            and self.metric not in flow.BY_MANIFEST
        ):
            raise ValueError(f"unknown flow metric {self.metric!r}")
        if any(not isinstance(b, int) or isinstance(b, bool) or b < 0 for b in self.bins):
            raise ValueError("injection bins must be non-negative integers")
        if self.fraction is not None and not 0 <= self.fraction <= 1:
            raise ValueError("injection fraction must be between 0 and 1")
        if not self.bins and self.fraction is None:
            raise ValueError("an injection needs bins or a fraction")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> GapInjection:
        known = {"mode", "nodeId", "metric", "classId", "bins", "fraction", "seed"}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown injection key(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(
            mode=raw.get("mode"),  # type: ignore[arg-type]  # validated in __post_init__
            node_id=raw.get("nodeId"),
            metric=raw.get("metric"),
            class_id=raw.get("classId"),
            bins=tuple(raw.get("bins") or ()),
            fraction=raw.get("fraction"),
            seed=int(raw.get("seed", 0)),
        )

    def matches(self, node_id: str, metric: flow.FlowMetric, class_id: str) -> bool:
        return (
            (self.node_id is None or self.node_id == node_id)
            and (self.metric is None or self.metric in (metric.field, metric.manifest))
            and (self.class_id is None or self.class_id == class_id)
        )

    def chosen_bins(self, count: int, key: str) -> list[int]:
        if self.fraction is None:
            return sorted({b for b in self.bins if b < count})
        rng = random.Random(f"{self.seed}:{key}")  # str seeds hash with SHA-512: stable across runs
        return sorted(rng.sample(range(count), round(count * self.fraction)))


def load_injections(path: Path) -> tuple[GapInjection, ...]:
    """Injections from a JSON or YAML file: a list, or ``{"injections": [...]}``."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        raw: Any = yaml.safe_load(text)
    else:
        raw = json.loads(text)
    if isinstance(raw, Mapping):
        raw = raw.get("injections")
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        raise ValueError(
            f"{path.name}: expected a list of injections (mode, bins|fraction, nodeId, metric, classId)"
        )
    return tuple(GapInjection.from_mapping(item) for item in raw)


@dataclass(frozen=True)
class GapOptions:
    """FlowTime's ``GapInjectorOptions`` plus our injections. Defaults = FlowTime's defaults."""

    fill_nan_with_zero: bool = False  # --gap-fill-nan
    missing: GapMode = GapMode.IGNORE
    inject: tuple[GapInjection, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        return {
            "fillNaNWithZero": self.fill_nan_with_zero,
            "missingValueHandling": self.missing.value,
            "injections": len(self.inject),
        }


def inject(
    values: list[float | None],
    node_id: str,
    metric: flow.FlowMetric,
    class_id: str,
    injections: Sequence[GapInjection],
) -> list[CaptureWarning]:
    """Apply matching injections to ``values`` in place; one warning per injection that hit bins."""
    warnings = []
    for injection in injections:
        if not injection.matches(node_id, metric, class_id):
            continue
        bins = injection.chosen_bins(len(values), f"{node_id}:{metric.field}:{class_id}")
        if not bins:
            continue
        code, replacement = _INJECTED[injection.mode]
        for b in bins:
            values[b] = replacement
        warnings.append(
            CaptureWarning(
                code,
                f"Injected {injection.mode} at {len(bins)} bin(s) for "
                f"{node_id}:{metric.manifest} ({class_id}).",
                node_id,
                tuple(bins),
            )
        )
    return warnings


def handle(
    values: list[float | None], node_id: str, metric: flow.FlowMetric, options: GapOptions
) -> list[CaptureWarning]:
    """FlowTime's ``GapInjector.Process`` over ``values`` (in place); returns its warnings."""
    if all_finite(values):
        return []
    warnings: list[CaptureWarning] = []
    name = f"{node_id}:{metric.manifest}"
    for i, value in enumerate(values):
        if value is None:
            if options.missing is not GapMode.IGNORE:
                warnings.append(
                    CaptureWarning(DATA_GAP, f"Missing value at bin {i} for {name}.", node_id, (i,))
                )
                if options.missing is GapMode.FILL_ZERO:
                    values[i] = 0.0
        elif value != value or value in (float("inf"), float("-inf")):
            if options.fill_nan_with_zero:
                values[i] = 0.0
                warnings.append(
                    CaptureWarning(NAN_FILL, f"Filled NaN/∞ at bin {i} for {name}.", node_id, (i,))
                )
            else:
                warnings.append(
                    CaptureWarning(NAN_DETECTED, f"Detected NaN/∞ at bin {i} for {name}.", node_id, (i,))
                )
    return warnings
