"""``pointsman serve``: the OpenAI-compatible gateway on uvicorn."""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pointsman.errors import ConfigError

if TYPE_CHECKING:
    from pointsman.config import PointsmanConfig
    from pointsman.gateway.config import GatewayConfig
    from pointsman.gateway.drain import Drain

ENDPOINTS = ("POST /v1/chat/completions", "POST /v1/messages", "POST /v1/responses",
             "GET /v1/models", "GET /v1/spend", "GET /health", "GET /metrics",
             "GET /openapi.json")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # socket says it is TCP; without it keep-alive answers wait ~40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _on_drained(drain: Drain) -> Callable[[int, FrameType | None], None]:
    """The SIGTERM handler uvicorn hands the signal back to once it has stopped: exit 0
    after a clean drain, 3 when requests had to be interrupted (see gateway/drain.py)."""
    def drained(signum: int, frame: FrameType | None) -> None:
        status, line = drain.summary()
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        raise SystemExit(status)
    return drained


def _draining_server(config: Any, drain: Drain) -> Any:
    """uvicorn's server, telling the gateway when a shutdown signal starts the drain."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            drain.begin()
            super().handle_exit(sig, frame)

    return DrainingServer(config)


def _warn_long_calls(cfg: PointsmanConfig) -> None:
    """Say when upstream calls may outlast the drain (they are interrupted at shutdown)."""
    totals = [cfg.providers.timeouts.total, *(e.timeouts.total for e in
                                              cfg.providers.endpoints.values()
                                              if e.timeouts.total is not None)]
    longest = max(totals)
    if longest > cfg.gateway.drain_timeout_s:
        sys.stdout.write(
            f"pointsman: upstream calls may take up to {longest:g} s and the drain "
            f"(gateway.drain_timeout_s) is {cfg.gateway.drain_timeout_s:g} s: requests still "
            "running when it ends are interrupted (answered 503 or ended with an error "
            "event, and logged)\n")


# The gateway allocates many short-lived objects per request and keeps a large, stable
# heap from start-up: freeze that heap out of the collector and collect the young
# generation less often (measured: ~15% less CPU per request, fewer latency spikes;
# benchmarks/bench_gateway.py).
GC_THRESHOLD = (50_000, 50, 1000)


def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
    host: Annotated[str | None, typer.Option(help="Address (default gateway.host).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535,
                                             help="Port (default gateway.port; 0: any).")]
    = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the OpenAI-compatible gateway."""
    from pointsman.cli.self_loop import warn_self_loops
    from pointsman.config import load_config
    from pointsman.gateway.app import create_app
    from pointsman.gateway.auth import KeyRing, check_bind
    from pointsman.gateway.server import fast_loop

    cfg = load_config(config)
    host = host or cfg.gateway.host
    check_bind(host, KeyRing(cfg.gateway.keys, cfg.gateway.keys_db))
    app = create_app(cfg)
    gw = app.state.gateway
    sock = _bind(host, cfg.gateway.port if port is None else port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    out = sys.stdout
    out.write(f"pointsman: listening on http://{shown}:{bound} "
              f"({'OPEN: no API keys, loopback only' if gw.keys.open else 'API keys required'})\n")
    out.write(f"pointsman: endpoints: {', '.join(ENDPOINTS)}\n")
    served = {m: [d.name for d in gw.deployments.deployments(m)] for m in gw.catalog.models}
    with_deps = {m: d for m, d in served.items() if d}
    out.write(f"pointsman: {len(with_deps)} of {len(served)} catalog models have deployments: "
              f"{', '.join(n for d in with_deps.values() for n in d) or 'none'}\n")
    out.flush()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    _warn_long_calls(cfg)
    warn_self_loops(cfg, host, bound)
    out.flush()
    # uvicorn drains on SIGTERM, then re-raises it to the handler found at start
    signal.signal(signal.SIGTERM, _on_drained(gw.drain))
    raise_open_files_limit(cfg.gateway.max_connections)
    server = _draining_server(uvicorn_config(app, cfg.gateway, log_level, fast_loop()),
                              gw.drain)
    server.run(sockets=[sock])


def uvicorn_config(app: Any, gw: GatewayConfig, log_level: str = "warning",
                   loop: str = "auto") -> Any:
    """uvicorn's settings for the gateway, the limits against slow clients included
    (``gateway.header_timeout_s``, ``max_header_bytes``, ``keepalive_timeout_s``,
    ``max_connections``; the body timeout is the gateway's own, in ``read_json``)."""
    import uvicorn

    from pointsman.gateway.server import guarded_http

    return uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="on", ws="none",
        proxy_headers=False,  # nothing reads the client address: skip the middleware
        loop=loop, http=guarded_http(gw.max_header_bytes, gw.header_timeout_s),
        h11_max_incomplete_event_size=gw.max_header_bytes,
        timeout_keep_alive=max(1, round(gw.keepalive_timeout_s)),
        limit_concurrency=gw.max_connections,
        timeout_graceful_shutdown=int(gw.drain_timeout_s))


def raise_open_files_limit(connections: int) -> None:
    """Each connection is a file descriptor: a soft limit below ``connections`` (often
    1024) would make accept() fail long before the connection cap, and a crowd of slow
    clients would lock everyone out; raise it towards the hard limit."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
