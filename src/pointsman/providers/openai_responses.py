"""The OpenAI Responses adapter: ``POST {base_url}/responses`` (OpenAI, Azure OpenAI's v1
API and servers that speak the Responses API). Requests and answers are translated by
:mod:`pointsman.providers.responses_wire`; every call is sent with ``store: false``.

A stream must end with ``response.completed`` (or ``response.incomplete``: the output
limit was reached, finish_reason ``length``), or it is a
:class:`~pointsman.errors.StreamBrokenError`; ``response.failed`` and ``error`` events are
one too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import httpx

from pointsman.providers.base import ChatCall, ChatResult
from pointsman.providers.http import (
    Chunk,
    Deadline,
    HttpAdapter,
    bearer_auth,
    kept_headers,
    wants_usage,
)
from pointsman.providers.responses_wire import StreamTranslator, to_completion, to_responses
from pointsman.providers.responses_wire import usage_of as responses_usage
from pointsman.providers.wire import Wire


class OpenAIResponsesProvider(HttpAdapter):
    """A :class:`~pointsman.providers.base.Provider` for one Responses API endpoint.

    ``api_key`` goes in ``Authorization: Bearer`` unless ``api_key_header`` names another
    header (Azure's ``api-key``); ``reasoning_summary`` (auto, concise, detailed) asks for
    reasoning summaries on calls that ask for reasoning (they come back as
    ``reasoning_content``); None asks for none, as summaries need a verified organization.
    """

    def __init__(self, name: str, base_url: str, client: httpx.AsyncClient | Wire | None = None, *,
                 api_key: str | None = None, headers: Mapping[str, str] | None = None,
                 api_key_header: str | None = None,
                 reasoning_summary: str | None = None) -> None:
        super().__init__(name, base_url, client, api_key=api_key, headers=headers)
        self.reasoning_summary = reasoning_summary
        self._headers = self.call_headers(bearer_auth(api_key, api_key_header))

    @property
    def url(self) -> str:
        return f"{self.base_url}/responses"

    async def complete(self, call: ChatCall) -> ChatResult:
        model = str(call.body.get("model", ""))
        deadline = Deadline(call.timeouts, model, streaming=False)
        body = to_responses(call.body, self.reasoning_summary)
        body.pop("stream", None)
        data, headers = await self.fetch_json(self.url, body, self._headers, deadline)
        return ChatResult(to_completion(data, model), responses_usage(data.get("usage")),
                          kept_headers(headers))

    def stream_batches(self, call: ChatCall) -> AsyncGenerator[list[Chunk], None]:
        model = str(call.body.get("model", ""))
        deadline = Deadline(call.timeouts, model, streaming=True)
        body = {**to_responses(call.body, self.reasoning_summary), "stream": True}
        translator = StreamTranslator(model, wants_usage(call.body))
        return self.translated(self.url, body, self._headers, deadline, translator,
                               "response.completed")
