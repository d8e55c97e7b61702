"""The robot events the SQLite sink takes as columns (``otel_tele._event_rows``), and how each
becomes its table's rows (``otel_tele._event_columns``)."""

from __future__ import annotations

from collections.abc import Mapping

from otel_tele._event_columns import EventColumns, supported

from ._mapping import MAPPER, _not_nan

#: event name → how its columns become rows: the events whose records fill one table through a
#: generated row function (``RowMapper.typed_tables``), every source one a batch of columns has.
BY_EVENT: Mapping[str, EventColumns] = {
    event: EventColumns(table, event, nan_only=_not_nan)
    for event, table in MAPPER.typed_tables.items()
    if supported(table)
}
