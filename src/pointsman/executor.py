"""The executor: carries a routing :class:`~pointsman.types.Decision` out.

It tries ``[decision.model, *decision.fallbacks]`` in order and, for each model, its
deployments in the order the :class:`~pointsman.state.DeploymentChooser` gives. On 429,
5xx, connection errors, timeouts (connect, first token, total) and a stream that breaks
before its first token it moves on; ``Retry-After`` is honoured, and retries of the same
deployment wait a bounded exponential backoff with jitter. An upstream that refuses
pointsman itself (401, 403, 404: :class:`~pointsman.errors.UpstreamMisconfiguredError`) is
not retried but the chain moves on; a non-retryable 4xx about the request (400, 422:
:class:`~pointsman.errors.UpstreamRejectedError`) stops the chain and goes back as-is.
When everything fails, :class:`~pointsman.errors.AllAttemptsFailedError` lists every
attempt. Each model's estimated cost is reserved on the budget guard before its first
call, settled with the actual cost (catalog prices × usage) after, released on failure.
Every attempt is reported to the :class:`~pointsman.state.OutcomeRecorder` s.

Streams: :meth:`Executor.stream` returns once the first token has arrived (chunks before
it, such as the role chunk, are held back), so a stream that breaks before its first token
falls back invisibly; one that breaks later ends with :attr:`OpenStream.broken` set.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from pointsman.budget.cost import Cost, StreamMeter, chunk_text, cost_of, counted_cost
from pointsman.catalog import Catalog
from pointsman.deadlines import limited
from pointsman.errors import (
    AllAttemptsFailedError,
    Attempt,
    BudgetExceededError,
    PermissionDeniedError,
    PointsmanError,
    ProviderError,
    RateLimitedError,
    StreamBrokenError,
    UpstreamMisconfiguredError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from pointsman.gateway.config import RetryConfig
from pointsman.health import HealthStore
from pointsman.providers.base import ChatCall, ChatResult, Provider, Timeouts
from pointsman.state import (
    AttemptOutcome,
    BudgetGuard,
    DeploymentChooser,
    OutcomeRecorder,
    Reservation,
)
from pointsman.tokens import estimate_text_tokens
from pointsman.types import NO_DEPLOYMENT, Decision, ModelSpec, RouteRequest

log = logging.getLogger("pointsman.executor")
T = TypeVar("T")
Chunk = Mapping[str, Any]


class Deployment(Protocol):
    """One endpoint serving one model (helper-built adapters provide these)."""

    @property
    def name(self) -> str: ...

    @property
    def provider(self) -> Provider: ...

    @property
    def upstream_model(self) -> str: ...

    @property
    def timeouts(self) -> Timeouts: ...


class DeploymentSource(Protocol):
    def deployments(self, model: str) -> Sequence[Deployment]: ...


class ConfiguredOrder:
    """The plain :class:`~pointsman.state.DeploymentChooser`: the configured order."""

    async def order(self, model: str, deployments: Sequence[str]) -> list[str]:
        return list(deployments)


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished non-streaming call.

    ``reports``: only from ``complete(..., defer_reports=True)``: the outcome reports
    (health, latency, bandit, metrics) still to run; await it once, after answering."""

    model: str
    deployment: str
    body: dict[str, Any]
    cost: Cost
    total_ms: float
    attempts: tuple[Attempt, ...]
    models_tried: tuple[str, ...]
    reports: Callable[[], Awaitable[None]] | None = None


@dataclass(slots=True)
class _Run:
    """The state of one request's walk down the chain."""

    request: RouteRequest
    decision: Decision
    body: Mapping[str, Any]
    started: float
    attempts: list[Attempt] = field(default_factory=list)
    models_tried: list[str] = field(default_factory=list)
    refusals: list[PointsmanError] = field(default_factory=list)
    alone: bool = False  # the deployment being tried is the chain's last


@dataclass(slots=True)
class _Hit:
    """A successful first contact: the model, deployment and budget hold that answered."""

    spec: ModelSpec
    deployment: Deployment
    reservation: Reservation | None
    started: float


def _close_iterator(iterator: AsyncIterator[Any]) -> Awaitable[None] | None:
    aclose = getattr(iterator, "aclose", None)
    return aclose() if aclose is not None else None


def stream_batches(provider: Provider, call: ChatCall) -> AsyncIterator[list[Chunk]]:
    """The provider's stream in batches: its own when it has them (a
    :class:`~pointsman.providers.base.BatchStreaming`), else one chunk each."""
    batches = getattr(provider, "stream_batches", None)  # isinstance on a Protocol: ~10 µs
    if batches is not None:
        stream: AsyncIterator[list[Chunk]] = batches(call)
        return stream
    return _one_by_one(provider.stream(call))


async def _one_by_one(chunks: AsyncIterator[Chunk]) -> AsyncGenerator[list[Chunk], None]:
    try:
        async for chunk in chunks:
            yield [chunk]
    finally:
        await _maybe_await(_close_iterator(chunks))


class Executor:
    def __init__(self, catalog: Catalog, source: DeploymentSource, *,
                 chooser: DeploymentChooser | None = None,
                 health: HealthStore | None = None,
                 recorders: Sequence[OutcomeRecorder] = (),
                 guard: BudgetGuard | None = None,
                 retry: RetryConfig | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.perf_counter,
                 rng: random.Random | None = None) -> None:
        self.catalog = catalog
        self.source = source
        self.chooser: DeploymentChooser = chooser or ConfiguredOrder()
        self.health = health
        self.recorders = tuple(recorders)
        self.guard = guard
        self.retry = retry or RetryConfig()
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()

    # -- public -------------------------------------------------------------------------
    async def complete(self, request: RouteRequest, decision: Decision,
                       body: Mapping[str, Any], *, defer_reports: bool = False) -> Answer:
        """Walk the decision's chain to the first answer and settle its cost. With
        ``defer_reports`` the outcome reports are left to the caller, as
        :attr:`Answer.reports`, so that it can answer first."""
        run = _Run(request, decision, body, self.clock())
        hit, result = await self._walk(run, self._complete_once)
        cost = self._completion_cost(hit.spec, result, decision.input_tokens)
        total_ms = (self.clock() - hit.started) * 1000
        await self._settle(hit, cost)
        reports = partial(self.report, run.request, self._outcome(hit, cost, total_ms, total_ms))
        if not defer_reports:
            await reports()
        answer_body = {**result.body, "model": hit.spec.name}
        return Answer(hit.spec.name, hit.deployment.name, answer_body, cost,
                      (self.clock() - run.started) * 1000, tuple(run.attempts),
                      tuple(run.models_tried), reports if defer_reports else None)

    async def stream(self, request: RouteRequest, decision: Decision,
                     body: Mapping[str, Any]) -> OpenStream:
        run = _Run(request, decision, body, self.clock())
        hit, (held, iterator) = await self._walk(run, self._open_once)
        return OpenStream(self, run, hit, held, iterator)

    # -- the chain ----------------------------------------------------------------------
    async def _walk(self, run: _Run,
                    once: Callable[[Deployment, ChatCall], Awaitable[T]]) -> tuple[_Hit, T]:
        for model in (run.decision.model, *run.decision.fallbacks):
            found = await self._try_model(run, self.catalog.get(model), once)
            if found is not None:
                return found
        if run.refusals and len(run.refusals) == len(run.attempts):
            raise run.refusals[0]  # nothing was tried: every model was refused a budget
        raise AllAttemptsFailedError(run.attempts)

    async def _reserve(self, run: _Run, spec: ModelSpec) -> Reservation | bool:
        if self.guard is None:
            return True
        estimate = spec.cost(run.decision.input_tokens, run.decision.output_tokens)
        try:
            return await self.guard.reserve(run.request, spec.name, estimate)
        except PointsmanError as exc:
            if isinstance(exc, ProviderError) or not _is_refusal(exc):
                raise
            run.refusals.append(exc)
            run.attempts.append(Attempt(spec.name, exc.message, exc.code))
            return False

    async def _release(self, hold: Reservation | None) -> None:
        if hold is not None and self.guard is not None:
            await self.guard.release(hold)

    async def _try_model(self, run: _Run, spec: ModelSpec,
                         once: Callable[[Deployment, ChatCall], Awaitable[T]]
                         ) -> tuple[_Hit, T] | None:
        deployments = {d.name: d for d in self.source.deployments(spec.name)}
        order = await self.chooser.order(spec.name, list(deployments))
        run.models_tried.append(spec.name)
        if not deployments:
            run.attempts.append(Attempt(spec.name, NO_DEPLOYMENT, "no_deployment"))
            return None
        if not order:
            run.attempts.append(Attempt(spec.name, "every deployment is cooling down",
                                        "cooling_down"))
            return None
        reservation = await self._reserve(run, spec)  # per model, before its first call
        if reservation is False:
            return None
        hold = reservation if isinstance(reservation, Reservation) else None
        last_model = spec.name == (run.decision.fallbacks or (run.decision.model,))[-1]
        try:
            for i, name in enumerate(order):
                run.alone = last_model and i == len(order) - 1
                found = await self._try_deployment(run, spec, deployments[name], hold, once)
                if found is not None:
                    return found
        except BaseException:
            await self._release(hold)
            raise
        await self._release(hold)
        return None

    async def _try_deployment(self, run: _Run, spec: ModelSpec, dep: Deployment,
                              hold: Reservation | None,
                              once: Callable[[Deployment, ChatCall], Awaitable[T]]
                              ) -> tuple[_Hit, T] | None:
        if self.health is not None and not await self.health.acquire(dep.name):
            run.attempts.append(Attempt(spec.name, f"[{dep.name}] cooling down", "cooling_down"))
            return None
        call = ChatCall({**run.body, "model": dep.upstream_model or spec.wire_name},
                        dep.timeouts)
        for retry in range(self.retry.max_retries + 1):
            started = self.clock()
            try:
                return _Hit(spec, dep, hold, started), await once(dep, call)
            except UpstreamRejectedError as exc:
                await self._failed(run, spec, dep, exc, started)
                exc.model = spec.name  # the catalog name, for the x-pointsman-attempts header
                raise
            except ProviderError as exc:
                await self._failed(run, spec, dep, exc, started)
                if isinstance(exc, RateLimitedError) and not run.alone:
                    return None  # a busy deployment: try the next one before waiting here
                delay = self.retry_delay(exc, retry)
                if delay is None:
                    return None
                await self.sleep(delay)
        return None

    def retry_delay(self, exc: ProviderError, retry: int) -> float | None:
        """Seconds to wait before retrying the same deployment, or None to move on."""
        cfg = self.retry
        if retry >= cfg.max_retries or isinstance(exc, UpstreamTimeoutError
                                                  | UpstreamMisconfiguredError):
            return None
        step = min(cfg.backoff_cap_s, cfg.backoff_base_s * 2.0 ** retry)
        jittered = step / 2 + self.rng.uniform(0, step / 2)
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            wait = exc.retry_after
            if wait > cfg.backoff_cap_s:
                return None  # too long to wait here: try the next deployment or model
            return max(wait, jittered)
        return jittered

    # -- one call -----------------------------------------------------------------------
    async def _complete_once(self, dep: Deployment, call: ChatCall) -> ChatResult:
        if getattr(dep.provider, "bounds_calls", False):  # its own Deadline, the same limit
            return await dep.provider.complete(call)
        loop = asyncio.get_running_loop()
        try:
            return await limited(dep.provider.complete(call), loop.time() + dep.timeouts.total,
                                 loop)
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"no answer within the total timeout of {dep.timeouts.total}s",
                call.body.get("model", "")) from None

    async def _open_once(self, dep: Deployment, call: ChatCall
                         ) -> tuple[list[Chunk], AsyncIterator[list[Chunk]]]:
        iterator = aiter(stream_batches(dep.provider, call))
        held: list[Chunk] = []
        loop = asyncio.get_running_loop()
        try:
            await limited(_first_token(iterator, held), loop.time() + dep.timeouts.first_token,
                          loop)
            return held, iterator
        except TimeoutError:
            error: ProviderError = UpstreamTimeoutError(
                f"no first token within {dep.timeouts.first_token}s", call.body.get("model", ""))
        except StopAsyncIteration:
            error = StreamBrokenError("the stream ended before its first token")
        except BaseException:
            await _maybe_await(_close_iterator(iterator))
            raise
        await _maybe_await(_close_iterator(iterator))
        raise error

    # -- outcomes -----------------------------------------------------------------------
    @staticmethod
    def _completion_cost(spec: ModelSpec, result: ChatResult, prompt_estimate: int) -> Cost:
        if result.usage is not None:
            return cost_of(spec, result.usage)
        text = "".join(str((choice.get("message") or {}).get("content") or "")
                       for choice in result.body.get("choices") or ())
        return counted_cost(spec, prompt_estimate, estimate_text_tokens(text))

    async def _failed(self, run: _Run, spec: ModelSpec, dep: Deployment, exc: ProviderError,
                      started: float) -> None:
        run.attempts.append(Attempt(spec.name, f"[{dep.name}] {exc.message}", exc.code))
        retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
        outcome = AttemptOutcome(
            spec.name, dep.name, False, exc.code, None, (self.clock() - started) * 1000, 0, 0,
            0.0, timed_out=isinstance(exc, UpstreamTimeoutError),
            metadata={"retry_after": retry_after} if retry_after is not None else {})
        await self.report(run.request, outcome)

    async def _succeeded(self, run: _Run, hit: _Hit, cost: Cost, ttft_ms: float | None,
                         total_ms: float, error: ProviderError | None = None) -> None:
        await self._settle(hit, cost)
        await self.report(run.request, self._outcome(hit, cost, ttft_ms, total_ms, error))

    async def _settle(self, hit: _Hit, cost: Cost) -> None:
        if hit.reservation is not None and self.guard is not None:
            await self.guard.settle(hit.reservation, cost.usd)

    @staticmethod
    def _outcome(hit: _Hit, cost: Cost, ttft_ms: float | None, total_ms: float,
                 error: ProviderError | None = None) -> AttemptOutcome:
        return AttemptOutcome(
            hit.spec.name, hit.deployment.name, error is None,
            error.code if error is not None else None, ttft_ms, total_ms,
            cost.prompt_tokens, cost.completion_tokens, cost.usd,
            timed_out=isinstance(error, UpstreamTimeoutError))

    async def report(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        """Tell every recorder; one that fails is logged and does not stop the others."""
        for recorder in self.recorders:
            try:
                await recorder.record(request, outcome)
            except Exception:
                log.exception("outcome recorder %s failed", type(recorder).__name__)


class OpenStream:
    """A stream that has produced its first token. Iterate :meth:`batches` once; after it,
    :attr:`cost`, :attr:`broken` and :attr:`ttft_ms` say how it went."""

    def __init__(self, executor: Executor, run: _Run, hit: _Hit, held: list[Chunk],
                 iterator: AsyncIterator[list[Chunk]]) -> None:
        self._executor = executor
        self._run = run
        self._hit = hit
        self._held = held
        self._iterator = iterator
        self.model = hit.spec.name
        self.deployment = hit.deployment.name
        self.attempts = tuple(run.attempts)
        self.models_tried = tuple(run.models_tried)
        self.ttft_ms = (executor.clock() - hit.started) * 1000
        self.meter = StreamMeter(hit.spec, run.decision.input_tokens)
        self.broken: ProviderError | None = None
        self.cost: Cost | None = None
        self.total_ms: float = 0.0

    async def batches(self, finish: bool = True) -> AsyncGenerator[list[Chunk], None]:
        """The upstream chunks (first token included), those that arrived together in one
        list; ends early when the stream breaks. With ``finish`` the stream is settled and
        reported when they end (in a task of its own, so that even a cancellation at that
        moment cannot lose the charge); without, the caller awaits :meth:`finish` itself,
        where nothing can cancel it (the gateway's exchange does: it saves two tasks a
        stream).

        The adapter bounds each wait by the call's deadlines (the Provider contract); here
        the total is only checked between batches, which costs a clock read instead of a
        timer per chunk."""
        try:
            held, self._held = self._held, []
            if held:
                self.meter.feed_all(held)
                yield held
            loop = asyncio.get_running_loop()
            total = self._hit.deployment.timeouts.total
            deadline = loop.time() + total
            try:
                async for batch in self._iterator:
                    self.meter.feed_all(batch)
                    yield batch
                    if loop.time() > deadline:
                        self.broken = UpstreamTimeoutError(
                            f"the stream exceeded the total timeout of {total}s", self.model)
                        return
            except ProviderError as exc:
                self.broken = exc
        finally:
            if finish:
                await protected(self.finish())

    async def finish(self) -> None:
        """Close the upstream, cost what was streamed, settle it and report (once)."""
        if self.cost is not None:
            return
        await _maybe_await(_close_iterator(self._iterator))
        self.cost = self.meter.cost()
        self.total_ms = (self._executor.clock() - self._hit.started) * 1000
        error = self.broken
        if error is not None and not isinstance(error, StreamBrokenError | UpstreamTimeoutError):
            error = StreamBrokenError(f"the stream broke after its first token: {error.message}",
                                      self.model)
            self.broken = error
        await self._executor._succeeded(self._run, self._hit, self.cost, self.ttft_ms,
                                        self.total_ms, error)


async def _first_token(iterator: AsyncIterator[list[Chunk]], held: list[Chunk]) -> None:
    """Read batches into ``held`` until one has a token."""
    while True:
        batch = await anext(iterator)
        held.extend(batch)
        if any(map(_has_token, batch)):
            return


def _has_token(chunk: Chunk) -> bool:
    if chunk_text(chunk) or chunk.get("usage"):
        return True
    return any(choice.get("finish_reason") for choice in chunk.get("choices") or ())


def _is_refusal(exc: PointsmanError) -> bool:
    return isinstance(exc, BudgetExceededError | PermissionDeniedError)


_PROTECTED: set[asyncio.Task[Any]] = set()


async def protected(work: Awaitable[T]) -> T:
    """Await ``work`` in a task of its own that a cancellation of the caller does not stop
    (money settles and records are written even when a client leaves at that moment); the
    caller still sees its cancellation. The task is kept referenced until it is done."""
    task: asyncio.Task[T] = asyncio.ensure_future(work)
    _PROTECTED.add(task)
    task.add_done_callback(_PROTECTED.discard)
    return await asyncio.shield(task)


async def _maybe_await(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value
