"""Re-sent OTLP requests are acknowledged, not stored again: the receiver's idempotence.

A collector or SDK whose export timed out (the reply was lost, the connection dropped) sends the
*same* request again. Without a memory of what was taken, every retry would store its records once
more. So the receiver keeps the SHA-256 digest of each request it took (the signal and the request
body's bytes after gzip: what a retry repeats byte for byte), with the outcome it answered, for
``window_s`` seconds (at most ``max_entries`` digests, the oldest forgotten first). A request whose
digest is in the window is answered with the original outcome and nothing is ingested; one that
arrives while its twin is still being ingested waits for the twin's outcome (bounded), else is
answered retry-later.

What is guaranteed, exactly:

* Only a request that was *taken* is remembered: one refused as a whole (retry-later, bad body,
  budget) is forgotten, so its retry is ingested.
* The window survives a clean restart: :meth:`RecentRequests.save` writes it to ``path`` (temp, fsync,
  rename) after the sinks have drained at shutdown, and a new receiver loads what is still inside
  its window. After a crash (``kill -9``) the digests taken since the last clean shutdown are lost:
  a retry of such a request is stored again (at least once; never lost for the sake of dedup).
* Dedup is per request, so it holds for every signal and every sink behind the receiver. Two
  different requests carrying the same record (a collector that re-batches before retrying) are
  not recognised.

Example::

    recent = RecentRequests(window_s=600)
    key = digest("logs", body)
    if (outcome := recent.begin(key)) is None:   # new: ingest it, then
        recent.finish(key, "taken", 0, "")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from ._internal import fork_safe

_log = logging.getLogger("otel_tele")
#: Collectors retry for minutes (the OpenTelemetry Collector's exporter gives up after 300 s).
DEFAULT_WINDOW_S = 600.0
DEFAULT_MAX_ENTRIES = 100_000
#: How long a re-sent request waits for its twin still being ingested before it is told to retry.
TWIN_WAIT_S = 30.0
FILE_NAME = "otlp-recent-requests.jsonl"


def digest(signal: str, body: bytes) -> bytes:
    """The identity of one request: its signal and the exact bytes of its (inflated) body."""
    return hashlib.sha256(signal.encode() + b"\0" + body).digest()


class Answer:
    """What a request was answered: its refused-record count and message. ``done`` is the event its
    twins wait on while it is in flight, and ``None`` once it finished (an event per remembered
    request would cost ~1.5 kB each: 150 MB for a full window instead of ~25 MB)."""

    __slots__ = ("at", "done", "message", "rejected")

    def __init__(
        self, rejected: int = 0, message: str = "", at: float = 0.0, *, finished: bool = False
    ) -> None:
        self.rejected = rejected
        self.message = message
        self.at = at  # wall-clock seconds when it was taken
        self.done: threading.Event | None = None if finished else threading.Event()

    @property
    def finished(self) -> bool:
        return self.done is None


class RecentRequests:
    """The digests of the requests taken in the last ``window_s`` seconds (see the module docs)."""

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self.path = Path(path) if path is not None else None
        #: Requests answered from the window instead of being ingested again, per signal.
        self.duplicates: dict[str, int] = {}
        self._entries: OrderedDict[bytes, Answer] = OrderedDict()
        self._lock = fork_safe(threading.Lock())
        if self.path is not None:
            self._load(self.path)

    def begin(self, key: bytes, signal: str = "") -> Answer | None:
        """``None``: a new request, now marked in flight (call :meth:`finish` or :meth:`forget`).
        Otherwise the answer its earlier twin got (not ``finished``: the twin is still in flight and
        did not finish within the wait; answer retry-later)."""
        with self._lock:
            self._expire(time.time())
            answer = self._entries.get(key)
            if answer is None:
                self._entries[key] = Answer()
                return None
        event = answer.done
        if event is not None:
            event.wait(TWIN_WAIT_S)
        with self._lock:
            if answer.finished and self._entries.get(key) is answer:
                self.duplicates[signal] = self.duplicates.get(signal, 0) + 1
                return answer
            if event is None or event.is_set():  # the twin was forgotten (refused as a whole): take this
                self._entries[key] = Answer()
                return None
        return answer

    def finish(self, key: bytes, rejected: int, message: str) -> None:
        """The request of ``key`` was taken; remember its answer for the window."""
        with self._lock:
            answer = self._entries.get(key)
            if answer is None:
                answer = self._entries[key] = Answer()
            answer.rejected, answer.message, answer.at = rejected, message or "", time.time()
            event, answer.done = answer.done, None
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        if event is not None:
            event.set()

    def forget(self, key: bytes) -> None:
        """The request of ``key`` was not taken (refused as a whole): its retry must be ingested."""
        with self._lock:
            answer = self._entries.pop(key, None)
        if answer is not None and answer.done is not None:
            answer.done.set()

    def _expire(self, now: float) -> None:
        cutoff = now - self.window_s
        entries = self._entries
        while entries:
            key, answer = next(iter(entries.items()))
            if not answer.finished or answer.at >= cutoff:
                return
            del entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    # -- persistence ----------------------------------------------------------------------------
    def save(self) -> None:
        """Write the window to ``path`` (whole or not at all). Call it after the sinks drained:
        a digest saved for records that never became durable would turn their retry away."""
        if self.path is None:
            return
        with self._lock:
            self._expire(time.time())
            lines = [
                json.dumps({"d": key.hex(), "t": a.at, "r": a.rejected, "m": a.message}) + "\n"
                for key, a in self._entries.items()
                if a.finished
            ]
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as out:
                out.writelines(lines)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            _log.warning("otel-tele serve: the recent-request window could not be saved (%s)", exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _load(self, path: Path) -> None:
        """The saved window, what is still inside it; a damaged line is skipped, a missing file is
        an empty window."""
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            _log.warning("otel-tele serve: the recent-request window could not be read (%s)", exc)
            return
        cutoff = time.time() - self.window_s
        loaded: list[tuple[float, bytes, Answer]] = []
        for line in text.splitlines():
            try:
                item = json.loads(line)
                key = bytes.fromhex(item["d"])
                answer = Answer(int(item["r"]), str(item["m"]), float(item["t"]), finished=True)
            except (ValueError, KeyError, TypeError):
                continue
            if len(key) == 32 and answer.at >= cutoff:
                loaded.append((answer.at, key, answer))
        loaded.sort(key=lambda item: item[0])
        for _at, key, answer in loaded[-self.max_entries :]:
            self._entries[key] = answer
