"""A waiting flush is woken once its records are finished, not after every batch.

Waking every waiter after every batch (50 records by default for the robot sink) cost the worker
and the flushing caller a thread switch per batch; these tests count the wake-ups."""

from __future__ import annotations

import threading
from typing import Any

from otel_tele._overload import Overload
from otel_tele._processor import BatchingProcessor
from otel_tele._stats import SinkStats


def _gated(
    batches: int, batch_size: int, **options: Any
) -> tuple[BatchingProcessor[int], threading.Event, list[int]]:
    """A processor whose first export waits for the gate, with ``batches`` full batches queued."""
    gate = threading.Event()
    exported: list[int] = []

    def export(batch: list[Any]) -> tuple[int, int]:
        gate.wait(30)
        exported.extend(batch)
        return len(batch), 0

    proc: BatchingProcessor[int] = BatchingProcessor(
        export,
        SinkStats("test", "logs"),
        max_export_batch_size=batch_size,
        schedule_delay_millis=10,
        **options,
    )
    for i in range(batches * batch_size):
        proc.put(i)
    return proc, gate, exported


def _count_calls(obj: Any, name: str) -> list[int]:
    calls = [0]
    real = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


class _Targets(list[int]):
    """The processor's waiting flushes, telling the test each time one starts waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.added = threading.Semaphore(0)

    def append(self, target: int) -> None:
        super().append(target)
        self.added.release()


def _watched(proc: BatchingProcessor[int]) -> _Targets:
    targets = _Targets()
    proc._flush_targets = targets
    return targets


def test_a_flush_is_woken_once_when_its_records_are_done() -> None:
    proc, gate, exported = _gated(batches=200, batch_size=50)
    wakeups = _count_calls(proc._progress, "notify_all")
    targets = _watched(proc)
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(proc.force_flush(30_000)))
    flusher.start()
    assert targets.added.acquire(timeout=30)  # the flush waits (for the gated worker)
    gate.set()
    flusher.join(60)
    assert flushed == [True]
    assert exported == list(range(10_000))
    assert wakeups[0] == 1, wakeups  # 200 batches, one wake-up: when the target was reached
    assert proc.shutdown(10_000)


def test_flushes_in_turn_each_return_when_their_own_records_are_done() -> None:
    proc, gate, exported = _gated(batches=4, batch_size=50)
    targets = _watched(proc)
    first: list[bool] = []
    flusher = threading.Thread(target=lambda: first.append(proc.force_flush(30_000)))
    flusher.start()
    assert targets.added.acquire(timeout=30)
    for i in range(200, 400):  # accepted after the first flush began: the second flush's
        proc.put(i)
    second: list[bool] = []
    later = threading.Thread(target=lambda: second.append(proc.force_flush(30_000)))
    later.start()
    assert targets.added.acquire(timeout=30)
    assert list(targets) == [200, 400]  # each flush waits for what was accepted before it
    gate.set()
    flusher.join(60)
    later.join(60)
    assert first == second == [True]
    assert exported == list(range(400))
    assert proc._flush_targets == []
    assert proc.shutdown(10_000)


def test_a_producer_short_of_room_waits_and_nothing_is_lost() -> None:
    """With the overload policy's wait, a producer short of room is woken as room appears."""
    proc, gate, exported = _gated(0, 16, max_queue_size=64, overload=Overload({"robot": "wait"}))
    gate.set()  # the worker exports at once; the producer outruns it and waits for room
    dropped = sum(proc.put_many(list(range(i, i + 100)), domain="robot") for i in range(0, 5_000, 100))
    assert proc.force_flush(30_000)
    assert dropped == 0
    assert exported == list(range(5_000))
    assert proc._room_wanted == []
    assert proc.shutdown(10_000)
