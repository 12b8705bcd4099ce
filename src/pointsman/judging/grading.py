"""The pure part of judging: which requests are sampled, the judge's prompts, and how its
verdicts become a score in [0, 1] for the routed answer.

Pairwise (position swap): the judge sees (routed, reference) and (reference, routed); each
verdict scores the routed answer 1 (better), 0.5 (tie) or 0 (worse) and the label is their
mean, so a judge that always prefers the first answer scores 0.5. Absolute: the judge's
0-10 rating of the routed answer, divided by 10.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pointsman.judging.config import JudgingConfig

_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
MAX_QUESTION_CHARS = 20_000


def sampled(request_id: str, share: float) -> bool:
    """Whether a request is judged: the first 8 bytes of SHA-256 of its id, against the
    share (the same id is always in or out, in every process and replay)."""
    if share >= 1.0:
        return True
    if share <= 0.0:
        return False
    digest = hashlib.sha256(request_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < share


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def question_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The conversation the answer replies to, as the judge reads it."""
    lines = [f"{m.get('role', 'user')}: {content_text(m.get('content'))}" for m in messages
             if isinstance(m, Mapping)]
    if len(lines) == 1 and lines[0].startswith("user: "):
        lines = [lines[0][len("user: "):]]
    return "\n".join(lines)[-MAX_QUESTION_CHARS:]


def answer_text(body: Mapping[str, Any]) -> str:
    """The text of an OpenAI chat.completion's first choice."""
    choices = body.get("choices") or []
    if not choices:
        return ""
    message = choices[0].get("message") or {}
    return content_text(message.get("content"))


def fill(template: str, values: Mapping[str, str]) -> str:
    """The template with its ``{name}`` placeholders replaced (other braces left alone)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def judge_prompts(cfg: JudgingConfig, question: str, routed: str,
                  reference: str) -> list[str]:
    """The judge's prompts: two (both orders, routed first) or one (absolute)."""
    if cfg.mode == "absolute":
        return [fill(cfg.absolute_prompt, {"question": question, "answer": routed,
                                           "reference": reference})]
    return [fill(cfg.pairwise_prompt, {"question": question, "answer_a": a, "answer_b": b})
            for a, b in ((routed, reference), (reference, routed))]


def parse_verdict(text: str) -> str | None:
    """``A``, ``B`` or ``C`` (tie): the last ``[[X]]`` in the judge's reply."""
    found = _VERDICT.findall(text)
    return found[-1] if found else None


def parse_rating(text: str) -> float | None:
    """The last ``[[n]]`` rating in the judge's reply, when it is in [0, 10]."""
    found = _RATING.findall(text)
    if not found:
        return None
    rating = float(found[-1])
    return rating if 0.0 <= rating <= 10.0 else None


def score(cfg: JudgingConfig, replies: Sequence[str]) -> float | None:
    """The routed answer's score from the judge's replies, or None when one is unreadable."""
    if cfg.mode == "absolute":
        rating = parse_rating(replies[0])
        return None if rating is None else rating / 10.0
    first, swapped = parse_verdict(replies[0]), parse_verdict(replies[1])
    if first is None or swapped is None:
        return None
    routed_first = {"A": 1.0, "C": 0.5, "B": 0.0}[first]
    routed_second = {"B": 1.0, "C": 0.5, "A": 0.0}[swapped]
    return (routed_first + routed_second) / 2.0
