"""Settings of the inference store: retention, pruning, pool size and the spec 9.2 alert thresholds.

The options are declared in the core table (``otel_tele._settings.OPTIONS``: argument → environment →
default); :meth:`InferenceConfig.from_settings` reads them from resolved settings, or from the
environment when it is given none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from otel_tele._settings import OPTIONS_BY_NAME, Option, Settings

_log = logging.getLogger("otel_tele")

#: The inference options live in the core option table (one table for every setting).
OPTIONS: tuple[Option, ...] = tuple(
    option for name, option in OPTIONS_BY_NAME.items() if name.startswith(("inference_", "postgres_pool"))
)


@dataclass(frozen=True)
class InferenceConfig:
    """Resolved inference-store settings.

    Example::

        config = InferenceConfig(inference_retention_days=30)
        config.retention_seconds  # 2592000
    """

    inference_retention_days: int = 60
    inference_prune_interval_s: float = 3600.0
    inference_lock_timeout_ms: int = 200
    inference_alert_table_bytes: int = 100_000_000
    inference_alert_rows: int = 1_000_000
    inference_alert_efficiency_drop: float = 0.2
    postgres_pool_max_size: int = 4

    @property
    def retention_seconds(self) -> int:
        return self.inference_retention_days * 86_400

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> InferenceConfig:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        for option in OPTIONS:
            if option.name in overrides and overrides[option.name] is not None:
                values[option.name] = overrides[option.name]
            elif settings is not None and option.name in settings.values:
                values[option.name] = settings.values[option.name]
            else:
                values[option.name] = _from_env(option, environ)
        return cls(**{k: v for k, v in values.items() if k in known})


def _from_env(option: Option, environ: Mapping[str, str]) -> Any:
    raw = environ.get(option.env) if option.env else None
    if raw is None or not raw.strip():
        return option.default
    try:
        return option.parse(raw)
    except (TypeError, ValueError) as exc:
        _log.error("ignoring %s=%r (%s); using the default", option.env, raw, exc)
        return option.default
