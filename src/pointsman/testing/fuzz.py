"""A type-confusion fuzzer for the gateway's doors.

Each case takes a valid request body of one door (Chat Completions, Messages, its
count_tokens, Responses) for one model, replaces one field path (every key and list item,
nested ones included) with a wrong value (another type, a huge or deeply nested value,
unicode junk) or deletes it, and sends it over one keep-alive connection. A gateway that
holds up answers every case with a status below 500 (a 4xx naming the field, or a 200 when
the value happens to be acceptable) and keeps the connection open: a 5xx or a reset
connection is a finding. The cases are a deterministic shuffle of the whole grid
(``seed``), so a short run is a fixed sample of a long one.

Used by ``tests/test_gateway_fuzz.py`` (a short run) and ``benchmarks/fuzz_gateway.py``.
"""

from __future__ import annotations

import copy
import http.client
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pointsman import jsonio
from pointsman.config import PointsmanConfig, _merge, default_config_data, parse_config

Path = tuple[str | int, ...]
DELETE = object()
RAW = "\u0000raw-json\u0000"  # stands for a value written as raw JSON (too deep for orjson)
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def chat_body(model: str) -> dict[str, Any]:
    return {
        "model": model, "max_tokens": 64, "temperature": 0.5, "top_p": 0.9, "stop": ["END"],
        "user": "u1", "seed": 1, "n": 1, "parallel_tool_calls": True, "metadata": {"a": "b"},
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": "checking", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": "and tomorrow?"}],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather", "parameters": SCHEMA}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "w", "schema": SCHEMA}}}


def messages_body(model: str) -> dict[str, Any]:
    return {
        "model": model, "max_tokens": 2048, "temperature": 0.5, "top_k": 5,
        "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "checking"},
                {"type": "tool_use", "id": "tu_1", "name": "get_weather",
                 "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": "sunny"},
                {"type": "text", "text": "and tomorrow?"}]}],
        "tools": [{"name": "get_weather", "description": "Current weather",
                   "input_schema": SCHEMA}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024}}


def responses_body(model: str) -> dict[str, Any]:
    return {
        "model": model, "instructions": "Be brief.", "temperature": 0.5, "top_p": 0.9,
        "max_output_tokens": 64, "store": False, "user": "u1", "metadata": {"a": "b"},
        "parallel_tool_calls": True, "reasoning": {"effort": "low"},
        "input": [
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather",
             "arguments": "{\"city\": \"Paris\"}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"role": "user", "content": "and tomorrow?"}],
        "tools": [{"type": "function", "name": "get_weather", "description": "Current weather",
                   "parameters": SCHEMA, "strict": False}],
        "tool_choice": "auto",
        "text": {"format": {"type": "json_schema", "name": "w", "schema": SCHEMA}}}


WIRES = {"gpt-4o-mini": "openai", "claude-haiku-4-5": "anthropic", "gpt-4.1": "openai_responses"}
KEY = "sk-fuzz-0123456789"


def gateway_config(stub_url: str, stub_base_url: str) -> PointsmanConfig:
    """A gateway in front of the stub with one model per upstream wire format (OpenAI
    Chat, Anthropic Messages, OpenAI Responses), one key, no request log, no retries."""
    endpoints = {f"stub-{kind}": {"kind": kind, "base_url": stub_url if kind == "anthropic"
                                  else stub_base_url} for kind in WIRES.values()}
    return parse_config(_merge(default_config_data(), {
        "router": {"candidates": list(WIRES)}, "rules": [],
        "providers": {"endpoints": endpoints,
                      "timeouts": {"connect": 5, "first_token": 30, "total": 60},
                      "deployments": {m: [{"endpoint": f"stub-{k}"}] for m, k in WIRES.items()}},
        "gateway": {"request_log": {"enabled": False}, "retry": {"max_retries": 0},
                    "keys": [{"name": "fuzz", "key": KEY}]}}), "<fuzz>")


DOORS = {"/v1/chat/completions": chat_body, "/v1/messages": messages_body,
         "/v1/messages/count_tokens": messages_body, "/v1/responses": responses_body}


def _deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1"
                                                               + "}" * depth)


def wrong_values() -> list[tuple[str, Any]]:
    """(label, value) of every replacement; a ``str`` starting with RAW is raw JSON."""
    return [
        ("delete", DELETE), ("null", None), ("true", True), ("false", False), ("zero", 0),
        ("negative", -1), ("int", 5), ("u64", 2**64 - 1), ("float", 1.5),
        ("huge-float", 1e308), ("empty-string", ""), ("string", "x"),
        ("unicode-junk", "\u202e\u0000\ufeff\U0001d518\u0301\ud7ff\uffff"),
        ("huge-string", "A" * 200_000), ("empty-list", []), ("list-of-int", [5]),
        ("list-of-null", [None]), ("list-of-string", ["x"]), ("empty-object", {}),
        ("object", {"x": 5}), ("object-type-int", {"type": 5}),
        ("object-type-text", {"type": "text", "text": 5}),
        ("long-list", list(range(5000))), ("deep-list-1000", RAW + _deep(1000, "list")),
        ("deep-object-300", RAW + _deep(300, "object")),
        ("deep-list-100", RAW + _deep(100, "list")),
    ]


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every key and list item path in ``value`` (depth first)."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        yield (*prefix, key)
        yield from paths(item, (*prefix, key))


def replaced(body: dict[str, Any], path: Path, value: Any) -> bytes:
    """``body`` as JSON bytes with ``path`` replaced by ``value`` (or deleted)."""
    out = copy.deepcopy(body)
    parent: Any = out
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if value is DELETE:
        del parent[last]
        return jsonio.dumps(out)
    raw = isinstance(value, str) and value.startswith(RAW)
    parent[last] = RAW if raw else value
    data = jsonio.dumps(out)
    if raw:
        data = data.replace(jsonio.dumps(RAW), value[len(RAW):].encode(), 1)
    return data


@dataclass(frozen=True, slots=True)
class Case:
    door: str
    model: str
    path: str
    label: str
    body: bytes


def grid(models: list[str]) -> list[tuple[str, str, Path, int]]:
    """Every (door, model, path, replacement index) of the fuzzing grid."""
    out: list[tuple[str, str, Path, int]] = []
    count = len(wrong_values())
    for door, make in DOORS.items():
        for model in models:
            for path in paths(make(model)):
                out.extend((door, model, path, i) for i in range(count))
    return out


def cases(models: list[str], count: int, seed: int = 0) -> Iterator[Case]:
    """``count`` cases, a seeded shuffle of the grid (cycled when ``count`` exceeds it);
    one case in four also asks for a stream where the door can."""
    rng = random.Random(seed)
    everything = grid(models)
    rng.shuffle(everything)
    values = wrong_values()
    for n in range(count):
        door, model, path, i = everything[n % len(everything)]
        body = DOORS[door](model)
        if door != "/v1/messages/count_tokens" and path[0] != "stream" and rng.random() < 0.25:
            body["stream"] = True
        label, value = values[i]
        yield Case(door, model, ".".join(map(str, path)), label, replaced(body, path, value))


@dataclass
class Report:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return f"{self.sent} cases; statuses {shown}; {len(self.findings)} findings"


class Client:
    """One keep-alive HTTP/1.1 connection; a reset is reported, then reconnected."""

    def __init__(self, url: str, key: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        self.timeout = timeout
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body, self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = self._connect()

    def close(self) -> None:
        self.conn.close()


def run(url: str, key: str, all_cases: Iterator[Case]) -> Report:
    """Send every case; a status of 500 or more, or a connection the server dropped, is a
    finding."""
    report = Report()
    client = Client(url, key)
    try:
        for case in all_cases:
            report.sent += 1
            where = f"{case.door} {case.model} {case.path} := {case.label}"
            try:
                status, data = client.post(case.door, case.body)
            except (OSError, http.client.HTTPException) as exc:
                report.findings.append(f"{where}: connection {type(exc).__name__}: {exc}")
                client.reconnect()
                continue
            report.statuses[status] += 1
            if status >= 500:
                report.findings.append(f"{where}: {status} {data[:300]!r}")
    finally:
        client.close()
    return report
