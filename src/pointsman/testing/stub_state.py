"""The upstream stub's state: behaviours per model, counters, and the deterministic answer.

A :class:`Behavior` says how one upstream model misbehaves; the state is shared between
the server thread and the test thread, so every access takes a lock.

The answer is ``"stub answer from <model>: <last user message, first 80 characters>"``;
a token is one whitespace-separated word, so ``completion_tokens`` is the number of words
(or of tool-argument pieces) sent and ``prompt_tokens`` is the number of words in the
request's messages (and system prompt) plus one per message.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

CutMode = Literal["reset", "end", "garbage", "error"]
ECHO_CHARS = 80


@dataclass(frozen=True, slots=True)
class Behavior:
    """How one upstream model answers.

    delay_ms        wait before the response (streams: before the headers)
    token_delay_ms  wait before each streamed token
    statuses        answer the next len(statuses) requests with these HTTP statuses
    retry_after     the Retry-After header sent with 429/503/529 (None: no header)
    hang            never answer (until the client gives up or the stub stops)
    cut_after       streams: stop after this many tokens (0: before the first token)
    cut_mode        how a cut stream stops: "reset" (connection closed mid-body), "end"
                    (a clean end without the terminator), "garbage" (a malformed event) or
                    "error" (an error event, as an overloaded upstream sends mid-stream)
    tokens          the answer's length in tokens (words repeat); None: the natural answer
    tool_call       when the request has tools and ends with a user turn, call the first tool
    text            a fixed answer instead of the echo
    usage           False: streams carry no usage chunk, even when asked (as some
                    OpenAI-compatible servers do)
    logprob         the log-probability of every answer token, sent when the request asks
                    for ``logprobs`` (OpenAI) or includes ``message.output_text.logprobs``
                    (Responses)
    cached_tokens   prompt tokens read from the upstream's prompt cache, on top of the
                    counted words: OpenAI ``prompt_tokens_details.cached_tokens``, Anthropic
                    ``cache_read_input_tokens``, Responses ``input_tokens_details``
    cache_creation_tokens   prompt tokens written to the cache, on top of the others
                    (Anthropic ``cache_creation_input_tokens``, Responses
                    ``input_tokens_details.cache_write_tokens``; Chat Completions has none)
    reasoning_tokens  hidden reasoning tokens, on top of the answer's: OpenAI
                    ``completion_tokens_details.reasoning_tokens``, Responses
                    ``output_tokens_details`` (and a reasoning item), Anthropic counts them
                    in ``output_tokens`` only. The detail fields are sent only when non-zero
                    (OpenAI, Anthropic), always on Responses
    judge           act as a judge with scripted grades (see :func:`judge_reply`): the
                    answer is a verdict for pointsman's judging prompts instead of the echo
    judge_low       the models whose answers the judge grades low on prompts marked hard
                    (the word ``hard`` in the question); everything else grades high
    """

    delay_ms: float = 0.0
    token_delay_ms: float = 0.0
    statuses: tuple[int, ...] = ()
    retry_after: str | None = "1"
    hang: bool = False
    cut_after: int | None = None
    cut_mode: CutMode = "reset"
    tokens: int | None = None
    tool_call: bool = False
    text: str | None = None
    usage: bool = True
    logprob: float = -0.05
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    judge: bool = False
    judge_low: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.cut_mode not in ("reset", "end", "garbage", "error"):
            raise ValueError(f"cut_mode must be reset, end, garbage or error, not "
                             f"{self.cut_mode!r}")
        if any(not 100 <= s <= 599 for s in self.statuses):
            raise ValueError(f"statuses must be HTTP statuses, got {list(self.statuses)}")
        for name in ("cached_tokens", "cache_creation_tokens", "reasoning_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a whole number >= 0")

    def updated(self, **changes: Any) -> Behavior:
        known = {f.name for f in fields(Behavior)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown behaviour fields {unknown}; known: {sorted(known)}")
        if "statuses" in changes:
            changes["statuses"] = tuple(int(s) for s in changes["statuses"])
        if "judge_low" in changes:
            changes["judge_low"] = tuple(str(m) for m in changes["judge_low"])
        if changes.get("retry_after") is not None:
            changes["retry_after"] = str(changes["retry_after"])
        return replace(self, **changes)


@dataclass(slots=True)
class ModelStats:
    requests: int = 0
    last_request: dict[str, Any] | None = None
    last_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Turn:
    """What one request gets: a status to fail with, or the behaviour to answer with."""

    number: int
    behavior: Behavior
    status: int | None


class StubState:
    """Behaviours (per model, ``"*"`` for the rest), status queues and counters."""

    def __init__(self, default: Behavior | None = None, api_key: str | None = None) -> None:
        self.initial = default or Behavior()
        self.initial_api_key = api_key
        self.api_key = api_key  # None: any key (or none) is accepted
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._behaviors: dict[str, Behavior] = {}
        self._stats: dict[str, ModelStats] = {}
        self._total = 0
        self._clients: set[str] = set()  # client "host:port"s seen: one per TCP connection

    def behave(self, model: str, **changes: Any) -> Behavior:
        with self._lock:
            base = self._behaviors.get(model) or self._behaviors.get("*") or self.initial
            self._behaviors[model] = base.updated(**changes)
            return self._behaviors[model]

    def reset(self) -> None:
        with self._lock:
            self._behaviors.clear()
            self._stats.clear()
            self._total = 0
            self._clients.clear()
            self.api_key = self.initial_api_key

    def take_turn(self, model: str, body: Mapping[str, Any],
                  headers: Mapping[str, str], client: str | None = None) -> Turn:
        """Count the request (and its connection, ``client`` being its "host:port"), record
        it, and pop the model's next queued status."""
        with self._lock:
            self._total += 1
            if client is not None:
                self._clients.add(client)
            stats = self._stats.setdefault(model, ModelStats())
            stats.requests += 1
            stats.last_request = copy.deepcopy(dict(body))
            stats.last_headers = dict(headers)
            behavior = self._behaviors.get(model) or self._behaviors.get("*") or self.initial
            status = None
            if behavior.statuses:
                status = behavior.statuses[0]
                self._behaviors[model] = replace(behavior, statuses=behavior.statuses[1:])
            return Turn(self._total, behavior, status)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"total": self._total, "connections": len(self._clients),
                    "models": {m: asdict(s) for m, s in self._stats.items()},
                    "behaviors": {m: asdict(b) for m, b in self._behaviors.items()}}

    def models(self) -> list[str]:
        with self._lock:
            return sorted((set(self._behaviors) | set(self._stats)) - {"*"})


# -- the deterministic answer ---------------------------------------------------------------

def words(text: str) -> int:
    return len(text.split())


def content_text(content: Any) -> str:
    """The text of a message's content: a string or a list of typed parts (both APIs)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for part in content:
        if isinstance(part, dict):
            if isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif "content" in part:
                parts.append(content_text(part["content"]))
    return " ".join(parts)


def prompt_tokens(messages: Sequence[Any], system: Any = None) -> int:
    total = words(content_text(system)) if system else 0
    for message in messages:
        if isinstance(message, dict):
            total += 1 + words(content_text(message.get("content")))
    return total


@dataclass(frozen=True, slots=True)
class Plan:
    """The answer to send: text tokens, or one tool call whose arguments come in pieces."""

    pieces: tuple[str, ...]
    finish: Literal["stop", "length", "stop_sequence", "tool"]
    prompt_tokens: int
    stop_sequence: str | None = None
    tool_name: str | None = None
    tool_id: str | None = None

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)

    @property
    def text(self) -> str:
        return "" if self.tool_name else "".join(self.pieces)


LOW_GRADE, HIGH_GRADE = 2, 9
_ANSWERED_BY = re.compile(r"stub answer from ([^\s:]+):")


def _section(prompt: str, start: str, end: str) -> str | None:
    at = prompt.find(start)
    if at < 0:
        return None
    stop = prompt.find(end, at + len(start))
    return prompt[at + len(start):stop if stop >= 0 else len(prompt)]


def _grade(answer: str, hard: bool, low: Sequence[str]) -> int:
    """An answer's scripted grade: low when the question is hard and the stub answer came
    from one of the ``low`` models, high otherwise."""
    found = _ANSWERED_BY.search(answer)
    return LOW_GRADE if hard and found is not None and found.group(1) in low else HIGH_GRADE


def judge_reply(prompt: str, low: Sequence[str]) -> str:
    """A judge's verdict on one of pointsman's judging prompts (the default templates'
    markers): ``Rating: [[n]]`` for an absolute prompt, ``[[A]]`` / ``[[B]]`` / ``[[C]]``
    (tie) for a pairwise one, by the scripted grades of the answers it shows."""
    question = _section(prompt, "[Question]", "[End of Question]") or prompt
    hard = re.search(r"\bhard\b", question, re.IGNORECASE) is not None
    single = _section(prompt, "[The Answer]", "[End of Answer]")
    if single is not None:
        return f"Rating: [[{_grade(single, hard, low)}]]"
    a = _grade(_section(prompt, "[Answer A]", "[End of Answer A]") or "", hard, low)
    b = _grade(_section(prompt, "[Answer B]", "[End of Answer B]") or "", hard, low)
    return "[[A]]" if a > b else "[[B]]" if b > a else "[[C]]"


def answer_text(model: str, last_user: str, behavior: Behavior) -> list[str]:
    text = (judge_reply(last_user, behavior.judge_low) if behavior.judge else
            behavior.text or f"stub answer from {model}: {last_user[:ECHO_CHARS]}")
    tokens = text.split() or ["(empty)"]
    if behavior.tokens is not None:
        tokens = [tokens[i % len(tokens)] for i in range(behavior.tokens)]
    return [t if i == 0 else " " + t for i, t in enumerate(tokens)]


def text_plan(model: str, last_user: str, behavior: Behavior, prompt: int,
              max_tokens: int | None, stops: Sequence[str]) -> Plan:
    pieces = answer_text(model, last_user, behavior)
    full = "".join(pieces)
    for stop in stops:
        at = full.find(stop) if stop else -1
        if at >= 0:
            kept = full[:at].split()
            pieces = [t if i == 0 else " " + t for i, t in enumerate(kept)]
            return _limited(Plan(tuple(pieces), "stop_sequence", prompt, stop), max_tokens)
    return _limited(Plan(tuple(pieces), "stop", prompt), max_tokens)


def _limited(plan: Plan, max_tokens: int | None) -> Plan:
    if max_tokens is not None and len(plan.pieces) > max_tokens:
        return replace(plan, pieces=plan.pieces[:max_tokens], finish="length",
                       stop_sequence=None)
    return plan


def tool_arguments(schema: Any, echo: str) -> dict[str, Any]:
    """Arguments for a tool from its JSON schema: strings echo the user, numbers are 1."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return {}
    samples: dict[str, Any] = {"string": echo[:40], "integer": 1, "number": 1,
                               "boolean": True, "array": [], "object": {}}
    return {name: samples.get(str(spec.get("type")) if isinstance(spec, dict) else "")
            for name, spec in props.items()}


def tool_plan(name: str, schema: Any, echo: str, prompt: int, call_id: str) -> Plan:
    arguments = json.dumps(tool_arguments(schema, echo))
    third = max(1, len(arguments) // 3)
    pieces = [arguments[i:i + third] for i in range(0, len(arguments), third)]
    return Plan(tuple(pieces), "tool", prompt, tool_name=name, tool_id=call_id)
