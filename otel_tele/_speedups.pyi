# The C module's types (otel_tele/_speedups.c); its pure-Python twins are in _accel and _event_buffer.
from collections import deque
from collections.abc import Callable
from typing import Any

def gather(
    rows: list[dict[Any, Any]], keys: tuple[str, ...], /
) -> tuple[list[list[Any]], list[Any], list[int], list[int], int]: ...
def float64_buffers(column: list[Any], /) -> tuple[bytes | None, bytes, int]: ...
def int64_buffers(column: list[Any], divisor: int = 1, /) -> tuple[bytes | None, bytes, int]: ...
def utf8_buffers(column: list[Any], /) -> tuple[bytes | None, bytes, bytes, int]: ...

class RowRecorder:
    calls: int
    fast_calls: int
    valid_names: tuple[Any, ...]
    renames: bool
    context: Any
    def __init__(
        self,
        *,
        rows: deque[dict[str, Any]],
        hand_over: Callable[[], None],
        context: Any,
        get_context: Callable[[], Any],
        check: Callable[[int, dict[str, Any]], bool],
        clock: Callable[[], int],
        start_ns: int,
        origin_ns: int,
        fast_calls: int,
        offset_key: str,
        time_key: str,
        context_key: str,
        chunk: int,
        native_clock: bool,
    ) -> None: ...
    def record(self, **fields: Any) -> None: ...
    def __call__(self, **fields: Any) -> None: ...

def untrack_plain(d: dict[Any, Any], /) -> bool: ...
