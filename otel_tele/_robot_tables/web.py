"""``web_requests``: rows and latency statistics (from the digest when in step)."""

from __future__ import annotations

from typing import Any

from .._robot_query import TimeArg, TimeRange, filters, latency_block, time_clause, where, window
from ._base import Row, TableReader, text


class WebReads(TableReader):
    """``web_requests``: rows and latency statistics (from the digest when in step)."""

    def get_web_requests(
        self,
        time_range: TimeRange = None,
        endpoint: str | None = None,
        limit: int = 500,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
    ) -> list[Row]:
        """``web_requests`` rows, newest first."""
        clauses, params = filters(time_range, start, end, endpoint=text(endpoint))
        return self._rows("web_requests", "*", clauses, params, limit)

    def get_web_request_latency(
        self, endpoint: str | None = None, *, start: TimeArg = None, end: TimeArg = None, limit: int = 500
    ) -> list[Row]:
        """The original API: request rows (with ``response_ms``), newest first."""
        return self.get_web_requests(None, endpoint, limit, start=start, end=end)

    def get_web_latency_stats(
        self, time_range: TimeRange = None, *, start: TimeArg = None, end: TimeArg = None
    ) -> Row:
        """``{count, mean_ms, p50_ms, p95_ms, p99_ms, max_ms, percentile_rel_error, by_endpoint:
        {endpoint: {...}}}`` (nearest-rank percentiles over every request with a response time).

        Counts, means and maxima are exact. Percentiles come from the sink's digest within
        ``percentile_rel_error`` (0.01) of the exact value, and are exact (0.0) for windows of at most
        20,000 requests or when the digest is missing or out of step."""
        lo, hi = window(time_range, start, end)
        fast = self._digest.latency_stats(lo, hi)
        if fast is not None:
            return fast
        clauses, params = ["response_ms IS NOT NULL"], list[Any]()
        time_clause(lo, hi, clauses, params)
        by_endpoint: dict[str, list[float]] = {}
        cursor = self._conn.cursor()
        cursor.row_factory = None
        for endpoint, value in cursor.execute(
            f"SELECT endpoint, response_ms FROM web_requests{where(clauses)}", params
        ):
            by_endpoint.setdefault(endpoint, []).append(value)
        every: list[float] = []
        blocks = {}
        for endpoint, values in sorted(by_endpoint.items()):
            values.sort()
            every += values
            blocks[endpoint] = latency_block(values)
        every.sort()
        return {**latency_block(every), "by_endpoint": blocks}
