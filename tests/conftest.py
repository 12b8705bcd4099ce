"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from redis_cluster_support import redis_at as redis_at
from redis_cluster_support import redis_cluster as redis_cluster  # the session's Redis Cluster

if TYPE_CHECKING:
    from pointsman.testing import UpstreamStub

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repo; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture()
def clients() -> Iterator[ExitStack]:
    """The SDK clients a test opens (``clients.enter_context(openai.OpenAI(...))``), closed
    after it: an unclosed client's socket is a ResourceWarning, an error here, raised in
    whichever later test the garbage collector happens to finalise it."""
    with ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[UpstreamStub]:
    """One local upstream stub for the whole session (see ``upstream``)."""
    from pointsman.testing import UpstreamStub

    with UpstreamStub() as stub:
        yield stub


@pytest.fixture
def upstream(upstream_server: UpstreamStub) -> UpstreamStub:
    """The session's :class:`pointsman.testing.UpstreamStub`, reset before each test.

    A real HTTP server on 127.0.0.1 speaking OpenAI (``POST /v1/chat/completions``),
    Anthropic (``POST /v1/messages``) and OpenAI Responses (``POST /v1/responses``). Point
    an endpoint's ``base_url`` at ``upstream.base_url`` (``http://127.0.0.1:<port>/v1``;
    every adapter accepts it), then
    script failures per upstream model name: ``upstream.behave("gpt-4o-mini",
    statuses=[429], retry_after=2)``, ``hang=True``, ``cut_after=0``, ``delay_ms=50``,
    ``tool_call=True``, ``cached_tokens=40`` ...; assert with ``upstream.requests(model)``,
    ``upstream.last_request(model)`` and ``upstream.last_headers(model)``.
    """
    upstream_server.reset()
    return upstream_server
