"""Session affinity: the turns of one conversation stay on the model that served the
previous turn, unless switching saves more than that model's prompt cache is worth.

A conversation is named by the request's session (``x-pointsman-session``, Claude Code's
``X-Claude-Code-Session-Id``, Codex's ``session-id`` or ``prompt_cache_key``, the Messages
door's ``metadata.user_id``, a Responses ``previous_response_id``: see
:mod:`pointsman.gateway.parse`). After each answered turn the store keeps (model, prompt
tokens); the next turn's prompt starts with that prompt, so those tokens are the prefix the
provider can serve from its cache. The pure decision is :func:`keep_or_move`, used by the
router; this module's stores are the I/O around it.

Config (``affinity:``)::

    affinity:
      enabled: true
      store: memory            # or redis (shared by replicas)
      redis_url: redis://127.0.0.1:6379/0
      redis_prefix: "pointsman:affinity:"
      ttl_s: 3600              # a conversation idle this long is forgotten
      allow_upgrade: true      # the router may still move a turn to a higher tier
      max_sessions: 100000     # memory store: the least recently used are forgotten
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from pointsman.errors import StoreUnavailableError
from pointsman.types import TIERS, LiveState, ModelSpec, RouteRequest, SessionView


class AffinityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True,
                          description="Keep a conversation's turns on the model that served the "
                                      "previous one.")
    store: Literal["memory", "redis"] = Field(default="memory",
                                              description="Where sessions are kept: this process "
                                                          "(memory) or Redis (shared by replicas).")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0",
                           description="The Redis for store: redis.")
    redis_prefix: str = Field(default="pointsman:affinity:",
                              description="Prefix of the session keys in Redis.")
    socket_timeout_s: float = Field(default=2.0, gt=0,
                                    description="Seconds a Redis command may take.")
    ttl_s: float = Field(default=3600.0, gt=0,
                         description="Seconds an idle conversation is remembered.")
    allow_upgrade: bool = Field(default=True,
                                description="Let the router still move a turn to a higher tier.")
    max_sessions: int = Field(default=100_000, gt=0,
                              description="Sessions the memory store keeps (least recently used "
                                          "forgotten).")


# -- the pure decision ------------------------------------------------------------------

def cached_cost(spec: ModelSpec, input_tokens: int, output_tokens: int, cached: int) -> float:
    """US dollars of a call whose first ``cached`` input tokens are read from the cache."""
    read = spec.input_price if spec.cache_read_price is None else spec.cache_read_price
    return ((input_tokens - cached) * spec.input_price + cached * read
            + output_tokens * spec.output_price) / 1e6


def keep_or_move(previous: ModelSpec, chosen: ModelSpec, view: SessionView, input_tokens: int,
                 output_tokens: int, allow_upgrade: bool) -> tuple[ModelSpec, str]:
    """(the model for this turn, why). Staying costs the turn at ``previous`` with its
    cached prefix; moving costs it at ``chosen`` with none. Move when that is cheaper, or
    (``allow_upgrade``) when the router chose a higher tier."""
    if allow_upgrade and TIERS.index(chosen.tier) > TIERS.index(previous.tier):
        return chosen, (f"session {view.session!r} moved up from {previous.name} "
                        f"(tier {previous.tier} -> {chosen.tier})")
    prefix = min(view.prefix_tokens, input_tokens)
    stay = cached_cost(previous, input_tokens, output_tokens, prefix)
    move = chosen.cost(input_tokens, output_tokens)
    worth = previous.cost(input_tokens, output_tokens) - stay
    if move < stay:
        return chosen, (f"session {view.session!r} moved from {previous.name}: saves "
                        f"${stay - move:.6f} after giving up a prompt cache worth "
                        f"${worth:.6f}")
    return previous, (f"session {view.session!r} kept on {previous.name}: its cached prefix "
                      f"of {prefix} tokens is worth ${worth:.6f}; moving to {chosen.name} "
                      f"would cost ${move - stay:.6f} more")


# -- the stores ---------------------------------------------------------------------------

class AffinityStore(Protocol):
    async def get(self, session: str) -> SessionView | None: ...

    async def put(self, session: str, model: str, prefix_tokens: int) -> None: ...

    async def aclose(self) -> None: ...


class MemoryAffinity:
    """This process's sessions, least recently used forgotten past ``max_sessions``."""

    def __init__(self, cfg: AffinityConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self._sessions: OrderedDict[str, tuple[str, int, float]] = OrderedDict()

    async def get(self, session: str) -> SessionView | None:
        found = self._sessions.get(session)
        if found is None:
            return None
        model, prefix, at = found
        if self.clock() - at > self.cfg.ttl_s:
            del self._sessions[session]
            return None
        return SessionView(session, model, prefix)

    async def put(self, session: str, model: str, prefix_tokens: int) -> None:
        self._sessions[session] = (model, prefix_tokens, self.clock())
        self._sessions.move_to_end(session)
        while len(self._sessions) > self.cfg.max_sessions:
            self._sessions.popitem(last=False)

    async def aclose(self) -> None:
        self._sessions.clear()


class RedisAffinity:
    """Sessions shared by replicas: one hash per session (one key: Redis Cluster safe),
    expiring after ``ttl_s`` idle."""

    def __init__(self, cfg: AffinityConfig) -> None:
        from redis.asyncio import Redis

        self.cfg = cfg
        self.redis = Redis.from_url(cfg.redis_url, socket_timeout=cfg.socket_timeout_s,
                                    socket_connect_timeout=cfg.socket_timeout_s,
                                    decode_responses=True)

    def _key(self, session: str) -> str:
        return f"{self.cfg.redis_prefix}{session}"

    async def get(self, session: str) -> SessionView | None:
        from redis.exceptions import RedisError

        try:
            found = await self.redis.hmget(self._key(session), ["m", "p"])
        except RedisError as exc:
            raise StoreUnavailableError(f"affinity store: {exc}") from None
        if found[0] is None:
            return None
        return SessionView(session, str(found[0]), int(found[1] or 0))

    async def put(self, session: str, model: str, prefix_tokens: int) -> None:
        from redis.exceptions import RedisError

        key = self._key(session)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"m": model, "p": prefix_tokens})
                pipe.expire(key, int(self.cfg.ttl_s))
                await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailableError(f"affinity store: {exc}") from None

    async def aclose(self) -> None:
        await self.redis.aclose()


def build_affinity(cfg: AffinityConfig) -> AffinityStore | None:
    if not cfg.enabled:
        return None
    if cfg.store == "redis":
        return RedisAffinity(cfg)
    return MemoryAffinity(cfg)


class AffinitySource:
    """The :class:`~pointsman.state.StateSource` that puts the request's session (the
    model of its previous turn and its cached prefix) into the live state. A store that
    cannot be reached is no reason to refuse a request: the turn is routed afresh."""

    def __init__(self, store: AffinityStore) -> None:
        self.store = store

    async def contribute(self, request: RouteRequest, state: LiveState) -> LiveState:
        session = session_key(request)
        if session is None:
            return state
        try:
            view = await self.store.get(session)
        except StoreUnavailableError:
            return state
        return state if view is None else state.replace(session=view)


def session_key(request: RouteRequest, session: str | None = None) -> str | None:
    """The store's key of a request's conversation: its API key's name and the session
    (one key's callers cannot steer another key's conversations)."""
    meta = request.metadata
    session = session or meta.get("session")
    if session is None:
        return None
    return f"{meta.get('key') or '-'}/{session}"
