"""Scripted providers: real implementations of the Provider protocol for executor tests.

Each call takes the next step of the deployment's script (the last step repeats):
``"ok"``, an exception instance to raise (a ProviderError, or any other: a bug),
``"hang"``, ``"cut_before"`` / ``"cut_after"`` (streams: break before / after the first
token), or ``"no_usage"``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pointsman.errors import StreamBrokenError
from pointsman.providers.base import ChatCall, ChatResult, Provider, Timeouts, Usage

Step = str | Exception


def completion(model: str, text: str, usage: Usage | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage.prompt_tokens,
                         "completion_tokens": usage.completion_tokens,
                         "total_tokens": usage.total_tokens}
    return body


def chunk(model: str, delta: Mapping[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [{"index": 0, "delta": dict(delta),
                                         "finish_reason": finish}]}


class ScriptedProvider:
    def __init__(self, name: str, script: Sequence[Step] = ("ok",), text: str = "hello there",
                 usage: Usage | None = Usage(10, 5)) -> None:
        self.name = name
        self.script = list(script)
        self.text = text
        self.usage = usage
        self.calls: list[ChatCall] = []

    def _step(self) -> Step:
        step = self.script[0]
        if len(self.script) > 1:
            self.script.pop(0)
        return step

    async def complete(self, call: ChatCall) -> ChatResult:
        self.calls.append(call)
        step = self._step()
        if isinstance(step, Exception):
            raise step
        if step == "hang":
            await asyncio.sleep(3600)
        usage = None if step == "no_usage" else self.usage
        return ChatResult(completion(str(call.body["model"]), self.text, usage), usage)

    async def stream(self, call: ChatCall) -> AsyncIterator[Mapping[str, Any]]:
        self.calls.append(call)
        step = self._step()
        model = str(call.body["model"])
        if isinstance(step, Exception):
            raise step
        if step == "hang":
            await asyncio.sleep(3600)
        yield chunk(model, {"role": "assistant", "content": ""})
        if step == "cut_before":
            raise StreamBrokenError("connection reset before the first token")
        words = self.text.split(" ")
        for i, word in enumerate(words):
            yield chunk(model, {"content": word if i == 0 else " " + word})
            if step == "cut_after":
                raise StreamBrokenError("connection reset mid-stream")
        yield chunk(model, {}, "stop")
        if step != "no_usage" and self.usage is not None:
            yield {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                   "model": model, "choices": [],
                   "usage": {"prompt_tokens": self.usage.prompt_tokens,
                             "completion_tokens": self.usage.completion_tokens,
                             "total_tokens": self.usage.total_tokens}}

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class FakeDeployment:
    name: str
    provider: Provider
    upstream_model: str
    timeouts: Timeouts


@dataclass
class FakeDeployments:
    """A DeploymentSource: model name → its deployments, in configured order."""

    by_model: dict[str, list[FakeDeployment]] = field(default_factory=dict)

    def add(self, model: str, provider: ScriptedProvider, *, name: str | None = None,
            timeouts: Timeouts | None = None) -> ScriptedProvider:
        dep = FakeDeployment(name or f"{model}@{provider.name}", provider, model,
                             timeouts or Timeouts(connect=1.0, first_token=0.3, total=2.0))
        self.by_model.setdefault(model, []).append(dep)
        return provider

    def deployments(self, model: str) -> Sequence[FakeDeployment]:
        return self.by_model.get(model, [])


class BatchingProvider(ScriptedProvider):
    """A ScriptedProvider that also hands its stream over in batches of ``size`` chunks
    (what one network read would carry)."""

    def __init__(self, name: str, size: int, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.size = size

    async def stream_batches(self, call: ChatCall) -> AsyncIterator[list[Mapping[str, Any]]]:
        batch: list[Mapping[str, Any]] = []
        async for item in self.stream(call):
            batch.append(item)
            if len(batch) == self.size:
                yield batch
                batch = []
        if batch:
            yield batch
