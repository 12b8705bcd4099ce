"""What of a prompt a learned router embeds: the part that varies, not the shared boilerplate.

Benchmarks and real traffic put long identical prefixes in front of the question (ARC's
few-shot block is 1,653 characters, Winogrande's 1,221; a system prompt or template in
production). Embedded whole and truncated at 128-256 tokens, every prompt of such a task is
the same vector, so the router cannot tell its questions apart.

:class:`TextFocus` is fitted on the training prompts: every prefix of at least
``MIN_CHARS`` characters that at least ``min_support`` training prompts start with (cut
back to a word boundary) is recorded; a prompt loses the longest recorded prefix it starts
with (never all of itself; a longer prefix nested in a shorter one is dropped when it is
shared by under 60% as many prompts: it reaches into the questions), and what is left,
when longer than ``head + tail`` characters, keeps its head and its tail. The prefixes
are stored in the artifact so that serving strips exactly what training stripped. In the
gateway the text is the last user turn (:func:`last_user_text`), where templates put the
question.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pointsman.types import RouteRequest

MODES = ("question", "full")
MIN_CHARS = 64
MIN_SUPPORT = 10
SUPPORT_SHARE = 0.002
NESTED_SHARE = 0.6
HEAD_CHARS = 1200
TAIL_CHARS = 600
_JOIN = " … "


@dataclass(frozen=True)
class TextFocus:
    """Shared prefixes to strip and the head/tail budget; ``TextFocus()`` changes nothing."""

    prefixes: tuple[str, ...] = ()
    head: int = 0
    tail: int = 0
    _sorted: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def fit(cls, prompts: Sequence[str], *, head: int = HEAD_CHARS,
            tail: int = TAIL_CHARS) -> TextFocus:
        """The prefixes shared by many of ``prompts``, with the given head/tail budget."""
        return cls(tuple(shared_prefixes(prompts)), head, tail)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.prefixes, key=len, reverse=True))
        object.__setattr__(self, "_sorted", ordered)

    @property
    def active(self) -> bool:
        return bool(self.prefixes) or self.head > 0

    def apply(self, texts: Sequence[str]) -> list[str]:
        return [self.one(text) for text in texts]

    def one(self, text: str) -> str:
        for prefix in self._sorted:
            if len(text) > len(prefix) and text.startswith(prefix):
                rest = text[len(prefix):]
                if rest.strip():
                    text = rest
                    break
        if self.head > 0 and len(text) > self.head + self.tail + len(_JOIN):
            text = text[:self.head] + _JOIN + (text[-self.tail:] if self.tail else "")
        return text

    def to_state(self) -> dict[str, Any]:
        return {"prefixes": list(self.prefixes), "head": self.head, "tail": self.tail}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> TextFocus:
        """Rebuild from an artifact's state; ``None`` (older artifacts) is no focus."""
        if state is None:
            return cls()
        prefixes, head, tail = state["prefixes"], state["head"], state["tail"]
        if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
            raise ValueError("focus.prefixes must be a list of strings")
        if not isinstance(head, int) or not isinstance(tail, int) or head < 0 or tail < 0:
            raise ValueError("focus.head/tail must be non-negative integers")
        return cls(tuple(prefixes), head, tail)

    def describe(self) -> str:
        if not self.active:
            return "the whole prompt"
        longest = max((len(p) for p in self.prefixes), default=0)
        return (f"the prompt minus {len(self.prefixes)} shared prefixes (longest {longest} "
                f"chars), head {self.head} + tail {self.tail} chars when longer")


def shared_prefixes(prompts: Sequence[str], *, min_chars: int = MIN_CHARS,
                    min_support: int | None = None) -> list[str]:
    """Prefixes (≥ ``min_chars``, cut to a word boundary) that many prompts start with.

    Candidates are the longest common prefixes of neighbours in sorted order; one is kept
    when at least ``min_support`` prompts (default: 10 or 0.2% of them) start with it.
    """
    ordered = sorted(set(prompts))
    support = min_support or max(MIN_SUPPORT, int(SUPPORT_SHARE * len(ordered)))
    found: dict[str, int] = {}
    for left, right in itertools.pairwise(ordered):
        prefix = _boundary(_common(left, right))
        if len(prefix) >= min_chars and prefix not in found:
            count = _count_starting(ordered, prefix)
            if count >= support:
                found[prefix] = count
    return sorted(p for p, n in found.items() if not _question_level(p, n, found))


def _question_level(prefix: str, count: int, found: dict[str, int]) -> bool:
    """True when a shorter kept prefix is shared by many more prompts: ``prefix`` then
    reaches into the questions themselves (``<template> Which of the following``)."""
    return any(len(other) < len(prefix) and prefix.startswith(other)
               and count < NESTED_SHARE * n for other, n in found.items())


def _common(a: str, b: str) -> str:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return a[:i]


def _boundary(prefix: str) -> str:
    """Cut back to just after the last character that is neither a letter nor a digit."""
    for i in range(len(prefix) - 1, -1, -1):
        if not prefix[i].isalnum():
            return prefix[:i + 1]
    return ""


def _count_starting(ordered: Sequence[str], prefix: str) -> int:
    start = bisect.bisect_left(ordered, prefix)
    end = bisect.bisect_left(ordered, prefix + "\U0010ffff")
    return end - start


def last_user_text(request: RouteRequest) -> str:
    """The last user turn (the question a template wraps); the whole text when none."""
    for message in reversed(request.messages):
        if message.role == "user" and message.content:
            return message.content
    return "\n".join(m.content for m in request.messages if m.content)
