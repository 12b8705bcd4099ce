"""Build the spend ledger and the budget guard from config (nothing connects at import)."""

from __future__ import annotations

from pathlib import Path

import httpx

from pointsman.budget.alerts import Alerter
from pointsman.budget.config import BudgetsConfig
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.ledger import MemoryLedger, SpendLedger
from pointsman.catalog import Catalog
from pointsman.redis_config import RedisConfig


def build_ledger(cfg: BudgetsConfig, base_dir: Path | None = None,
                 redis: RedisConfig | None = None) -> SpendLedger:
    """The ledger of ``budgets.store``; a Redis one uses the top-level ``redis`` section
    (``budgets.redis_*`` override it) through the shared client factory, never retrying."""
    if cfg.store == "memory":
        return MemoryLedger()
    if cfg.store == "redis":
        return _redis_ledger(cfg, redis or RedisConfig())
    from pointsman.budget.sqlite_ledger import SqliteLedger

    path = Path(cfg.sqlite_path)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    return SqliteLedger(path)


def _redis_ledger(cfg: BudgetsConfig, redis: RedisConfig) -> SpendLedger:
    """A single Redis: the ledger's own pool (sized and timed by the budgets section); a
    Redis Cluster: the shared factory's cluster client (every ledger key carries one hash
    tag, see :mod:`pointsman.budget.redis_ledger`)."""
    from pointsman.budget.redis_ledger import RedisLedger
    from pointsman.redis_client import redis_client

    shared = redis.for_store("spend:", url=cfg.redis_url, prefix=cfg.redis_prefix,
                             socket_timeout_s=cfg.socket_timeout_s)
    client = redis_client(shared, retries=0) if shared.cluster else None
    return RedisLedger(shared.url, shared.prefix, shared.socket_timeout_s,
                       cfg.redis_max_connections, connect_timeout_s=cfg.connect_timeout_s,
                       circuit_open_s=cfg.circuit_open_s, client=client)


def build_guard(cfg: BudgetsConfig, catalog: Catalog, ledger: SpendLedger | None = None,
                client: httpx.AsyncClient | None = None) -> LedgerBudgetGuard:
    """The guard; with no budget configured it holds nothing and never touches the ledger."""
    ledger = ledger if ledger is not None else build_ledger(cfg)
    alerter = Alerter(cfg.alerts, ledger, client) if cfg.alerts.thresholds else None
    return LedgerBudgetGuard(cfg, ledger, {m.name: m.tier for m in catalog}, alerter=alerter)


def budgets_configured(cfg: BudgetsConfig) -> bool:
    return cfg.enabled and bool(cfg.limits or any(p.budgets for p in cfg.plans.values()))
