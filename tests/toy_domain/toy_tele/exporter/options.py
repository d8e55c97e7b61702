"""The toy sink's settings, added to otel-tele's option table through ``Domain.options`` and read
typed (``settings.get(TOY_DB_NAME)``): ``setup(toy_db_name=...)``, ``OTEL_TELE_TOY_DB_NAME``;
``otel-tele doctor`` lists them."""

from __future__ import annotations

from otel_tele.plugin import Option

from .schema import DEFAULT_DB_NAME


def _file_name(raw: str) -> str:
    """A plain file name under the data folder (no path: the sink writes under ``data_dir`` only)."""
    value = raw.strip()
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value:
        raise ValueError(f"expected a file name without a folder, got {raw!r}")
    return value


TOY_DB_NAME: Option[str] = Option(
    "toy_db_name",
    "OTEL_TELE_TOY_DB_NAME",
    _file_name,
    DEFAULT_DB_NAME,
    "file of the toy sink's table, under the data folder",
)

OPTIONS: tuple[Option[str], ...] = (TOY_DB_NAME,)
