"""Build the spend ledger and the budget guard from config (nothing connects at import)."""

from __future__ import annotations

from pathlib import Path

import httpx

from pointsman.budget.alerts import Alerter
from pointsman.budget.config import BudgetsConfig
from pointsman.budget.guard import LedgerBudgetGuard
from pointsman.budget.ledger import MemoryLedger, SpendLedger
from pointsman.catalog import Catalog


def build_ledger(cfg: BudgetsConfig, base_dir: Path | None = None) -> SpendLedger:
    if cfg.store == "memory":
        return MemoryLedger()
    if cfg.store == "redis":
        from pointsman.budget.redis_ledger import RedisLedger

        return RedisLedger(cfg.redis_url, cfg.redis_prefix, cfg.socket_timeout_s,
                           cfg.redis_max_connections, connect_timeout_s=cfg.connect_timeout_s,
                           circuit_open_s=cfg.circuit_open_s)
    from pointsman.budget.sqlite_ledger import SqliteLedger

    path = Path(cfg.sqlite_path)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    return SqliteLedger(path)


def build_guard(cfg: BudgetsConfig, catalog: Catalog, ledger: SpendLedger | None = None,
                client: httpx.AsyncClient | None = None) -> LedgerBudgetGuard:
    """The guard; with no budget configured it holds nothing and never touches the ledger."""
    ledger = ledger if ledger is not None else build_ledger(cfg)
    alerter = Alerter(cfg.alerts, ledger, client) if cfg.alerts.thresholds else None
    return LedgerBudgetGuard(cfg, ledger, {m.name: m.tier for m in catalog}, alerter=alerter)


def budgets_configured(cfg: BudgetsConfig) -> bool:
    return cfg.enabled and bool(cfg.limits or any(p.budgets for p in cfg.plans.values()))
