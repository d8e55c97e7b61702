"""The inference store's resolved settings (:class:`InferenceConfig`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from otel_tele._settings import Settings, resolve
from otel_tele.domains import inference as options


@dataclass(frozen=True)
class InferenceConfig:
    """Resolved inference-store settings: retention, pruning, pool size and the spec 9.2 alert
    thresholds (declared, with their defaults and variables, in ``otel_tele.domains.inference``).

    Example::

        config = InferenceConfig(inference_retention_days=30)
        config.retention_seconds  # 2592000
    """

    inference_retention_days: int = options.INFERENCE_RETENTION_DAYS.default
    inference_prune_interval_s: float = options.INFERENCE_PRUNE_INTERVAL_S.default
    inference_lock_timeout_ms: int = options.INFERENCE_LOCK_TIMEOUT_MS.default
    inference_alert_table_bytes: int = options.INFERENCE_ALERT_TABLE_BYTES.default
    inference_alert_rows: int = options.INFERENCE_ALERT_ROWS.default
    inference_alert_efficiency_drop: float = options.INFERENCE_ALERT_EFFICIENCY_DROP.default
    postgres_pool_max_size: int = options.POSTGRES_POOL_MAX_SIZE.default

    @property
    def retention_seconds(self) -> int:
        return self.inference_retention_days * 86_400

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> InferenceConfig:
        """The options of resolved ``settings`` (none: resolved from ``environ``, default the process
        environment); ``overrides`` that are not None win."""
        if settings is None:
            settings = resolve({}, environ)
        by_name = {option.name: option for option in options.OPTIONS}
        values = {f.name: settings.get(by_name[f.name]) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None and k in values})
        return cls(**values)
