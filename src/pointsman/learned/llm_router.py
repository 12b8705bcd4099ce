"""LLM-as-router: a cheap model is asked how hard a request is.

The model gets a short system prompt and the request's text (clipped), and must answer
JSON such as ``{"difficulty": "hard"}`` (temperature 0, a few output tokens, JSON mode).
Each class maps to a complexity (``easy`` 15, ``medium`` 50, ``hard`` 85 by default). The
answer is cached by a hash of the prompt text (LRU). A timeout, a provider error or an
unreadable answer falls back to the base scorer (the heuristic), recorded in
``Signal.stage`` as ``llm-fallback:<reason>``; failures are not cached.

``ascore`` is what the gateway awaits; ``score`` (synchronous, no I/O) answers from the
cache or the fallback, so ``pointsman route`` stays offline.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pointsman.errors import PointsmanError
from pointsman.learned.features import prompt_text
from pointsman.learned.model_call import ModelCall, Reply
from pointsman.signals.base import ComplexityScorer, Signal
from pointsman.types import RouteRequest

DEFAULT_CLASSES: dict[str, float] = {"easy": 15.0, "medium": 50.0, "hard": 85.0}
SYSTEM_PROMPT = (
    "You grade how hard a request is for a language model. Classes: {classes}. "
    "'easy': small talk, look-ups, short rewrites. 'hard': multi-step reasoning, maths, "
    "non-trivial code, expert knowledge. Reply with JSON only: {{\"difficulty\": \"<class>\"}}."
)


class PromptCache:
    """A thread-safe LRU of prompt hash → complexity."""

    def __init__(self, size: int) -> None:
        self.size = max(size, 1)
        self._items: OrderedDict[bytes, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes) -> tuple[float, str] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: bytes, value: tuple[float, str]) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class LlmRouterScorer:
    """An :class:`~pointsman.signals.base.AsyncComplexityScorer` asking a cheap model
    through ``call`` (the gateway's goes through its executor: the caller's budget pays);
    the signal's ``cost_usd`` is what asking cost (0 for a cached answer)."""

    name = "llm"

    def __init__(self, call: ModelCall, fallback: ComplexityScorer, *,
                 timeout_s: float = 2.0, classes: Mapping[str, float] | None = None,
                 cache_size: int = 10_000, max_prompt_chars: int = 4000) -> None:
        self.call = call
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.classes = dict(classes or DEFAULT_CLASSES)
        self.cache = PromptCache(cache_size)
        self.max_prompt_chars = max_prompt_chars
        self.calls = 0

    def score(self, request: RouteRequest) -> Signal:
        found = self.cache.get(self.cache.key(prompt_text(request)))
        if found is not None:
            return self._signal(*found)
        return self._fallback(request, "offline")

    async def ascore(self, request: RouteRequest) -> Signal:
        text = prompt_text(request)
        key = self.cache.key(text)
        found = self.cache.get(key)
        if found is not None:
            return self._signal(*found)
        try:
            reply = await self._ask(request, text)
        except TimeoutError:
            return self._fallback(request, "timeout")
        except PointsmanError as exc:
            return self._fallback(request, exc.code)
        label = parse_label(reply.body, self.classes)
        if label is None:
            return replace(self._fallback(request, "unreadable"), cost_usd=reply.cost_usd)
        value = (self.classes[label], label)
        self.cache.put(key, value)
        return replace(self._signal(*value), cost_usd=reply.cost_usd)

    async def _ask(self, request: RouteRequest, text: str) -> Reply:
        self.calls += 1
        body: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT.format(
                    classes=", ".join(self.classes))},
                {"role": "user", "content": text[: self.max_prompt_chars]},
            ],
            "temperature": 0,
            "max_tokens": 16,
            "response_format": {"type": "json_object"},
        }
        return await self.call(request, body, self.timeout_s)

    def _signal(self, value: float, label: str) -> Signal:
        return Signal(value, {f"llm:{label}": value}, stage="llm")

    def _fallback(self, request: RouteRequest, why: str) -> Signal:
        base = self.fallback.score(request)
        return Signal(base.score, base.signals, base.task_type, stage=f"llm-fallback:{why}",
                      target=base.target)


def parse_label(body: Mapping[str, Any], classes: Mapping[str, float],
                key: str = "difficulty") -> str | None:
    """The class under ``key`` in an OpenAI chat.completion body's JSON, or ``None``."""
    try:
        content = body["choices"][0]["message"]["content"]
        answer = json.loads(content)
        label = answer[key] if isinstance(answer, dict) else answer
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    label = str(label).strip().lower()
    return label if label in classes else None
