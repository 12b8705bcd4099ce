"""Actual cost from reported usage, and from counted tokens when a stream sends none."""

from __future__ import annotations

from typing import Any

import pytest

from pointsman import load_config
from pointsman.budget.cost import StreamMeter, chunk_text, cost_of, usage_from_chunk
from pointsman.providers.base import Usage
from pointsman.router import resolve_catalog
from pointsman.tokens import estimate_text_tokens

SPEC = resolve_catalog(load_config()).get("gpt-4.1")


def chunk(text: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    body: dict[str, Any] = {"object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": delta}] if usage is None else []}
    if usage is not None:
        body["usage"] = usage
    return body


def test_cost_from_reported_usage_uses_catalog_prices() -> None:
    cost = cost_of(SPEC, Usage(1000, 500))
    assert cost.usd == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    assert cost.reported


def test_stream_with_a_usage_chunk_uses_it() -> None:
    meter = StreamMeter(SPEC, prompt_tokens_estimate=40)
    meter.feed_all([chunk("Hello"), chunk(" world"),
                    chunk(usage={"prompt_tokens": 37, "completion_tokens": 2})])
    cost = meter.cost()
    assert (cost.prompt_tokens, cost.completion_tokens, cost.reported) == (37, 2, True)


def test_stream_without_usage_is_costed_from_counted_tokens() -> None:
    pieces = ["The answer ", "is forty-two, ", "as everyone knows."]
    meter = StreamMeter(SPEC, prompt_tokens_estimate=40)
    meter.feed_all(chunk(p) for p in pieces)
    meter.feed({"choices": [{"delta": {"tool_calls": [
        {"function": {"name": "lookup", "arguments": '{"q": "x"}'}}]}}]})
    cost = meter.cost()
    counted = estimate_text_tokens("".join(pieces) + 'lookup{"q": "x"}')
    assert (cost.prompt_tokens, cost.completion_tokens, cost.reported) == (40, counted, False)
    assert cost.usd == pytest.approx(SPEC.cost(40, counted))


def test_malformed_usage_is_ignored() -> None:
    assert usage_from_chunk({"usage": {"prompt_tokens": "3"}}) is None
    assert usage_from_chunk({}) is None


def test_counted_text_covers_every_chunk_shape() -> None:
    """Role-only, content, refusal, null delta, several choices and tool calls: the meter
    counts what chunk_text reads from each (content and tool-call names and arguments)."""
    chunks: list[dict[str, object]] = [
        {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"delta": {"content": "one "}}]},
        {"choices": [{"delta": {"refusal": "no"}}]},
        {"choices": [{"delta": None, "finish_reason": "stop"}]},
        {"choices": [{"delta": {"content": "two "}}, {"delta": {"content": "three "}}]},
        {"choices": [{"delta": {"content": "four", "tool_calls": [
            {"function": {"name": "f", "arguments": "{}"}}]}}]},
        {"choices": []},
    ]
    meter = StreamMeter(SPEC, prompt_tokens_estimate=1)
    meter.feed_all(chunks)
    expected = estimate_text_tokens("".join(chunk_text(c) for c in chunks))
    assert expected == estimate_text_tokens("one two three fourf{}")
    assert meter.cost().completion_tokens == expected
