"""Cost accounting and budgets: spend ledgers, the budget guard, plans and alerts.

Kept import-light on purpose: :mod:`pointsman.config` imports :mod:`pointsman.budget.config`,
so this package's ``__init__`` must not import anything that imports the config.

- :mod:`.config`     the ``budgets`` config section (strict pydantic models)
- :mod:`.plans`      plan resolution and the tier step-down (pure; used by the router)
- :mod:`.windows`    calendar (day, month in a time zone) and rolling windows
- :mod:`.ledger`     the :class:`~.ledger.SpendLedger` Protocol and the in-memory ledger
- :mod:`.sqlite_ledger`, :mod:`.redis_ledger`  the embedded and the shared ledgers
- :mod:`.guard`      :class:`~.guard.LedgerBudgetGuard`: BudgetGuard + StateSource
- :mod:`.cost`       actual cost from reported usage, or from counted stream tokens
- :mod:`.alerts`     threshold alerts (webhook + log line, once per threshold per window)
- :mod:`.spend`      the spend / savings report of ``pointsman spend`` and ``GET /v1/spend``
"""
