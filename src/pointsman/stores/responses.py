"""Stored responses of the Responses API door: what ``previous_response_id`` continues
from and what ``GET /v1/responses/{id}`` returns.

A stored response belongs to the API key that made it. ``get`` answers None alike for an
id that is missing, expired or stored under another key, so the caller answers 404 in all
three cases and one key cannot learn which ids another key has. Keys compare exactly;
``None`` (an open loopback gateway) matches only ``None``. Stores live in the request log's
database (SQLite file or PostgreSQL schema) and share its numbered migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    key: str | None
    created: float  # when it was stored (epoch seconds)
    expires_at: float
    items: list[dict[str, Any]]  # the conversation so far, as the door keeps it
    response: dict[str, Any]  # the Responses API object returned to the client


@runtime_checkable
class ResponseStore(Protocol):
    async def put(self, response_id: str, key: str | None, items: list[dict[str, Any]],
                  response: dict[str, Any], expires_at: float) -> None:
        """Store (or replace, under the same key) a response; visible to the next ``get``
        as soon as this returns. Storing an id that another key holds raises
        :class:`~pointsman.errors.PointsmanError` (ids are minted by the gateway)."""
        ...

    async def get(self, response_id: str, key: str | None,
                  now: float) -> StoredResponse | None:
        """The response, or None when it is missing, expired (``expires_at <= now``) or
        stored under another key."""
        ...

    async def delete(self, response_id: str, key: str | None) -> bool:
        """Delete the key's response; False when there was none for that key."""
        ...

    async def purge(self, now: float) -> int:
        """Delete every expired response (``expires_at <= now``); how many were."""
        ...

    async def aclose(self) -> None:
        """Release the connection."""
        ...


def taken(response_id: str) -> str:
    """The message when a put would overwrite another key's response."""
    return f"response id {response_id} is already stored under another key"
