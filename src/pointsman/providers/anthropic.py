"""The Anthropic Messages adapter: ``POST {base_url}/v1/messages`` with ``x-api-key`` and
``anthropic-version``; requests and answers are translated by
:mod:`pointsman.providers.anthropic_wire`. A stream must end with ``message_stop``.
Status 529 (overloaded) is an :class:`~pointsman.errors.UpstreamServerError`.

A body from the Messages door carries the caller's ``anthropic-beta`` and
``anthropic-version`` in ``_pointsman``: they are sent as headers on that call only."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx

from pointsman.doors.base import PRIVATE
from pointsman.providers.anthropic_wire import StreamTranslator, to_anthropic, to_completion
from pointsman.providers.anthropic_wire import usage_of as anthropic_usage
from pointsman.providers.base import ChatCall, ChatResult
from pointsman.providers.http import (
    Chunk,
    Deadline,
    HttpAdapter,
    kept_headers,
    wants_usage,
)
from pointsman.providers.wire import Wire

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(HttpAdapter):
    """A :class:`~pointsman.providers.base.Provider` for the Anthropic Messages API.

    ``base_url`` may end in ``/v1`` or not (``https://api.anthropic.com``);
    ``default_max_tokens`` fills ``max_tokens`` when the caller gave none.
    """

    def __init__(self, name: str, base_url: str, client: httpx.AsyncClient | Wire | None = None, *,
                 api_key: str | None = None, headers: Mapping[str, str] | None = None,
                 api_key_header: str | None = None, version: str = ANTHROPIC_VERSION,
                 default_max_tokens: int = 4096) -> None:
        super().__init__(name, base_url, client, api_key=api_key, headers=headers)
        self.default_max_tokens = default_max_tokens
        self._auth = {"anthropic-version": version}
        if api_key:
            self._auth[api_key_header or "x-api-key"] = api_key
        self._headers = self.call_headers(self._auth)

    @property
    def url(self) -> str:
        root = self.base_url.removesuffix("/v1")
        return f"{root}/v1/messages"

    def headers_for(self, body: Mapping[str, Any]) -> Mapping[str, str]:
        """The call's headers: the adapter's own, unless the door passed the caller's
        beta features or API version along (then a copy with them)."""
        private = body.get(PRIVATE) if PRIVATE in body else None
        if not isinstance(private, Mapping):
            return self._headers
        extra = {header: value for header, key in (("anthropic-beta", "anthropic_beta"),
                                                   ("anthropic-version", "anthropic_version"))
                 if isinstance(value := private.get(key), str) and value}
        return {**self._headers, **extra} if extra else self._headers

    async def complete(self, call: ChatCall) -> ChatResult:
        model = str(call.body.get("model", ""))
        deadline = Deadline(call.timeouts, model, streaming=False)
        body = to_anthropic(call.body, self.default_max_tokens)
        body.pop("stream", None)
        data, headers = await self.fetch_json(self.url, body, self.headers_for(call.body),
                                              deadline)
        return ChatResult(to_completion(data), anthropic_usage(data.get("usage")),
                          kept_headers(headers))

    def stream_batches(self, call: ChatCall) -> AsyncGenerator[list[Chunk], None]:
        model = str(call.body.get("model", ""))
        deadline = Deadline(call.timeouts, model, streaming=True)
        body = {**to_anthropic(call.body, self.default_max_tokens), "stream": True}
        translator = StreamTranslator(model, wants_usage(call.body))
        return self.translated(self.url, body, self.headers_for(call.body), deadline,
                               translator, "message_stop")
