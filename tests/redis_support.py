"""The shared loopback Redis the tests use, cleaning up after a test's own keys, and a
redis-server of a test's own for the tests that stop or freeze Redis."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from pointsman.budget.config import BudgetsConfig
from pointsman.budget.factory import build_ledger
from pointsman.budget.redis_ledger import RedisLedger

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_ledger(prefix: str) -> RedisLedger:
    """A spend ledger on the shared Redis under ``prefix``, built as the gateway builds it,
    with timeouts for a machine at load 15 (200 connections opened at once there can take
    seconds): these tests are about exactness, not speed."""
    ledger = build_ledger(BudgetsConfig(store="redis", redis_prefix=prefix,
                                        socket_timeout_s=10, connect_timeout_s=10))
    assert isinstance(ledger, RedisLedger)
    return ledger


def drop_prefix(prefix: str) -> None:
    """Delete the keys under this test's unique prefix (never FLUSHDB: the Redis is shared)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """Our own redis-server on a free loopback port (the shared Redis is never touched).

    With ``data_dir`` its data is kept in an append-only file there, so a stop and start
    keeps it; without, a restart gives an empty Redis.
    """

    def __init__(self, port: int, data_dir: Path | None = None) -> None:
        self.port = port
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = (["--appendonly", "yes", "--appendfsync", "always", "--dir",
                        str(self.data_dir)] if self.data_dir is not None
                       else ["--appendonly", "no"])
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def freeze(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung Redis)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None
