"""A local 3-master Redis Cluster for the tests: ``redis_cluster`` (session-scoped, started
once, on free loopback ports, in a temporary directory; processes killed and the directory
removed at the end). Skips when redis-server or redis-cli is not installed.

Patient on purpose: on a busy 2-core machine a node can take seconds to start or to answer
a gossip ping, so startup waits for ``cluster_state:ok`` on every node with a generous
deadline, and the node timeout is a minute (a slow node is never declared failed, which
would put a replica-less cluster down mid-test).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from pointsman.redis_config import RedisConfig
from redis_support import REDIS_URL

STARTUP_DEADLINE_S = 180.0
NODE_TIMEOUT_MS = 60_000
BUS_OFFSET = 10_000  # a cluster node also listens on port + 10000 (the cluster bus)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` ports free now whose cluster-bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + BUS_OFFSET <= 65_535 and port not in ports and _port_free(port + BUS_OFFSET):
            ports.append(port)
    return ports


def cluster_ok(client: redis.Redis) -> bool:
    info = cast(Any, client).execute_command("CLUSTER INFO")
    if isinstance(info, dict):
        return str(info.get("cluster_state")) == "ok"
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


class LocalCluster:
    """Three redis-server processes in cluster mode, joined with ``redis-cli --cluster
    create`` (no replicas), each in its own folder under ``root``."""

    def __init__(self, root: Path, ports: list[int]) -> None:
        self.root = root
        self.ports = ports
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """A startup node; the client discovers the other two."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            folder = self.root / str(port)
            folder.mkdir()
            with open(folder / "redis.log", "wb") as log:
                self.procs.append(subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--dir", str(folder),
                     "--save", "", "--appendonly", "no"],
                    stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        for port in self.ports:
            self._wait(deadline, lambda c: bool(c.ping()), f"node {port} did not start", port)
        self._create(deadline)
        for port in self.ports:
            self._wait(deadline, cluster_ok, f"node {port} never reported cluster_state:ok",
                       port)

    def _create(self, deadline: float) -> None:
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        done = subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0",
             "--cluster-yes"], capture_output=True, timeout=max(deadline - time.monotonic(), 1))
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-2000:]!r} "
                               f"{done.stderr[-2000:]!r}")

    def _wait(self, deadline: float, ready: Callable[[redis.Redis], bool], message: str,
              port: int) -> None:
        while True:
            client = redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=5)
            try:
                if ready(client):
                    return
            except (redis.RedisError, OSError):
                pass
            finally:
                client.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{message} within {STARTUP_DEADLINE_S:.0f} s "
                                   f"(logs in {self.root})")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        self.procs = []


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """The session's local Redis Cluster (started on first use)."""
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"Redis Cluster tests need {' and '.join(missing)} (apt install redis-server)")
    root = Path(tempfile.mkdtemp(prefix="pointsman-redis-cluster-"))
    cluster = LocalCluster(root, cluster_ports(3))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


RedisAt = Callable[[str, str], RedisConfig]


@pytest.fixture
def redis_at(request: pytest.FixtureRequest) -> RedisAt:
    """``redis_at(kind, prefix)``: the :class:`RedisConfig` of the shared single Redis
    (``kind`` "redis") or of the session's cluster ("cluster", started on first use), with
    the generous default timeouts."""
    def at(kind: str, prefix: str) -> RedisConfig:
        if kind == "cluster":
            cluster: LocalCluster = request.getfixturevalue("redis_cluster")
            return RedisConfig(url=cluster.url, cluster=True, prefix=prefix)
        assert kind == "redis", kind
        return RedisConfig(url=REDIS_URL, prefix=prefix)
    return at
