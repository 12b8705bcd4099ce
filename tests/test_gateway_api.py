"""The gateway through real HTTP: the official ``openai`` SDK (sync, async, streaming) and
httpx against uvicorn on 127.0.0.1:0, in front of scripted providers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from fake_providers import FakeDeployments, ScriptedProvider
from gateway_harness import running
from pointsman.config import PointsmanConfig, load_config
from pointsman.errors import RateLimitedError, UpstreamServerError
from pointsman.gateway.app import create_app
from pointsman.providers.base import Usage
from pointsman.state import AttemptOutcome
from pointsman.types import RouteRequest

MODELS = ["gpt-4o-mini", "claude-haiku-4-5", "gpt-4.1"]
KEYS = [
    {"key": "sk-alice-0123456789", "name": "alice-key", "user": "alice", "team": "red",
     "models": ["auto", "gpt-4o-mini", "router-*"]},
    {"key": "sk-admin-0123456789", "name": "admin", "admin": True},
]


def gateway_config(tmp_path: Path, **extra: Any) -> PointsmanConfig:
    data: dict[str, Any] = {
        "router": {"candidates": MODELS, "strong_model": "gpt-4.1",
                   "weak_model": "gpt-4o-mini", "fallbacks": {"gpt-4o-mini": ["gpt-4.1"]}},
        "gateway": {"keys": KEYS, "max_body_bytes": 20_000,
                    "request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0},
                    "health": {"consecutive_failures": 2, "cooldown_s": 0.4}},
        **extra,
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.deps = FakeDeployments()
        self.providers = {m: self.deps.add(m, ScriptedProvider("fake")) for m in MODELS}
        self.config = gateway_config(tmp_path)
        self.db = tmp_path / "requests.db"

    def script(self, model: str, *steps: Any) -> None:
        self.providers[model].script = list(steps)


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[World, str]]:
    w = World(tmp_path)
    with running(create_app(w.config, w.deps)) as url:
        yield w, url


def client(clients: ExitStack, url: str, key: str = "sk-alice-0123456789") -> openai.OpenAI:
    """An SDK client, closed when ``clients`` closes (the ``clients`` fixture: after the
    test, before the ``world`` gateway stops)."""
    return clients.enter_context(openai.OpenAI(base_url=f"{url}/v1", api_key=key,
                                               max_retries=0))


def records(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    try:
        return [json.loads(r[0]) for r in conn.execute("SELECT record FROM requests ORDER BY ts")]
    finally:
        conn.close()


def test_auto_routing_answers_with_headers(world: tuple[World, str],
                                           clients: ExitStack) -> None:
    _, url = world
    raw = client(clients, url).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "What is the capital of France?"}])
    answer = raw.parse()
    assert raw.headers["x-pointsman-model"] == answer.model == "gpt-4o-mini"
    assert raw.headers["x-pointsman-attempts"] == "gpt-4o-mini"
    assert "complexity" in raw.headers["x-pointsman-reason"]
    assert float(raw.headers["x-pointsman-cost-usd"]) > 0
    assert answer.choices[0].message.content == "hello there"
    assert answer.usage is not None and answer.usage.prompt_tokens == 10


def test_explicit_model_falls_back_on_429_and_500(world: tuple[World, str],
                                                  clients: ExitStack) -> None:
    w, url = world
    w.script("gpt-4o-mini", RateLimitedError("slow down", retry_after=0.2), "ok")
    raw = client(clients, url).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-pointsman-attempts"] == "gpt-4o-mini,gpt-4.1"
    assert raw.parse().model == "gpt-4.1"
    assert "explicitly" in raw.headers["x-pointsman-reason"]


def test_all_failing_is_one_error_listing_each_attempt(world: tuple[World, str],
                                                       clients: ExitStack) -> None:
    w, url = world
    w.script("gpt-4o-mini", UpstreamServerError("upstream said 500", status=500))
    w.script("gpt-4.1", UpstreamServerError("upstream said 503", status=503))
    with pytest.raises(openai.APIStatusError) as info:
        client(clients, url).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    error: Any = info.value.body
    assert error["code"] == "all_models_failed"
    assert [a["model"] for a in error["attempts"]] == ["gpt-4o-mini", "gpt-4.1"]
    assert "upstream said 500" in error["message"] and "upstream said 503" in error["message"]


def test_virtual_router_name_uses_threshold_mode(world: tuple[World, str],
                                                 clients: ExitStack) -> None:
    _, url = world
    hard = ("Prove that every finite integral domain is a field, step by step, then implement "
            "it in Python and analyze the time complexity of the algorithm.")
    c = client(clients, url)
    strong = c.chat.completions.with_raw_response.create(
        model="router-heuristic-0.1", messages=[{"role": "user", "content": hard}])
    weak = c.chat.completions.with_raw_response.create(
        model="router-heuristic-0.99", messages=[{"role": "user", "content": hard}])
    assert strong.headers["x-pointsman-model"] == "gpt-4.1"
    assert weak.headers["x-pointsman-model"] == "gpt-4o-mini"
    assert "threshold 0.1" in strong.headers["x-pointsman-reason"]
    with pytest.raises(openai.BadRequestError, match="threshold in"):
        c.chat.completions.create(model="router-heuristic-7",
                                  messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="unknown scorer"):
        c.chat.completions.create(model="router-nope-0.5",
                                  messages=[{"role": "user", "content": "hi"}])


def test_streaming_with_include_usage_sync_and_async(world: tuple[World, str],
                                                     clients: ExitStack) -> None:
    _, url = world
    stream = client(clients, url).chat.completions.create(
        model="auto", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hello"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "hello there"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert all(c.model == "gpt-4o-mini" for c in chunks)

    async def go() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-alice-0123456789",
                                      max_retries=0) as ac:
            s = await ac.chat.completions.create(
                model="auto", stream=True, messages=[{"role": "user", "content": "hello"}])
            return [c async for c in s]
    achunks = asyncio.run(go())
    assert "".join(c.choices[0].delta.content or "" for c in achunks if c.choices) == \
        "hello there"
    assert all(c.usage is None for c in achunks)  # not asked for: not sent


def test_stream_cut_before_first_token_falls_back_after_it_errors(
        world: tuple[World, str], clients: ExitStack) -> None:
    w, url = world
    w.script("gpt-4o-mini", "cut_before", "cut_after")
    c = client(clients, url)
    raw = c.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "hello"}])
    assert raw.headers["x-pointsman-model"] == "gpt-4.1"
    assert "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices) == \
        "hello there"
    with pytest.raises(openai.APIError, match=r"stream broke|mid-stream"):
        for _ in c.chat.completions.create(model="gpt-4o-mini", stream=True,
                                           messages=[{"role": "user", "content": "hello"}]):
            pass
    with httpx.Client(base_url=url, headers={"authorization": "Bearer sk-admin-0123456789"}
                      ) as h:  # (gpt-4o-mini is cooling down now: two failures in a row)
        w.script("claude-haiku-4-5", "cut_after")
        text = h.post("/v1/chat/completions", json={
            "model": "claude-haiku-4-5", "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}).text
    events = [e for e in text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and '"upstream_stream_broken"' in events[-2]


def test_cooldown_then_half_open_recovery(world: tuple[World, str],
                                          clients: ExitStack) -> None:
    w, url = world
    w.script("gpt-4o-mini", UpstreamServerError("500 a"), UpstreamServerError("500 b"), "ok")
    c = client(clients, url)
    ask: Any = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        assert c.chat.completions.with_raw_response.create(**ask).headers[
            "x-pointsman-model"] == "gpt-4.1"
    calls = len(w.providers["gpt-4o-mini"].calls)
    raw = c.chat.completions.with_raw_response.create(**ask)  # cooling: not even tried
    assert raw.headers["x-pointsman-attempts"] == "gpt-4o-mini,gpt-4.1"
    assert len(w.providers["gpt-4o-mini"].calls) == calls
    auto = c.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert auto.headers["x-pointsman-model"] != "gpt-4o-mini"  # routing skips it
    with httpx.Client(base_url=url) as h:
        assert h.get("/health").json()["cooling_down"] == ["gpt-4o-mini"]
    time.sleep(0.45)
    raw = c.chat.completions.with_raw_response.create(**ask)  # half-open probe succeeds
    assert raw.headers["x-pointsman-model"] == "gpt-4o-mini"
    with httpx.Client(base_url=url) as h:
        assert h.get("/health").json()["cooling_down"] == []


def test_auth_401_and_403(world: tuple[World, str], clients: ExitStack) -> None:
    _, url = world
    msgs: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError) as info:
        client(clients, url, "sk-wrong-0123456789").chat.completions.create(model="auto",
                                                                            messages=msgs)
    assert info.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    with pytest.raises(openai.PermissionDeniedError, match=r"may not use model 'gpt-4\.1'"):
        client(clients, url).chat.completions.create(model="gpt-4.1", messages=msgs)
    with httpx.Client(base_url=url) as h:
        r = h.post("/v1/chat/completions", json={"model": "auto", "messages": msgs})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    ids = [m.id for m in client(clients, url).models.list()]
    assert "auto" in ids and "gpt-4o-mini" in ids and "gpt-4.1" not in ids
    assert "router-heuristic-0.5" in ids
    admin_ids = [m.id for m in client(clients, url, "sk-admin-0123456789").models.list()]
    assert "gpt-4.1" in admin_ids and "claude-opus-4-5" in admin_ids


BAD: list[tuple[str, Any, dict[str, str], int, str]] = [
    ("invalid json", b"{not json", {}, 400, "not valid JSON"),
    ("invalid utf-8", b'{"model": "auto", "x": "\xff"}', {}, 400, "not valid JSON"),
    ("nan literal", b'{"model": "auto", "temperature": NaN}', {}, 400, "not valid JSON"),
    ("not an object", b"[1, 2]", {}, 400, "must be a JSON object"),
    ("no model", {"messages": [{"role": "user", "content": "x"}]}, {}, 400, "'model'"),
    ("no messages", {"model": "auto"}, {}, 400, "'messages' is required"),
    ("empty messages", {"model": "auto", "messages": []}, {}, 400, "at least one"),
    ("bad role", {"model": "auto", "messages": [{"role": "robot", "content": "x"}]}, {}, 400,
     "role must be"),
    ("bad content", {"model": "auto", "messages": [{"role": "user", "content": 5}]}, {}, 400,
     "content must be"),
    ("stream not bool", {"model": "auto", "stream": "yes",
                         "messages": [{"role": "user", "content": "x"}]}, {}, 400, "'stream'"),
    ("max_tokens type", {"model": "auto", "max_tokens": "ten",
                         "messages": [{"role": "user", "content": "x"}]}, {}, 400,
     "'max_tokens'"),
    ("max_tokens zero", {"model": "auto", "max_tokens": 0,
                         "messages": [{"role": "user", "content": "x"}]}, {}, 400,
     "positive integer"),
    ("temperature type", {"model": "auto", "temperature": "hot",
                          "messages": [{"role": "user", "content": "x"}]}, {}, 400,
     "'temperature'"),
    ("unknown model", {"model": "mystery-17", "messages": [{"role": "user", "content": "x"}]},
     {},
     404, "unknown model 'mystery-17'"),
    ("too large", {"model": "auto", "messages": [{"role": "user", "content": "x" * 30_000}]},
     {}, 413, "exceeds the limit"),
    ("wrong content type", b"model=auto", {"content-type": "text/plain"}, 415,
     "application/json"),
    ("bad latency header", {"model": "auto", "messages": [{"role": "user", "content": "x"}]},
     {"x-pointsman-latency-target-ms": "soon"}, 400, "latency-target"),
]


@pytest.mark.parametrize(("name", "body", "headers", "status", "message"), BAD,
                         ids=[b[0] for b in BAD])
def test_bad_input_is_an_openai_style_4xx(world: tuple[World, str], name: str, body: Any,
                                          headers: dict[str, str], status: int,
                                          message: str) -> None:
    _, url = world
    hdrs = {"authorization": "Bearer sk-admin-0123456789", **headers}
    with httpx.Client(base_url=url, headers=hdrs) as h:
        if isinstance(body, bytes):
            hdrs.setdefault("content-type", "application/json")
            r = h.post("/v1/chat/completions", content=body, headers=hdrs)
        else:
            r = h.post("/v1/chat/completions", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert message in error["message"]


def test_request_log_and_metrics(world: tuple[World, str], clients: ExitStack) -> None:
    w, url = world
    c = client(clients, url)
    c.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello"}],
                              extra_headers={"x-pointsman-session": "s1",
                                             "x-pointsman-user": "mallory"})
    for _ in c.chat.completions.create(model="auto", stream=True,
                                       messages=[{"role": "user", "content": "hello"}]):
        pass
    with httpx.Client(base_url=url) as h:
        metrics = h.get("/metrics").text
    assert 'pointsman_requests_total{door="chat",model="gpt-4o-mini",outcome="ok"} 2.0' in metrics
    assert 'pointsman_routing_decisions_total{model="gpt-4o-mini",reason="weighted"}' in metrics
    assert "pointsman_request_latency_seconds_bucket" in metrics
    assert "pointsman_cost_usd_total" in metrics
    deadline = time.monotonic() + 5
    while len(rows := records(w.db)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    first, second = rows[0], rows[1]
    assert first["key"] == "alice-key" and first["user"] == "alice"  # the key's owner wins
    assert first["team"] == "red" and first["session"] == "s1"
    assert first["model"] == "gpt-4o-mini" and first["outcome"] == "ok"
    assert first["decision"]["model"] == "gpt-4o-mini" and first["prompt_tokens"] == 10
    assert second["stream"] is True and second["ttft_ms"] is not None


def test_a_capped_key_gets_429_budget_exceeded_and_spend_is_reported(tmp_path: Path) -> None:
    w = World(tmp_path)
    for provider in w.providers.values():
        provider.usage = Usage(2000, 500)  # $0.0006 on gpt-4o-mini: over the cap at once
    budgets = {"store": "memory", "alerts": {"thresholds": []},
               "limits": [{"scope": "key", "subject": "alice-key", "window": "day",
                           "limit_usd": 0.0005}]}
    config = gateway_config(tmp_path, budgets=budgets)
    long_prompt = "Summarize the key points of this text. " + "lorem ipsum dolor " * 150
    with running(create_app(config, w.deps)) as url, ExitStack() as clients:
        c = client(clients, url)
        c.chat.completions.create(model="gpt-4o-mini",
                                  messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model="auto",
                                      messages=[{"role": "user", "content": long_prompt}])
        error: Any = info.value.body
        assert error["code"] == "budget_exceeded" and "key:alice-key" in error["message"]
        with httpx.Client(base_url=url) as h:
            r = h.get("/v1/spend", params={"key": "alice-key"},
                      headers={"authorization": "Bearer sk-admin-0123456789"})
            assert r.status_code == 200, r.text
            assert r.json()["spent_usd"] > 0 and r.json()["budget_usd"] == 0.0005
            assert h.get("/v1/spend", headers={
                "authorization": "Bearer sk-alice-0123456789"}).status_code == 403
    rows = records(w.db)  # the app's shutdown flushed the log: the refusal is in it too
    assert [r["outcome"] for r in rows] == ["ok", "error"]
    assert rows[1]["error"].startswith("budget_exceeded") and rows[1]["cost_usd"] == 0


def test_request_log_in_postgresql(tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    import uuid

    dsn = "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"test_gw_{uuid.uuid4().hex[:12]}"
    w = World(tmp_path)
    config = gateway_config(tmp_path, gateway={
        "keys": KEYS, "request_log": {"postgres_dsn": dsn, "postgres_schema": schema}})
    try:
        with running(create_app(config, w.deps)) as url, ExitStack() as clients:
            c = client(clients, url)
            for _ in range(3):
                c.chat.completions.create(model="auto",
                                          messages=[{"role": "user", "content": "hello"}])
        with psycopg.connect(dsn) as conn:  # the app's shutdown flushed the log
            rows = conn.execute(
                f'SELECT key, "user", model, outcome FROM "{schema}".requests').fetchall()
        assert rows == [("alice-key", "alice", "gpt-4o-mini", "ok")] * 3
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_virtual_router_needs_strong_and_weak_models(tmp_path: Path) -> None:
    w = World(tmp_path)
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump({"router": {"candidates": MODELS},
                                    "gateway": {"request_log": {"enabled": False}}}))
    with running(create_app(load_config(path), w.deps)) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as c:
        with pytest.raises(openai.BadRequestError, match=r"needs router\.strong_model"):
            c.chat.completions.create(model="router-heuristic-0.5",
                                      messages=[{"role": "user", "content": "hi"}])
        assert not [m.id for m in c.models.list() if m.id.startswith("router-")]
        assert c.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]).model in MODELS


def test_a_provider_bug_is_an_openai_style_500_not_a_traceback(
        world: tuple[World, str]) -> None:
    w, url = world
    w.script("gpt-4o-mini", KeyError("choices"))
    with httpx.Client(base_url=url) as h:
        r = h.post("/v1/chat/completions", headers={"authorization": "Bearer sk-admin-0123456789"},
                   json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"


class GatedRecorder:
    """An :class:`~pointsman.state.OutcomeRecorder` that waits for the test's go-ahead
    (a slow outcome store), or fails."""

    def __init__(self, fail: bool = False) -> None:
        self.go = threading.Event()
        self.fail = fail
        self.outcomes: list[AttemptOutcome] = []

    async def record(self, request: RouteRequest, outcome: AttemptOutcome) -> None:
        if self.fail:
            raise RuntimeError("outcome store down")
        await asyncio.to_thread(self.go.wait, 10)
        self.outcomes.append(outcome)


def _wait_rows(db: Path, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while len(rows := records(db) if db.exists() else []) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return rows


def test_the_answer_does_not_wait_for_outcome_reports_and_a_failing_one_is_still_logged(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    slow, broken = GatedRecorder(), GatedRecorder(fail=True)
    with running(create_app(w.config, w.deps, recorders=[broken, slow])) as url, \
            ExitStack() as clients:
        started = time.monotonic()
        answer = client(clients, url).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "hello there"
        assert time.monotonic() - started < 5  # the recorder holds its report for 10 s
        time.sleep(0.2)
        assert not slow.outcomes and not _wait_rows(w.db, 0)  # logged after the reports
        slow.go.set()
        rows = _wait_rows(w.db, 1)
    assert [o.model for o in slow.outcomes] == ["gpt-4o-mini"] and slow.outcomes[0].ok
    assert [r["outcome"] for r in rows] == ["ok"] and rows[0]["model"] == "gpt-4o-mini"


def test_auto_routes_only_among_models_with_a_deployment(tmp_path: Path) -> None:
    deps = FakeDeployments()
    deps.add("gpt-4.1", ScriptedProvider("fake"))  # the simple prompt would pick gpt-4o-mini
    config = gateway_config(tmp_path)
    with running(create_app(config, deps)) as url, ExitStack() as clients:
        raw = client(clients, url).chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "What is the capital of France?"}])
        assert raw.parse().model == raw.headers["x-pointsman-model"] == "gpt-4.1"
        assert raw.headers["x-pointsman-attempts"] == "gpt-4.1"  # nothing tried in vain
    (row,) = _wait_rows(tmp_path / "requests.db", 1)
    assert row["decision"]["filtered_out"] == {"gpt-4o-mini": "no deployment is configured",
                                               "claude-haiku-4-5": "no deployment is configured"}
    with running(create_app(config, FakeDeployments())) as url, \
            httpx.Client(base_url=url) as h:
        r = h.post("/v1/chat/completions", headers={"authorization": "Bearer sk-alice-0123456789"},
                   json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 503 and r.json()["error"]["code"] == "no_deployment"
    assert "no candidate model has a deployment to call (gpt-4o-mini, claude-haiku-4-5, " \
           "gpt-4.1)" in r.json()["error"]["message"]
