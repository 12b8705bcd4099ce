"""Hot reload: a new config applied to a running gateway without dropping a request.

:meth:`Reloader.reload` builds the new :class:`~pointsman.gateway.runtime.Gateway` (catalog,
router and rules, aliases, keys, budget limits, cascade, deployments when the providers
changed) off to the side from the new config, complete, then swaps it in with one
assignment (``app.state.gateway``). Every endpoint reads that attribute once per request
and its :class:`~pointsman.gateway.exchange.Exchange` keeps the gateway it started with, so
requests in flight finish on the old config; objects only the old gateway used are closed
once none of its requests is left. A config that does not load or build is refused: the
running gateway is kept and the reason logged (and returned).

What lives as long as the process is carried over: metrics, the drain, request ids, the
health store, the request log and stored responses, telemetry, the spend ledger (a new
budget guard charges the same ledger), and the latency windows and session affinity while
their sections are unchanged. Sections that only a restart applies (listen address and
server limits, request log, health store, Redis, telemetry, the ledger's store, judging) keep
their running values; a reload that changes them says so.

Triggers: SIGHUP under ``pointsman serve``, ``POST /admin/reload`` (admin keys), or a
call of :meth:`Reloader.reload` (``app.state.reloader``) from code, e.g. after retraining
a router artifact.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pointsman.config import PointsmanConfig, load_config
from pointsman.errors import ConfigError, PermissionDeniedError, PointsmanError
from pointsman.gateway.auth import KeyRing
from pointsman.gateway.drain import Drain
from pointsman.gateway.metrics import Metrics
from pointsman.gateway.runtime import Gateway
from pointsman.router import resolve_catalog
from pointsman.state import OutcomeRecorder

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from pointsman.affinity import AffinityStore
    from pointsman.budget.guard import LedgerBudgetGuard
    from pointsman.catalog import Catalog
    from pointsman.executor import DeploymentSource
    from pointsman.latency.wiring import LatencyParts

log = logging.getLogger("pointsman.gateway")
RETIRE_POLL_S = 0.5
# gateway settings the running server was started with (uvicorn's limits, the drain)
SERVER_FIELDS = ("host", "port", "max_connections", "max_header_bytes", "header_timeout_s",
                 "keepalive_timeout_s", "drain_timeout_s", "request_log", "responses",
                 "health", "ui")
LEDGER_FIELDS = ("enabled", "store", "sqlite_path", "redis_url", "redis_prefix",
                 "socket_timeout_s", "connect_timeout_s", "redis_max_connections",
                 "circuit_open_s")
Closer = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Lasting:
    """What a gateway built by a reload takes over from the one it replaces."""

    metrics: Metrics
    drain: Drain
    id_prefix: str
    ids: Iterator[int]
    latency: LatencyParts | None  # None: build anew (its section or the models changed)
    affinity: AffinityStore | None
    reuse_affinity: bool


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``ok`` and the sections changed, or why it was refused."""

    ok: bool
    source: str
    message: str
    changed: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"reloaded": self.ok, "source": self.source, "message": self.message,
                "changed": list(self.changed), "restart_needed": list(self.restart_needed)}


@dataclass(slots=True)
class _Built:
    gateway: Gateway
    opened: list[object] = field(default_factory=list)  # new objects the app now owns
    undo: list[Closer] = field(default_factory=list)  # what closes them if the build fails
    retired: list[tuple[object, Closer]] = field(default_factory=list)  # old ones to close


class Reloader:
    """Reloads one app's gateway (``app.state.reloader``); reloads run one at a time.

    ``owned``: the app's list of objects its lifespan closes at shutdown; a reload swaps
    the objects it replaces there for the new ones. ``deployments_owned``: the app built
    its deployments from the config, so a reload may rebuild them (else the caller's are
    kept)."""

    def __init__(self, app: Starlette, owned: list[object], *,
                 recorders: Sequence[OutcomeRecorder] = (), deployments_owned: bool = False,
                 path: Path | None = None) -> None:
        self.app = app
        self.owned = owned
        self.recorders = tuple(recorders)
        self.deployments_owned = deployments_owned
        self.path = path
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reloads = 0
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retiring: list[tuple[object, Closer]] = []

    @property
    def gateway(self) -> Gateway:
        gw: Gateway = self.app.state.gateway
        return gw

    async def reload(self, config: PointsmanConfig | None = None) -> ReloadResult:
        """Apply ``config`` (default: the config file read again) or refuse it, logged."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            old = self.gateway
            source = config.source if config is not None else str(self._path(old))
            try:
                cfg = config if config is not None else load_config(self._path(old))
                cfg, restart = keep_restart_only(old.config, cfg)
                built = self._build(old, cfg)
            except PointsmanError as exc:
                return _refused(source, exc.message)
            except Exception as exc:  # a bug while building: still refused, with its trace
                log.exception("reload: building the new gateway failed")
                return _refused(source, f"{type(exc).__name__}: {exc}")
            changed = changed_sections(old.config, cfg)
            self._swap(old, built)
        message = (f"reloaded {source}: " + (", ".join(changed) or "nothing changed"))
        if restart:
            message += f"; needs a restart to apply: {', '.join(restart)}"
        log.warning("%s", message)
        return ReloadResult(True, source, message, tuple(changed), tuple(restart))

    def from_signal(self) -> None:
        """Schedule a reload from a signal handler (SIGHUP); the outcome is logged."""
        loop = self.loop
        if loop is None or loop.is_closed():
            log.warning("reload: the gateway is not running yet; SIGHUP ignored")
            return
        loop.call_soon_threadsafe(self._spawn, self.reload())

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _path(self, gw: Gateway) -> Path:
        if self.path is not None:
            return self.path
        source = Path(gw.config.source)
        if not source.is_file():
            raise ConfigError(f"nothing to reload from: the gateway's config is "
                              f"{gw.config.source} (start it with --config FILE)")
        return source

    # -- building off to the side -------------------------------------------------------
    def _build(self, old: Gateway, cfg: PointsmanConfig) -> _Built:
        if not old.keys.open and KeyRing(cfg.gateway.keys, cfg.gateway.keys_db).open:
            raise ConfigError("the new config has no gateway.keys: a reload cannot open a "
                              "gateway that requires API keys (restart it to do so)")
        catalog = resolve_catalog(cfg)
        built = _Built(old)  # the gateway is set below
        try:
            deployments = self._deployments(old, cfg, catalog, built)
            guard = self._guard(old, cfg, catalog, built)
            built.gateway = Gateway(cfg, deployments, health=old.health, guard=guard,
                                    recorders=self.recorders, telemetry=old.telemetry,
                                    lasting=self._lasting(old, cfg, catalog, deployments))
        except BaseException:
            self._spawn(_run_all(built.undo))
            raise
        new = built.gateway
        new.log, new.responses, new.labels = old.log, old.responses, old.labels
        new.judging = old.judging  # restart-only, like the request log
        if new.experiments is not None and old.experiments is not None:
            new.experiments.carry_over(old.experiments)  # guardrail stops stand
        spare = new.keep_shares(old.shares)  # the score window of tier-share targets
        if spare is not None:  # the old window (replaced) or the new one (not needed)
            built.retired.append((spare, _closer(spare)))
        if new.shares is not None and new.shares is not old.shares:
            built.opened.append(new.shares)
        for part, kept in ((old.latency, new.latency), (old.affinity, new.affinity)):
            if part is not None and part is not kept:
                built.retired.append((part, _closer(part)))
                if kept is not None:
                    built.opened.append(kept)
        return built

    def _deployments(self, old: Gateway, cfg: PointsmanConfig, catalog: Catalog,
                     built: _Built) -> DeploymentSource:
        same = cfg.providers == old.config.providers and cfg.catalog == old.config.catalog
        if same or not self.deployments_owned:
            return old.deployments
        from pointsman.providers.config import build_providers

        deployments: DeploymentSource = build_providers(cfg, catalog, closed=True)
        built.opened.append(deployments)
        built.undo.append(_closer(deployments))
        built.retired.append((old.deployments, _closer(old.deployments)))
        return deployments

    def _guard(self, old: Gateway, cfg: PointsmanConfig, catalog: Catalog,
               built: _Built) -> Any:
        from pointsman.budget.factory import budgets_configured, build_guard, build_ledger
        from pointsman.budget.guard import LedgerBudgetGuard

        guard = old.guard
        if cfg.budgets == old.config.budgets and cfg.catalog == old.config.catalog:
            return guard
        if isinstance(guard, LedgerBudgetGuard):  # the same ledger, new limits and tiers
            new = build_guard(cfg.budgets, catalog, guard.ledger)
            built.retired.append((guard, lambda: _retire_guard(guard)))
            built.undo.append(lambda: _retire_guard(new))  # never the shared ledger
            if guard in self.owned:
                built.opened.append(new)
            return new
        if guard is None and budgets_configured(cfg.budgets):
            new = build_guard(cfg.budgets, catalog, build_ledger(cfg.budgets, Path.cwd(),
                                                                 cfg.redis))
            built.opened.append(new)
            built.undo.append(_closer(new))
            return new
        return guard

    @staticmethod
    def _lasting(old: Gateway, cfg: PointsmanConfig, catalog: Catalog,
                 deployments: DeploymentSource) -> Lasting:
        def served(gw_catalog: Catalog, source: DeploymentSource) -> dict[str, Any]:
            return {m.name: (m.tier, [d.name for d in source.deployments(m.name)])
                    for m in gw_catalog}

        same_latency = (cfg.latency == old.config.latency
                        and served(catalog, deployments) == served(old.catalog,
                                                                   old.deployments))
        return Lasting(old.metrics, old.drain, old._id_prefix, old._ids,
                       old.latency if same_latency else None, old.affinity,
                       cfg.affinity == old.config.affinity)

    # -- the swap and what it leaves behind ---------------------------------------------
    def _swap(self, old: Gateway, built: _Built) -> None:
        self.app.state.gateway = built.gateway  # the one step requests can observe
        self.reloads += 1
        for thing, _ in built.retired:
            if thing in self.owned:
                self.owned.remove(thing)
        self.owned.extend(built.opened)
        if built.retired:
            self._retiring.extend(built.retired)
            self._spawn(self._retire(old, built.retired))

    async def _retire(self, old: Gateway, retired: list[tuple[object, Closer]]) -> None:
        """Close what only the old gateway used, once none of its requests is in flight."""
        while any(exchange.gw is old for exchange in list(old.drain.inflight)):
            await asyncio.sleep(RETIRE_POLL_S)
        await asyncio.sleep(RETIRE_POLL_S)  # reports that follow a sent answer
        for item in retired:
            if item in self._retiring:
                self._retiring.remove(item)
                await _safe_close(item[1])

    async def aclose(self) -> None:
        """At shutdown: stop waiting and close whatever is still to be retired."""
        for task in list(self._tasks):
            task.cancel()
        for _, close in self._retiring:
            await _safe_close(close)
        self._retiring.clear()


def keep_restart_only(old: PointsmanConfig, new: PointsmanConfig
                      ) -> tuple[PointsmanConfig, list[str]]:
    """``new`` with the sections only a restart applies kept as running, and their names
    where ``new`` differs."""
    restart = [f"gateway.{name}" for name in SERVER_FIELDS
               if getattr(new.gateway, name) != getattr(old.gateway, name)]
    restart += [f"budgets.{name}" for name in LEDGER_FIELDS
                if getattr(new.budgets, name) != getattr(old.budgets, name)]
    restart += [name for name in ("redis", "telemetry", "judging")
                if getattr(new, name) != getattr(old, name)]
    if not restart:
        return new, []
    update: dict[str, Any] = {name: getattr(old, name) for name in ("redis", "telemetry",
                                                                   "judging")}
    update["gateway"] = new.gateway.model_copy(
        update={name: getattr(old.gateway, name) for name in SERVER_FIELDS})
    update["budgets"] = new.budgets.model_copy(
        update={name: getattr(old.budgets, name) for name in LEDGER_FIELDS})
    return new.model_copy(update=update), restart


def changed_sections(old: PointsmanConfig, new: PointsmanConfig) -> list[str]:
    names = [name for name in type(new).model_fields if getattr(new, name) != getattr(old, name)]
    return [f"gateway.{name}" for name in type(new.gateway).model_fields
            if getattr(new.gateway, name) != getattr(old.gateway, name)] + [
        name for name in names if name != "gateway"]


def _refused(source: str, reason: str) -> ReloadResult:
    message = f"reload of {source} refused, the running config is kept: {reason}"
    log.error("%s", message)
    return ReloadResult(False, source, message)


def _closer(thing: object) -> Closer:
    async def close() -> None:
        aclose: Callable[[], Awaitable[None]] | None = getattr(thing, "aclose", None)
        if aclose is not None:
            await aclose()
    return close


async def _retire_guard(guard: LedgerBudgetGuard) -> None:
    """A replaced budget guard: its leases and alerts end; the ledger it shares stays."""
    await guard.leases.aclose()
    await guard.reconciler.run()
    if guard.alerter is not None:
        await guard.alerter.aclose()


async def _safe_close(close: Closer) -> None:
    try:
        await close()
    except PointsmanError as exc:
        log.error("reload: closing a replaced part: %s", exc.message)


async def _run_all(closers: Sequence[Closer]) -> None:
    for close in closers:
        await _safe_close(close)


def fresh_ids() -> Iterator[int]:
    return itertools.count()


async def reload_endpoint(request: Request) -> Response:
    """``POST /admin/reload``: reload the config file (admin keys: ``gateway.keys`` with
    ``admin: true``, keys-database admin keys, ``budgets.admin_keys``; an open loopback
    gateway: anyone). 200 with what changed, or 422 with why it was refused."""
    from pointsman.budget.http import is_admin
    from pointsman.doors.chat import ChatDoor
    from pointsman.gateway.endpoints import authenticate
    from pointsman.gateway.errors import door_error

    gw: Gateway = request.app.state.gateway
    try:
        principal = authenticate(gw, request)
        if not (principal.admin or is_admin(request, gw.config.budgets.admin_keys)):
            raise PermissionDeniedError("POST /admin/reload needs an admin key")
    except PointsmanError as exc:
        return door_error(ChatDoor(), exc)
    reloader: Reloader = request.app.state.reloader
    result = await reloader.reload()
    return JSONResponse(result.to_dict(), status_code=200 if result.ok else 422)
