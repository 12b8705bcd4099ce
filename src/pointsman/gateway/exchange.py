"""One request, from routing decision to log record: the lifecycle every door shares.

A door hands over the caller's request translated into the IR (a
:class:`~pointsman.gateway.parse.ChatRequest`); the :class:`Exchange` decides, reserves and
calls through the executor (fallbacks, cooldowns, budgets), answers through the door's
translator (JSON or server-sent events), and records the outcome exactly once: ``refused``
(before any upstream call), ``failed`` (every attempt failed), ``ok`` (answered),
``stream_broken`` (a stream that broke after its first token). Metrics and the request
log are written in :meth:`Exchange.record`, the one place that does.

A non-streaming answer is sent before its outcome reports, metrics and record (its cost is
settled first); those follow within the same ASGI call, so a drain on SIGTERM waits for
them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask
from starlette.responses import Response

from pointsman import jsonio
from pointsman.budget.cost import Cost
from pointsman.doors.base import AnswerContext, Door, StreamEncoder, StreamUsage
from pointsman.errors import PointsmanError, ShuttingDownError
from pointsman.executor import Answer, OpenStream
from pointsman.gateway.auth import Principal
from pointsman.gateway.errors import door_error
from pointsman.gateway.parse import ChatRequest
from pointsman.gateway.respond import ascii_header, decision_headers, tried_models
from pointsman.gateway.sse import EventStream, Last
from pointsman.judging.grading import answer_text
from pointsman.requestlog import Outcome
from pointsman.types import Decision

if TYPE_CHECKING:
    from pointsman.gateway.runtime import Gateway

log = logging.getLogger("pointsman.gateway")
Keep = Callable[[Mapping[str, Any]], Awaitable[None]]
NO_COST = Cost(0, 0, 0.0, False)


class Exchange:
    """The owner of one accepted request (see the module docstring). ``keep``: called with
    the caller's final answer body before it is sent (the Responses door stores it there,
    so a follow-up that names it finds it)."""

    __slots__ = ("chat", "decision", "door", "finishing", "gw", "interrupted", "keep",
                 "principal", "recorded", "request", "request_id", "started")

    def __init__(self, gw: Gateway, door: Door, principal: Principal, chat: ChatRequest,
                 request: Mapping[str, Any], request_id: str, started: float,
                 keep: Keep | None = None) -> None:
        self.gw = gw
        self.door = door
        self.principal = principal
        self.chat = chat
        self.request = request
        self.request_id = request_id
        self.started = started
        self.keep = keep
        self.recorded = False
        self.interrupted = False  # set by the drain (see gateway/drain.py)
        self.finishing = False  # settling and recording: not to be cancelled
        self.decision: Decision | None = None

    async def run(self) -> Response:
        self.gw.drain.track(self)
        if self.gw.telemetry is not None:
            self.gw.telemetry.begin(self.chat, self.door.name, self.request_id)
        try:
            return await self._run()
        except asyncio.CancelledError:
            if not self.interrupted or self.recorded:
                self.gw.drain.done(self)
                raise
            _uncancel()
            return await self.failed(self.decision, shutting_down(), "interrupted")
        except BaseException:  # a bug: answered 500 elsewhere; not left in the drain's list
            self.gw.drain.done(self)
            raise

    async def _run(self) -> Response:
        gw, chat = self.gw, self.chat
        try:
            self.principal.check_model(chat.model)
            decision = self.principal.scoped(await gw.decide(chat), chat.model in gw.catalog,
                                             gw.candidate_names)
        except PointsmanError as exc:
            return await self.refused(exc)
        self.decision = decision
        threshold = gw.cascade_threshold(chat.model)
        if threshold is not None:
            return await self._cascade(decision, threshold)
        if chat.stream:
            return await self._stream(decision)
        try:
            answer = await gw.executor.complete(chat.route, decision, self.upstream_body(),
                                                defer_reports=True)
        except PointsmanError as exc:
            return await self.failed(decision, exc)
        return await self.answered(decision, answer)

    def upstream_body(self) -> dict[str, Any]:
        body = self.chat.body
        if not self.chat.stream:
            return body
        # always ask for usage, to cost the stream; the caller sees it only if asked
        return {**body, "stream_options": {**(body.get("stream_options") or {}),
                                           "include_usage": True}}

    def context(self, model: str, decision: Decision) -> AnswerContext:
        return AnswerContext(model, self.request_id, self.request, decision.input_tokens,
                             self.chat.model not in self.gw.catalog)

    def headers(self, decision: Decision, model: str, attempts: Sequence[str],
                cost_usd: float) -> dict[str, str]:
        headers = decision_headers(decision, model, attempts, cost_usd)
        headers["x-pointsman-request-id"] = self.request_id
        return headers

    # -- outcomes -----------------------------------------------------------------------
    async def refused(self, error: PointsmanError) -> Response:
        """Refused before any upstream call (model not allowed, budget, no candidate)."""
        await self.record(None, "error", (), error=error)
        return door_error(self.door, error, {"x-pointsman-request-id": self.request_id})

    async def failed(self, decision: Decision | None, error: PointsmanError,
                     outcome: Outcome = "error") -> Response:
        tried = tried_models(error)
        await self.record(decision, outcome, tried, error=error)
        headers = {"x-pointsman-request-id": self.request_id,
                   "x-pointsman-attempts": ",".join(tried)}
        if decision is not None:
            headers["x-pointsman-reason"] = ascii_header(decision.reason)
        if outcome == "interrupted":
            headers["retry-after"] = "1"
        return door_error(self.door, error, headers)

    async def answered(self, decision: Decision, answer: Answer,
                       extra: Mapping[str, str] | None = None) -> Response:
        """The answer (its cost already settled), sent before its outcome reports, metrics
        and record (no longer interruptible by the drain: only its record is left)."""
        self.gw.drain.done(self)
        total_ms = (time.perf_counter() - self.started) * 1000
        body = self.door.answer(answer.body, self.context(answer.model, decision))
        if self.keep is not None:
            await self._kept(body)
        headers = self.headers(decision, answer.model, answer.models_tried, answer.cost.usd)
        if extra:
            headers.update(extra)
        return Response(jsonio.dumps(body), 200, headers=headers,
                        media_type="application/json",
                        background=_Report(self, decision, answer, total_ms))

    async def _report(self, decision: Decision, answer: Answer, total_ms: float) -> None:
        if answer.reports is not None:
            await answer.reports()  # a failing recorder is logged, the others still told
        await self.record(decision, "ok", answer.models_tried, model=answer.model,
                          cost=answer.cost, ttft_ms=total_ms, total_ms=total_ms,
                          text=partial(answer_text, answer.body))

    async def _kept(self, body: Mapping[str, Any] | None) -> None:
        if body is None or self.keep is None:
            return
        try:
            await self.keep(body)
        except PointsmanError as exc:  # the answer stands; what is lost is said
            log.error("request %s: answer not stored: %s", self.request_id, exc.message)

    # -- streams ------------------------------------------------------------------------
    async def _stream(self, decision: Decision) -> Response:
        gw = self.gw
        try:
            opened = await gw.executor.stream(self.chat.route, decision, self.upstream_body())
        except PointsmanError as exc:
            return await self.failed(decision, exc)
        estimate = gw.catalog.get(opened.model).cost(decision.input_tokens,
                                                     decision.output_tokens)
        headers = self.headers(decision, opened.model, opened.models_tried, estimate)
        headers["x-pointsman-cost-estimated"] = "true"
        headers["cache-control"] = "no-cache"
        encoder = self.door.encoder(self.context(opened.model, decision))
        return EventStream(self._events(decision, opened, encoder), headers=headers,
                           quiet=self.quiet)

    async def _events(self, decision: Decision, opened: OpenStream, encoder: StreamEncoder
                      ) -> AsyncGenerator[bytes, None]:
        """The caller's events: one write per upstream batch (what arrived together). Once
        the upstream is done the exchange is *finishing*: neither a client that leaves nor
        the drain cancels it any more, so the settle and the record always complete."""
        ended = False
        try:
            try:
                async with aclosing(opened.batches(finish=False)) as batches:
                    async for batch in batches:
                        out = encoder.encode(batch)
                        if out:
                            yield out
            except asyncio.CancelledError:
                if not self.interrupted:
                    raise  # the client left
                _uncancel()  # the drain: the caller is told, the stream is logged
                await self._settle_stream(opened)
                ended = True
                yield encoder.fail(shutting_down())
                return
            await self._settle_stream(opened)
            if opened.broken is not None:
                ended = True
                yield encoder.fail(opened.broken)
                return
            closing = encoder.close(stream_usage(opened.cost or NO_COST))
            if self.keep is not None:
                await self._kept(final_answer(encoder))
            ended = True
            yield Last(closing)
        finally:  # also when the client left (its cancellation is spent by now)
            await self._settle_stream(opened)
            outcome: Outcome = ("interrupted" if self.interrupted
                                else "stream_broken" if opened.broken is not None
                                else "ok" if ended else "client_left")
            await self.record(decision, outcome, opened.models_tried, model=opened.model,
                              error=opened.broken, cost=opened.cost or NO_COST,
                              ttft_ms=opened.ttft_ms, text=opened.meter.text)

    async def _settle_stream(self, opened: OpenStream) -> None:
        self.finishing = True
        await opened.finish()

    def quiet(self) -> bool:
        """Whether the exchange is finishing (settling, recording): not to be cancelled."""
        return self.finishing

    # -- the quality-check cascade ------------------------------------------------------
    async def _cascade(self, decision: Decision, threshold: float) -> Response:
        from pointsman.gateway.cascade_http import cascade_chunks, run_cascade

        try:
            decision, answer, found = await run_cascade(self.gw, self.chat, decision, threshold)
        except PointsmanError as exc:  # the first step found no model at all
            return await self.failed(decision, exc)
        extra = {k: ascii_header(v) for k, v in found.items()}
        if not self.chat.stream:
            return await self.answered(decision, answer, extra)
        headers = {**self.headers(decision, answer.model, answer.models_tried,
                                  answer.cost.usd), **extra, "cache-control": "no-cache"}
        encoder = self.door.encoder(self.context(answer.model, decision))
        return EventStream(self._replay(decision, answer, encoder, cascade_chunks(answer)),
                           headers=headers, quiet=self.quiet)

    async def _replay(self, decision: Decision, answer: Answer, encoder: StreamEncoder,
                      chunks: list[dict[str, Any]]) -> AsyncGenerator[bytes, None]:
        """A finished answer sent as a stream."""
        ttft_ms = (time.perf_counter() - self.started) * 1000
        self.finishing = True  # paid for already: only sending and the record are left
        try:
            yield encoder.encode(chunks)
            closing = encoder.close(stream_usage(answer.cost))
            if self.keep is not None:
                await self._kept(final_answer(encoder))
            yield closing
        finally:
            await self.record(decision, "ok", answer.models_tried, model=answer.model,
                              cost=answer.cost, ttft_ms=ttft_ms,
                              text=partial(answer_text, answer.body))

    # -- the one place a request's outcome is recorded -----------------------------------
    async def record(self, decision: Decision | None, outcome: Outcome,
                     models_tried: Sequence[str], *, model: str | None = None,
                     error: PointsmanError | None = None, cost: Cost = NO_COST,
                     ttft_ms: float | None = None, total_ms: float | None = None,
                     text: Callable[[], str] | None = None) -> None:
        """Metrics and the request log record, once per request whatever happens; an
        answer (``text``: its text) is then offered to judging, which never waits."""
        if self.recorded:
            return
        self.recorded = True
        self.gw.drain.done(self)
        if total_ms is None:
            total_ms = (time.perf_counter() - self.started) * 1000
        gw, door = self.gw, self.door.name
        if error is not None:
            gw.metrics.error(error.code, door)
        if model is not None and outcome in ("ok", "client_left"):
            response_id = f"resp_{self.request_id}" if door == "responses" else None
            await gw.remember(self.chat, model, cost.prompt_tokens, response_id)
        if model is not None:
            gw.metrics.finished(model, outcome, cost.prompt_tokens, cost.completion_tokens,
                                cost.usd, total_ms / 1000,
                                None if ttft_ms is None or not self.chat.stream
                                else ttft_ms / 1000, door)
        if gw.telemetry is not None:
            gw.telemetry.end(self.chat.route, decision, outcome, models_tried, model, error,
                             cost, ttft_ms)
        await gw.write_record(self.request_id, door, self.chat, self.principal, decision,
                              outcome=outcome, models_tried=models_tried, model=model,
                              error=error, cost=cost, ttft_ms=ttft_ms, total_ms=total_ms)
        if gw.judging is not None and text is not None and outcome == "ok" and model:
            gw.judging.offer(self.request_id, self.chat.route,
                             self.chat.body.get("messages") or [], model, text)


class _Report(BackgroundTask):
    """An answered exchange's reports, run after its answer is sent (Starlette's
    ``BackgroundTask`` inspects its function each time to know it is a coroutine)."""

    def __init__(self, exchange: Exchange, decision: Decision, answer: Answer,
                 total_ms: float) -> None:  # no super(): nothing to inspect
        self.work = (exchange, decision, answer, total_ms)

    async def __call__(self) -> None:
        exchange, decision, answer, total_ms = self.work
        await exchange._report(decision, answer, total_ms)


def shutting_down() -> ShuttingDownError:
    return ShuttingDownError("the gateway is shutting down: this request was interrupted "
                             "(retry it)")


def _uncancel() -> None:
    """Take back the drain's cancellation of this task: the request answers and records
    itself instead of being cut."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def stream_usage(cost: Cost) -> StreamUsage:
    """A finished stream's counts for its door's final event (cache and reasoning too)."""
    return StreamUsage(cost.prompt_tokens, cost.completion_tokens, cost.cached_tokens,
                       cost.cache_creation_tokens, cost.reasoning_tokens)


def final_answer(encoder: StreamEncoder) -> Mapping[str, Any] | None:
    """The complete answer an encoder rebuilt from its stream, when it keeps one (the
    Responses door's ``response.completed`` carries it)."""
    final: Callable[[], Mapping[str, Any] | None] | None = getattr(encoder, "final", None)
    return final() if final is not None else None
