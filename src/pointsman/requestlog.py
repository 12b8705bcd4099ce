"""The request log record and the Protocol of the stores that keep it.

One record per gateway request: who asked, through which front door, what was decided
and why, which models were tried, what happened, tokens, cost and timings. Records are
written off the request's critical path (a queue drained by a background task) and
flushed on shutdown, so nothing accepted is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pointsman import jsonio

Outcome = Literal["ok", "error", "stream_broken", "client_left", "interrupted"]
"""``client_left``: the client went away mid-stream (costed for what was streamed);
``interrupted``: the gateway shut down before the request finished."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: str
    ts: float
    key: str | None
    user: str | None
    team: str | None
    session: str | None
    requested_model: str
    decision: Mapping[str, Any]
    models_tried: Sequence[str]
    outcome: Outcome
    error: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    baseline_cost_usd: float
    ttft_ms: float | None
    total_ms: float
    stream: bool = False
    messages: Sequence[Mapping[str, Any]] = field(default_factory=list)
    quality: float | None = None
    door: str = "chat"  # the front door it came through (a doors.base.DoorName)
    # of prompt_tokens: read from / written to the prompt cache; of completion_tokens:
    # hidden reasoning (cost_usd prices the cache's share at the catalog's cache prices)
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    # SHA-256 of the last user message's text (kept when the prompt itself is not logged,
    # to join labels and prompts kept elsewhere); the experiment and arm that routed it
    prompt_hash: str | None = None
    experiment: str | None = None
    arm: str | None = None

    def to_json(self) -> str:
        # orjson writes a dataclass as its fields in order (not ``asdict``, which deep-copies
        # the nested decision, ~0.5 ms): the same JSON as a dict of the fields, at half the cost
        return jsonio.dumps_str(self)

    @staticmethod
    def from_mapping(data: Mapping[str, Any]) -> RequestRecord:
        return RequestRecord(**dict(data))


@runtime_checkable
class RequestLog(Protocol):
    async def write(self, record: RequestRecord) -> None:
        """Queue a record; returns at once (never blocks the request on disk I/O)."""
        ...

    async def flush(self) -> None:
        """Write everything queued so far."""
        ...

    async def aclose(self) -> None:
        """Flush and release resources."""
        ...
