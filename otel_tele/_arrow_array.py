"""A column of Python values → an Arrow array of a declared type, the fast way where there is one.

``pa.array(values, type)`` costs ~40 ns a value (it inspects each one); a column the event path has
already checked to be exactly floats, ints or strs (and ``None``) is written straight into Arrow's
buffers by the C module (``otel_tele._speedups``), ~3 ns a value. Anything else, or no C module,
takes ``pa.array`` itself: the result is the same array either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ._accel import speedups

__all__ = ["arrow_array"]

_FLOAT64 = pa.float64()
_INT64 = pa.int64()
_STRING = pa.string()


def arrow_array(values: Sequence[Any], arrow: pa.DataType, *, divisor: int = 1) -> pa.Array:
    """``values`` as an array of ``arrow`` (``None``: null), as ``pa.array(values, arrow)`` makes it;
    ``divisor``: each int floor-divided by it first (a timestamp's ns → µs: 1000). Raises as
    ``pa.array`` does for a value that does not convert.

    Example::

        arrow_array([1.5, None], pa.float64())  # <pyarrow.DoubleArray> [1.5, null]
    """
    if speedups is not None and type(values) is list:
        try:
            return _from_buffers(values, arrow, divisor)
        except (TypeError, ValueError, OverflowError, UnicodeError):
            pass  # a value of another type, or too big: pa.array decides (and says why)
    if divisor != 1:
        values = [None if value is None else value // divisor for value in values]
    return pa.array(values, arrow)


def _from_buffers(values: list[Any], arrow: pa.DataType, divisor: int) -> pa.Array:
    assert speedups is not None
    if arrow == _INT64 or pa.types.is_timestamp(arrow):  # a timestamp is stored as int64
        validity, data, nulls = speedups.int64_buffers(values, divisor)
        buffers = [validity, data]
    elif divisor != 1:
        raise TypeError(f"a divisor for {arrow}")
    elif arrow == _FLOAT64:
        validity, data, nulls = speedups.float64_buffers(values)
        buffers = [validity, data]
    elif arrow == _STRING:
        validity, offsets, data, nulls = speedups.utf8_buffers(values)
        buffers = [validity, offsets, data]
    else:
        raise TypeError(f"no fast path for {arrow}")
    return pa.Array.from_buffers(
        arrow, len(values), [None if b is None else pa.py_buffer(b) for b in buffers], null_count=nulls
    )
