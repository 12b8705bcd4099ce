"""The one place that builds Redis clients, from the ``redis`` config section.

Every Redis store (latency windows, bandit, health, spend ledger) gets its client from
:func:`redis_client` and hands it to :func:`close_client` when it closes, so timeouts,
pool sizes, retries and Redis Cluster support are the same everywhere. Each store owns
its client (its own pool): closing one store never cuts another's connections.

A single Redis gets a :class:`~redis.asyncio.BlockingConnectionPool` (a burst waits up to
``socket_timeout_s`` for a free connection instead of failing at once); a cluster gets a
:class:`~redis.asyncio.RedisCluster` that finds the other nodes from the one in ``url``
and sends each command to the node owning its keys' hash slot. Nothing connects until the
first command.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from pointsman.redis_config import RedisConfig

AnyRedis: TypeAlias = Redis | RedisCluster
RETRY_CAP_S = 1.0


class PatientCluster(RedisCluster):
    """A :class:`RedisCluster` that waits for a free connection as the single-Redis
    blocking pool does: redis-py's cluster nodes raise ``MaxConnectionsError`` at once when
    a burst needs more than ``max_connections``, which would drop samples and outcomes under
    load. At most ``max_connections`` commands are in flight per client (so per node too);
    a command waits up to ``wait_s`` for its turn, then fails as a connection error.

    The first command runs alone: redis-py discovers the cluster on first use, and commands
    sent concurrently with that discovery can fail with a lost connection."""

    def __init__(self, *args: Any, wait_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(int(kwargs["max_connections"]))
        self._wait_s = wait_s
        self._first: asyncio.Lock | None = asyncio.Lock()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        first = self._first
        if first is not None:
            async with first:
                if self._first is not None:
                    result = await self._execute(*args, **kwargs)
                    self._first = None
                    return result
        return await self._execute(*args, **kwargs)

    async def _execute(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._wait_s):
                await self._turns.acquire()
        except TimeoutError:
            raise RedisConnectionError(
                f"no free Redis Cluster connection within {self._wait_s} s") from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._turns.release()


def _retry(retries: int, backoff_s: float) -> Retry:
    if retries == 0:
        return Retry(NoBackoff(), 0)
    return Retry(ExponentialWithJitterBackoff(cap=RETRY_CAP_S, base=backoff_s), retries)


def redis_client(cfg: RedisConfig, *, retries: int | None = None) -> AnyRedis:
    """A client for ``cfg``; ``retries`` overrides ``cfg.retries`` (the ledger passes 0)."""
    retry = _retry(cfg.retries if retries is None else retries, cfg.retry_backoff_s)
    if cfg.cluster:
        return PatientCluster.from_url(
            cfg.url, max_connections=cfg.max_connections, retry=retry,
            socket_timeout=cfg.socket_timeout_s,
            socket_connect_timeout=cfg.connect_timeout_s, wait_s=cfg.socket_timeout_s)
    pool = BlockingConnectionPool.from_url(
        cfg.url, max_connections=cfg.max_connections, timeout=cfg.socket_timeout_s,
        socket_timeout=cfg.socket_timeout_s, socket_connect_timeout=cfg.connect_timeout_s,
        retry=retry)
    return Redis(connection_pool=pool, retry=retry)


async def close_client(client: AnyRedis) -> None:
    """Close the client and every pooled connection (no unclosed-socket warnings later)."""
    await client.aclose()
    if isinstance(client, Redis):
        await client.connection_pool.disconnect()
