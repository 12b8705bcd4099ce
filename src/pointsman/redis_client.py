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

from typing import TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff

from pointsman.redis_config import RedisConfig

AnyRedis: TypeAlias = Redis | RedisCluster
RETRY_CAP_S = 1.0


def _retry(retries: int, backoff_s: float) -> Retry:
    if retries == 0:
        return Retry(NoBackoff(), 0)
    return Retry(ExponentialWithJitterBackoff(cap=RETRY_CAP_S, base=backoff_s), retries)


def redis_client(cfg: RedisConfig, *, retries: int | None = None) -> AnyRedis:
    """A client for ``cfg``; ``retries`` overrides ``cfg.retries`` (the ledger passes 0)."""
    retry = _retry(cfg.retries if retries is None else retries, cfg.retry_backoff_s)
    if cfg.cluster:
        return RedisCluster.from_url(
            cfg.url, max_connections=cfg.max_connections, retry=retry,
            socket_timeout=cfg.socket_timeout_s,
            socket_connect_timeout=cfg.connect_timeout_s)
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
