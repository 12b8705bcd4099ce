"""Quality labels of logged requests: user feedback (``POST /v1/feedback``) and judged
samples. A label belongs to one request (the request log record's id) and one *source*
(``user``, ``judge``, an application's name ...): labelling again from the same source
replaces the label, so retried feedback counts once. Labels live in the request log's
database (SQLite file or PostgreSQL schema, migration 5), so they survive restarts and
the evaluation lab reads them beside the records (``--format log``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Label:
    request_id: str
    source: str
    score: float  # in [0, 1]
    model: str | None = None  # the model whose answer was graded (None: the one that answered)
    comment: str | None = None
    key: str | None = None  # the API key that gave it
    ts: float = field(default_factory=time.time)
    cost_usd: float = 0.0  # what making it cost (a judged sample's reference and judge calls)


@dataclass(frozen=True, slots=True)
class Owner:
    """Whether a request is in the log, and the key that made it."""

    found: bool
    key: str | None = None


@runtime_checkable
class LabelStore(Protocol):
    async def owner(self, request_id: str) -> Owner:
        """The request's record owner (``found`` False when no record has that id)."""
        ...

    async def put(self, label: Label) -> bool:
        """Store the label, replacing the same source's; True when it replaced one."""
        ...

    async def labels(self, request_id: str) -> list[Label]:
        """Every label of one request, by source."""
        ...

    async def spend(self, source: str, since: float, until: float) -> tuple[int, float]:
        """How many labels of ``source`` were made in ``[since, until)`` and their cost."""
        ...

    async def quality(self, scope: Literal["key", "user", "team"] | None, subject: str | None,
                      since: float, until: float) -> dict[str, tuple[int, float | None]]:
        """Per kind (``feedback``, ``judge``): the labels of the requests made in
        ``[since, until)`` (of one key, user or team) for the model that answered: how many,
        and their mean (:class:`pointsman.budget.spend.LabelQueries`)."""
        ...

    async def aclose(self) -> None:
        ...


async def open_label_store(sqlite_path: str | Path, postgres_dsn: str | None = None,
                           schema: str = "pointsman") -> LabelStore:
    """The label store in the request log's database (psycopg imported only when used)."""
    if postgres_dsn:
        from pointsman.stores.labels_postgres import PostgresLabelStore

        return await PostgresLabelStore.open(postgres_dsn, schema)
    import asyncio

    from pointsman.stores.labels_sqlite import SqliteLabelStore

    return await asyncio.to_thread(SqliteLabelStore, sqlite_path)
