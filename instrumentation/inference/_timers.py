"""``load_timer`` / ``thought_timer``: context managers and decorators, sync and async.

A timer opens a GenAI span when it starts and, when it ends, records the spec event (LOAD_LATENCY or
THOUGHT_LATENCY) through its recorder (a :class:`~otel_tele.instrumentation.inference.TelemetryLogger`)
while the span is still current, so the event log record carries the span's trace context. Durations
come from ``time.perf_counter()``. A timer given no recorder asks the one registered with
:func:`use_default_recorder` when it starts (the package registers ``get_telemetry_logger``), so this
module never imports the logger's.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_tele._internal import guard
from otel_tele.semconv import inference as inf

if TYPE_CHECKING:
    from otel_tele._pipeline import Pipeline


class Recorder(Protocol):
    """What a timer records through (``TelemetryLogger`` is one)."""

    @property
    def telemetry(self) -> Pipeline | None: ...

    def record_load(
        self,
        model_name: str,
        load_time_seconds: float,
        success: bool = True,
        *,
        span: bool = True,
        provider: str | None = None,
    ) -> bool: ...

    def record_thought(
        self,
        model_name: str,
        inference_time_seconds: float,
        tokens_generated: int | None,
        prompt_tokens: int | None = None,
        *,
        span: bool = True,
        operation: str | None = None,
        provider: str | None = None,
        error_type: str | None = None,
        time_to_first_token: float | None = None,
    ) -> bool: ...


_default_recorder: list[Callable[[], Recorder]] = []


def use_default_recorder(factory: Callable[[], Recorder]) -> None:
    """The recorder of timers created without one (asked when such a timer starts, so a logger set
    later is the one a decorator records through)."""
    _default_recorder[:] = [factory]


F = TypeVar("F", bound=Callable[..., Any])
TokensFrom = Callable[[Any], Any]


def tokens_of(result: Any) -> tuple[int, int | None] | None:
    """(generated, prompt) tokens from a common response shape: Ollama (``eval_count``,
    ``prompt_eval_count``), OpenAI (``usage.completion_tokens``/``prompt_tokens``) or
    ``usage.output_tokens``/``input_tokens``; None when the result says nothing about tokens (and
    ``None`` for a prompt count it does not give)."""

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    def count(value: Any) -> int | None:
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

    if isinstance(get(result, "eval_count"), int):
        return int(get(result, "eval_count")), count(get(result, "prompt_eval_count"))
    usage = get(result, "usage")
    if usage is None:
        return None
    for out_key, in_key in (("completion_tokens", "prompt_tokens"), ("output_tokens", "input_tokens")):
        if isinstance(get(usage, out_key), int):
            return int(get(usage, out_key)), count(get(usage, in_key))
    return None


class _Timer:
    """Shared mechanics: one timer object is used once; as a decorator it makes a fresh one per call."""

    operation: str = inf.LOAD_OPERATION

    def __init__(
        self,
        model: str,
        *,
        logger: Recorder | None = None,
        operation: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.model = model
        self.provider = provider
        self._logger = logger
        if operation is not None:
            self.operation = operation
        self.seconds: float | None = None
        self._t0 = 0.0
        self._span: Any = None
        self._token: Any = None

    def _fresh(self) -> Self:
        return type(self)(self.model, logger=self._logger, operation=self.operation, provider=self.provider)

    @property
    def logger(self) -> Recorder:
        if self._logger is None:
            if not _default_recorder:
                raise RuntimeError("no default recorder: import otel_tele.instrumentation.inference")
            self._logger = _default_recorder[0]()
        return self._logger

    # -- lifecycle ---------------------------------------------------------------------------------
    def _start(self) -> None:
        with guard("inference timer start"):
            telemetry = self.logger.telemetry
            if telemetry is not None:
                attributes = {inf.OPERATION_NAME: self.operation, inf.REQUEST_MODEL: str(self.model)}
                if self.provider:
                    attributes[inf.PROVIDER_NAME] = self.provider
                self._span = telemetry.tracer("otel_tele.inference").start_span(
                    f"{self.operation} {self.model}", kind=SpanKind.CLIENT, attributes=attributes
                )
                self._token = otel_context.attach(trace.set_span_in_context(self._span))
        self._t0 = time.perf_counter()

    def _stop(self, exc: BaseException | None) -> None:
        self.seconds = time.perf_counter() - self._t0
        with guard("inference timer stop"):
            error_type = type(exc).__qualname__ if exc is not None else None
            try:
                self._record(error_type)
            finally:
                self._end_span(exc, error_type)

    def _end_span(self, exc: BaseException | None, error_type: str | None) -> None:
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None
        if self._span is None:
            return
        if exc is not None:
            self._span.record_exception(exc)
            self._span.set_attribute(inf.ERROR_TYPE, error_type or "error")
            self._span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
        self._span.end()

    def _record(self, error_type: str | None) -> None:
        raise NotImplementedError

    # -- protocols ---------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop(exc)

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop(exc)

    def _on_result(self, result: Any) -> None:
        """Decorator hook: learn from the wrapped function's return value."""

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh() as timer:
                    result = await fn(*args, **kwargs)
                    timer._on_result(result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh() as timer:
                result = fn(*args, **kwargs)
                timer._on_result(result)
                return result

        return wrapper  # type: ignore[return-value]


class LoadTimer(_Timer):
    """Times a model load into VRAM; an exception inside marks it failed (and propagates)."""

    def _record(self, error_type: str | None) -> None:
        self.logger.record_load(
            self.model, self.seconds or 0.0, success=error_type is None, span=False, provider=self.provider
        )


class ThoughtTimer(_Timer):
    """Times an inference; call :meth:`tokens` before the block ends (decorators read the result) and,
    when streaming, :meth:`first_token` as the first token arrives. Counts never given stay unknown
    (absent from the record, never zero)."""

    operation = inf.DEFAULT_OPERATION

    def __init__(
        self,
        model: str,
        *,
        logger: Recorder | None = None,
        operation: str | None = None,
        provider: str | None = None,
        tokens_from: TokensFrom | None = None,
    ) -> None:
        super().__init__(model, logger=logger, operation=operation, provider=provider)
        self.tokens_from = tokens_from
        self.tokens_generated: int | None = None
        self.prompt_tokens: int | None = None
        self.time_to_first_token: float | None = None

    def _fresh(self) -> Self:
        return type(self)(
            self.model,
            logger=self._logger,
            operation=self.operation,
            provider=self.provider,
            tokens_from=self.tokens_from,
        )

    def tokens(self, generated: int | None, prompt: int | None = None) -> None:
        """Set the token counts of this inference (``None``: not known)."""
        self.tokens_generated, self.prompt_tokens = generated, prompt

    def first_token(self) -> None:
        """Mark the first output token (streaming): records ``gen_ai.server.time_to_first_token``.
        Only the first call counts."""
        if self.time_to_first_token is None:
            self.time_to_first_token = time.perf_counter() - self._t0

    def _on_result(self, result: Any) -> None:
        with guard("thought_timer tokens_from"):
            found = self.tokens_from(result) if self.tokens_from is not None else tokens_of(result)
            if isinstance(found, int):
                found = (found, None)
            if found is not None:
                self.tokens(*found)

    def _record(self, error_type: str | None) -> None:
        self.logger.record_thought(
            self.model,
            self.seconds or 0.0,
            self.tokens_generated,
            self.prompt_tokens,
            span=False,
            operation=self.operation,
            provider=self.provider,
            error_type=error_type,
            time_to_first_token=self.time_to_first_token,
        )


def load_timer(model: str, *, logger: Recorder | None = None, provider: str | None = None) -> LoadTimer:
    """Time a model load: ``with load_timer("gemma2:27b"): ...``, ``async with``, or ``@load_timer(...)``.

    Example::

        with load_timer("gemma2:27b") as t:
            client.load("gemma2:27b")
        print(t.seconds)
    """
    return LoadTimer(model, logger=logger, provider=provider)


def thought_timer(
    model: str,
    *,
    logger: Recorder | None = None,
    operation: str | None = None,
    provider: str | None = None,
    tokens_from: TokensFrom | None = None,
) -> ThoughtTimer:
    """Time an inference and record its efficiency (ms per generated token).

    Example::

        with thought_timer("gemma2:27b") as t:
            reply = client.generate(model="gemma2:27b", prompt=prompt)
            t.tokens(generated=reply["eval_count"], prompt=reply["prompt_eval_count"])

        @thought_timer("gemma2:27b")  # tokens read from the returned response (Ollama/OpenAI shapes)
        async def ask(prompt: str) -> dict: ...
    """
    return ThoughtTimer(model, logger=logger, operation=operation, provider=provider, tokens_from=tokens_from)
