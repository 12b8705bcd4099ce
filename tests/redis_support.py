"""The shared loopback Redis the tests use, and cleaning up after a test's own keys."""

from __future__ import annotations

import redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def drop_prefix(prefix: str) -> None:
    """Delete the keys under this test's unique prefix (never FLUSHDB: the Redis is shared)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
