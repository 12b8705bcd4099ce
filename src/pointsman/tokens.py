"""Offline token estimates (no tokenizer download).

BPE tokenizers such as OpenAI's o200k and Anthropic's average close to four
characters per token on English prose and code, while CJK and other non-Latin
scripts take about one token per character. We count ASCII and non-ASCII
characters separately and add the per-message framing overhead that chat
formats add. The estimate is within about 15% of tiktoken's count on English
text, which is enough for routing and for reserving budget before a call;
the actual cost is settled from the provider's reported usage.
"""

from __future__ import annotations

from collections.abc import Iterable

from pointsman.types import Message

MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMING_TOKENS = 3


def estimate_text_tokens(text: str) -> int:
    """Estimated token count of one string."""
    if not text:
        return 0
    if text.isascii():
        return max(1, (len(text) + 3) // 4)
    ascii_chars = sum(1 for ch in text if ch < "\x80")
    return max(1, (ascii_chars + 3) // 4 + (len(text) - ascii_chars))


def estimate_message_tokens(messages: Iterable[Message]) -> int:
    """Estimated prompt tokens of a chat conversation, framing included."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + estimate_text_tokens(message.content)
    return total
