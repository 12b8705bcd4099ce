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
             "GET /openapi.json", "POST /admin/reload")


def _bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # socket says it is TCP; without it keep-alive answers wait ~40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # one socket per worker on one port (pointsman.gateway.workers)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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


def _reload_on_sighup(reloader: Any, config: Path | None) -> None:
    """SIGHUP reloads the config file (gateway/reload.py); the outcome is logged."""
    if config is not None:
        reloader.path = config
    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, lambda signum, frame: reloader.from_signal())


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
    workers: Annotated[int | None, typer.Option(
        min=1, max=256, help="Worker processes on the port (default gateway.workers, else "
        "the number of cores).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the OpenAI-compatible gateway."""
    from pointsman.config import load_config
    from pointsman.gateway.auth import KeyRing, check_bind
    from pointsman.gateway.workers import resolve_workers

    cfg = load_config(config)
    host = host or cfg.gateway.host
    ring = KeyRing(cfg.gateway.keys, cfg.gateway.keys_db)
    check_bind(host, ring)
    count, note = resolve_workers(workers, cfg)
    port = cfg.gateway.port if port is None else port
    if count > 1:
        raise SystemExit(_supervise(cfg, config, host, port, count, ring.open, log_level))
    sock = _bind(host, port)
    _listening(host, sock, ring.open, 1)
    if note:
        sys.stdout.write(f"pointsman: {note}\n")
    _serve_on(cfg, config, sock, log_level, banner=True)


def _listening(host: str, sock: socket.socket, open_: bool, workers: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    sys.stdout.write(f"pointsman: listening on http://{shown}:{sock.getsockname()[1]} "
                     f"({'OPEN: no API keys, loopback only' if open_ else 'API keys required'}"
                     f"{f'; {workers} workers' if workers > 1 else ''})\n")
    sys.stdout.flush()


def _supervise(cfg: PointsmanConfig, path: Path | None, host: str, port: int, count: int,
               open_: bool, log_level: str) -> int:
    """N workers on one port (pointsman.gateway.workers); the exit status."""
    from pointsman.gateway.workers import RunDir, Supervisor, bind_all

    with RunDir():
        socks = bind_all(host, port, count, _bind)
        _listening(host, socks[0], open_, count)

        def serve_one(sock: socket.socket, first: bool) -> int:
            _serve_on(_current(cfg, path), path, sock, log_level, banner=first)
            return 0

        return Supervisor(socks, serve_one).run()


def _current(started: PointsmanConfig, path: Path | None) -> PointsmanConfig:
    """The config a (re)started worker serves: the file as it is now (a reload may have
    changed it since the server started), else the one the server started with."""
    if path is None:
        return started
    from pointsman.config import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        sys.stderr.write(f"pointsman: {exc.message}; this worker serves the config the "
                         "server started with\n")
        return started


def _serve_on(cfg: PointsmanConfig, path: Path | None, sock: socket.socket, log_level: str,
              banner: bool) -> None:
    """One gateway process serving ``sock`` until SIGTERM has drained it (then SystemExit
    with the drain's status, see :func:`_on_drained`); SIGHUP reloads ``path``."""
    from pointsman.gateway.app import create_app
    from pointsman.gateway.server import fast_loop

    app = create_app(cfg)
    gw = app.state.gateway
    out = sys.stdout
    if banner:
        ui = ("GET /ui (dashboard, admin keys)",) if cfg.gateway.ui.enabled else ()
        out.write(f"pointsman: endpoints: {', '.join((*ENDPOINTS, *ui))}\n")
        served = {m: [d.name for d in gw.deployments.deployments(m)] for m in gw.catalog.models}
        with_deps = {m: d for m, d in served.items() if d}
        out.write(f"pointsman: {len(with_deps)} of {len(served)} catalog models have "
                  f"deployments: {', '.join(n for d in with_deps.values() for n in d) or 'none'}\n")
        from pointsman.cli.self_loop import warn_self_loops

        _warn_long_calls(cfg)
        host, bound = sock.getsockname()[:2]
        warn_self_loops(cfg, str(host), int(bound))
        out.flush()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    # uvicorn drains on SIGTERM (and SIGINT), then re-raises it to the handler found at start
    signal.signal(signal.SIGTERM, _on_drained(gw.drain))
    signal.signal(signal.SIGINT, _on_drained(gw.drain))
    _reload_on_sighup(app.state.reloader, path)
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
        server_header=False,  # no "server: uvicorn" on every answer
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
