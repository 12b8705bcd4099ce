"""Cost that matches the invoice, through the gateway: each door (Chat Completions,
Messages, Responses, driven by their official SDKs) × each upstream wire (OpenAI Chat,
Anthropic Messages, OpenAI Responses) × stream / not, with the stub reporting prompt-cache
reads and writes and reasoning tokens. The expected cost is worked out here from the
built-in catalog's YAML (exact fractions) and the stub's known counts; the header, the log
row and the ledger must all say it to the nanodollar, and each door's answer shows the
cache and reasoning counts in its own format."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import openai
import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from budget_gateway_support import ledger_totals, logged, logged_nanos
from gateway_harness import anthropic_message, running
from pointsman.budget.cost import StreamMeter, cost_of, usage_from_chunk
from pointsman.budget.ledger import to_nanos
from pointsman.budget.spend import TokenTotals
from pointsman.catalog import build_catalog
from pointsman.cli import app as cli_app
from pointsman.config import PointsmanConfig, load_config
from pointsman.doors.base import StreamUsage
from pointsman.gateway.app import create_app
from pointsman.gateway.exchange import stream_usage
from pointsman.providers.anthropic_wire import usage_of as anthropic_wire_usage
from pointsman.providers.base import Usage
from pointsman.providers.openai_compat import usage_of as openai_usage
from pointsman.providers.responses_wire import usage_of as responses_wire_usage
from pointsman.requestlog import RequestRecord
from pointsman.router import resolve_catalog
from pointsman.stores.requestlog_postgres import PostgresRequestLog
from pointsman.stores.requestlog_sqlite import SqliteRequestLog
from pointsman.testing.upstream import UpstreamStub
from pointsman.types import ModelSpec

KEY = "sk-invoice-0123456789"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PROMPT = "What is the weather in Paris today"
CACHED, WRITTEN, REASONING, ANSWER = 1200, 300, 40, 12  # the stub's counts (ANSWER: words)
BASE_PROMPT = len(PROMPT.split()) + 1  # the stub counts words + 1 per message
OUTPUT = ANSWER + REASONING  # every wire's output tokens include the reasoning


@dataclass(frozen=True)
class Wire:
    """One upstream wire and what the stub reports on it (Chat Completions has no cache
    writes; Anthropic counts reasoning in its output without reporting it apart)."""

    endpoint: str
    kind: str
    cached: int
    written: int
    reasoning: int


WIRES = {"gpt-4o-mini": Wire("stub-openai", "openai", CACHED, 0, REASONING),
         "claude-haiku-4-5": Wire("stub-anthropic", "anthropic", CACHED, WRITTEN, 0),
         "gpt-4.1": Wire("stub-responses", "openai_responses", CACHED, WRITTEN, REASONING)}


def list_prices(model: str) -> dict[str, Fraction]:
    """The built-in catalog's prices of ``model``, read from its YAML as exact decimals."""
    text = resources.files("pointsman").joinpath("data/default_catalog.yaml").read_text("utf-8")
    entry = yaml.safe_load(text)["models"][model]
    return {k: Fraction(str(entry[k])) for k in (
        "input_price", "output_price", "cache_read_price", "cache_write_price")}


def exact_usd(prices: str, wire: Wire) -> Fraction:
    """What ``wire``'s reported tokens cost at the list prices of model ``prices``."""
    p = list_prices(prices)
    return (BASE_PROMPT * p["input_price"] + wire.cached * p["cache_read_price"]
            + wire.written * p["cache_write_price"] + OUTPUT * p["output_price"]) / 10**6


def expected_nanos(model: str) -> int:
    """What the invoice says, in nanodollars."""
    return round(exact_usd(model, WIRES[model]) * 10**9)


def invoice_config(tmp_path: Path, stub: UpstreamStub) -> PointsmanConfig:
    data = {
        "router": {"candidates": list(WIRES)},
        "rules": [],
        "providers": {
            "endpoints": {w.endpoint: {"kind": w.kind, "base_url": stub.base_url}
                          for w in WIRES.values()},
            "timeouts": {"connect": 2, "first_token": 10, "total": 20},
            "deployments": {m: [{"endpoint": w.endpoint}] for m, w in WIRES.items()}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0},
                    "keys": [{"name": "invoice", "key": KEY, "user": "inv"}]},
        "budgets": {"store": "sqlite", "sqlite_path": str(tmp_path / "spend.db"),
                    "limits": [{"scope": "global", "limit_usd": 100}]},
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


@dataclass
class Seen:
    """What one call showed its caller: headers and the answer's usage, as plain dicts."""

    headers: Mapping[str, str]
    usage: dict[str, Any]


def _chat(url: str, model: str, stream: bool) -> Seen:
    messages: Any = [{"role": "user", "content": PROMPT}]
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as client:
        if not stream:
            raw = client.chat.completions.with_raw_response.create(model=model,
                                                                   messages=messages)
            answer = raw.parse()
            assert answer.usage is not None
            return Seen(raw.headers, answer.usage.model_dump())
        raw_stream = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True})
        usages = [c.usage for c in raw_stream.parse() if c.usage is not None]
    assert len(usages) == 1
    return Seen(raw_stream.headers, usages[0].model_dump())


def _messages(url: str, model: str, stream: bool) -> Seen:
    args: Any = {"model": model, "max_tokens": 256,
                 "messages": [{"role": "user", "content": PROMPT}]}
    message, headers = anthropic_message(url, KEY, args, stream)
    return Seen(headers, message.usage.model_dump())


def _responses(url: str, model: str, stream: bool) -> Seen:
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as client:
        if stream:
            with client.responses.stream(model=model, input=PROMPT, store=False) as events:
                usage = events.get_final_response().usage
                headers = events._raw_stream.response.headers
        else:
            raw = client.responses.with_raw_response.create(model=model, input=PROMPT,
                                                            store=False)
            usage, headers = raw.parse().usage, raw.headers
    assert usage is not None
    return Seen(headers, usage.model_dump())


DOORS = {"chat": _chat, "messages": _messages, "responses": _responses}


def check_usage(door: str, wire: Wire, usage: Mapping[str, Any]) -> None:
    """The door's answer shows the cache and reasoning counts, in its own format."""
    prompt = BASE_PROMPT + wire.cached + wire.written
    completion = OUTPUT
    if door == "messages":  # Anthropic's input_tokens leaves the cache's share out
        assert usage["input_tokens"] == BASE_PROMPT
        assert usage["cache_read_input_tokens"] == wire.cached
        assert usage["cache_creation_input_tokens"] == wire.written
        assert usage["output_tokens"] == completion
    elif door == "responses":
        assert usage["input_tokens"] == prompt
        assert usage["input_tokens_details"]["cached_tokens"] == wire.cached
        assert usage["output_tokens"] == completion
        assert usage["output_tokens_details"]["reasoning_tokens"] == wire.reasoning
    else:
        assert usage["prompt_tokens"] == prompt
        assert usage["prompt_tokens_details"]["cached_tokens"] == wire.cached
        assert usage["prompt_tokens_details"].get("cache_creation_tokens", 0) == wire.written
        assert usage["completion_tokens"] == completion
        if wire.reasoning:
            assert usage["completion_tokens_details"]["reasoning_tokens"] == wire.reasoning


def row_of(path: Path, request_id: str) -> dict[str, Any]:
    """The request's log row, once the background writer has written it."""
    deadline = time.monotonic() + 60
    while True:
        conn = sqlite3.connect(str(path))
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        except sqlite3.OperationalError:  # the table is not created yet
            row = None
        finally:
            conn.close()
        if row is not None:
            return dict(row)
        assert time.monotonic() < deadline, f"no log row for {request_id}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


@pytest.fixture(scope="module")
def gateway(stub: UpstreamStub, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, PointsmanConfig, Path]]:
    tmp_path = tmp_path_factory.mktemp("invoice")
    cfg = invoice_config(tmp_path, stub)
    with running(create_app(cfg)) as url:
        yield url, cfg, tmp_path


CASES = [(door, model, stream) for door in DOORS for model in WIRES for stream in (False, True)]


@pytest.mark.parametrize(("door", "model", "stream"), CASES)
def test_cost_matches_the_invoice(gateway: tuple[str, PointsmanConfig, Path],
                                  stub: UpstreamStub, door: str, model: str,
                                  stream: bool) -> None:
    url, cfg, tmp_path = gateway
    stub.reset()
    stub.behave("*", cached_tokens=CACHED, cache_creation_tokens=WRITTEN,
                reasoning_tokens=REASONING, tokens=ANSWER)
    before = ledger_totals(cfg, "global:all")
    seen = DOORS[door](url, model, stream)
    wire, nanos = WIRES[model], expected_nanos(model)
    assert seen.headers["x-pointsman-model"] == model
    check_usage(door, wire, seen.usage)

    row = row_of(tmp_path / "requests.db", seen.headers["x-pointsman-request-id"])
    assert (row["door"], row["model"], row["outcome"]) == (door, model, "ok")
    assert row["prompt_tokens"] == BASE_PROMPT + wire.cached + wire.written
    assert row["completion_tokens"] == OUTPUT
    assert (row["cached_tokens"], row["cache_creation_tokens"], row["reasoning_tokens"]) == (
        wire.cached, wire.written, wire.reasoning)
    assert row["cost_usd"] == nanos / 1e9  # exact: whole nanodollars, no float noise
    # savings compare like with like: the same tokens, cache too, on the dearest candidate
    assert row["baseline_cost_usd"] == pytest.approx(
        float(max(exact_usd(m, wire) for m in WIRES)), abs=1e-12)
    if stream:  # the headers went out before the usage: the estimate, said to be one
        assert seen.headers["x-pointsman-cost-estimated"] == "true"
    else:
        assert seen.headers["x-pointsman-cost-usd"] == f"{nanos // 10**9}.{nanos % 10**9:09d}"
        assert "x-pointsman-cost-estimated" not in seen.headers

    after = ledger_totals(cfg, "global:all")  # settled before the row was written
    assert after.spent - before.spent == nanos
    assert after.held == 0


def test_the_ledger_equals_the_log_and_cache_prices_matter(
        gateway: tuple[str, PointsmanConfig, Path]) -> None:
    """After the cases: the ledger's total = the log's costs to the nanodollar, and the
    cache prices changed the bill (a cache read is cheaper than an input token)."""
    _, cfg, tmp_path = gateway
    rows = logged(tmp_path / "requests.db")
    assert len(rows) == len(CASES)
    total = ledger_totals(cfg, "global:all")
    assert total.spent == logged_nanos(rows) == sum(
        expected_nanos(m) for _, m, _ in CASES)
    assert total.held == 0
    for model, wire in WIRES.items():
        p = list_prices(model)
        assert p["cache_read_price"] < p["input_price"]
        flat = round(((BASE_PROMPT + wire.cached + wire.written) * p["input_price"]
                      + OUTPUT * p["output_price"]) * 1000)
        assert expected_nanos(model) != flat


# -- units: usage parsing on each wire, the exact cost, prices, the log and spend ----------

SPEC = ModelSpec(name="m", provider="p", input_price=3.0, output_price=15.0,
                 context_window=1000, capabilities=frozenset(), tier="mid", quality=50,
                 latency_ms=1, ttft_ms=1, cache_read_price=0.3, cache_write_price=3.75)


def test_cost_of_prices_each_share_once() -> None:
    usage = Usage(10_000, 500, cached_tokens=6_000, cache_creation_tokens=2_000,
                  reasoning_tokens=300)
    cost = cost_of(SPEC, usage)
    # n$ per token = US$ per million tokens x 1000: 2000 uncached x 3000 + 6000 cache
    # reads x 300 + 2000 cache writes x 3750 + 500 output (reasoning inside) x 15000
    assert to_nanos(cost.usd) == (2_000 * 3000 + 6_000 * 300 + 2_000 * 3750
                                  + 500 * 15000) == 22_800_000
    assert cost.usd == 22_800_000 / 1e9  # whole nanodollars
    assert (cost.prompt_tokens, cost.completion_tokens, cost.cached_tokens,
            cost.cache_creation_tokens, cost.reasoning_tokens) == (10_000, 500, 6_000,
                                                                   2_000, 300)
    assert cost.reported


def test_unknown_cache_prices_bill_the_input_price_and_plain_usage_is_unchanged() -> None:
    plain = ModelSpec(name="m", provider="p", input_price=3.0, output_price=15.0,
                      context_window=1000, capabilities=frozenset(), tier="mid", quality=50,
                      latency_ms=1, ttft_ms=1)
    cached = Usage(10_000, 500, cached_tokens=6_000, cache_creation_tokens=2_000)
    assert to_nanos(cost_of(plain, cached).usd) == to_nanos(cost_of(plain, Usage(10_000, 500)).usd)
    assert to_nanos(cost_of(plain, Usage(10_000, 500)).usd) == 10_000 * 3000 + 500 * 15000
    # a report whose cache counts exceed its input is not credited for the difference
    odd = Usage(100, 0, cached_tokens=1_000)
    assert to_nanos(cost_of(SPEC, odd).usd) == 1_000 * 300


def test_openai_chat_usage_details() -> None:
    usage = openai_usage({"usage": {
        "prompt_tokens": 900, "completion_tokens": 70, "total_tokens": 970,
        "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 64}}})
    assert usage == Usage(900, 70, cached_tokens=512, reasoning_tokens=64)
    assert openai_usage({"usage": {"prompt_tokens": 9, "completion_tokens": 2}}) == Usage(9, 2)
    ir = openai_usage({"usage": {"prompt_tokens": 9, "completion_tokens": 2,
                                 "prompt_tokens_details": {"cached_tokens": None,
                                                           "cache_creation_tokens": 4}}})
    assert ir == Usage(9, 2, cache_creation_tokens=4)


def test_anthropic_usage_sums_the_cache_into_the_prompt() -> None:
    usage = anthropic_wire_usage({"input_tokens": 20, "cache_read_input_tokens": 1000,
                                  "cache_creation_input_tokens": 300, "output_tokens": 55})
    assert usage == Usage(1320, 55, cached_tokens=1000, cache_creation_tokens=300)
    assert anthropic_wire_usage({"input_tokens": 20, "output_tokens": 5}) == Usage(20, 5)
    assert anthropic_wire_usage(None) is None


def test_responses_usage_details() -> None:
    usage = responses_wire_usage({
        "input_tokens": 1320, "input_tokens_details": {"cached_tokens": 1000},
        "output_tokens": 55, "output_tokens_details": {"reasoning_tokens": 40},
        "total_tokens": 1375})
    assert usage == Usage(1320, 55, cached_tokens=1000, reasoning_tokens=40)


def test_stream_usage_chunk_carries_the_details_into_the_cost() -> None:
    chunk = {"choices": [], "usage": {
        "prompt_tokens": 10_000, "completion_tokens": 500,
        "prompt_tokens_details": {"cached_tokens": 6_000, "cache_creation_tokens": 2_000},
        "completion_tokens_details": {"reasoning_tokens": 300}}}
    assert usage_from_chunk(chunk) == Usage(10_000, 500, 6_000, 2_000, 300)
    meter = StreamMeter(SPEC, 10)
    meter.feed({"choices": [{"index": 0, "delta": {"content": "hi there"}}]})
    meter.feed(chunk)
    cost = meter.cost()
    assert to_nanos(cost.usd) == 22_800_000 and cost.reasoning_tokens == 300
    assert stream_usage(cost) == StreamUsage(10_000, 500, 6_000, 2_000, 300)


def test_catalog_and_config_take_cache_prices(tmp_path: Path) -> None:
    catalog = build_catalog({"gpt-4o-mini": {"cache_read_price": 0.05},
                             "mine": {"provider": "openai", "input_price": 1,
                                      "output_price": 2, "context_window": 1000,
                                      "quality": 50, "cache_write_price": 1.5}})
    assert catalog.get("gpt-4o-mini").cache_read_price == 0.05
    assert catalog.get("gpt-4o-mini").cache_write_price == 0.15  # the default's, kept
    assert (catalog.get("mine").cache_read_price, catalog.get("mine").cache_write_price) == (
        None, 1.5)
    with pytest.raises(ValueError, match="cache_read_price"):
        build_catalog({"gpt-4o-mini": {"cache_read_price": -1}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"catalog": {"models": {
        "claude-haiku-4-5": {"cache_read_price": 0.08}}}}))
    assert resolve_catalog(load_config(path)).get("claude-haiku-4-5").cache_read_price == 0.08


def test_default_catalog_list_prices_for_the_cache() -> None:
    text = resources.files("pointsman").joinpath("data/default_catalog.yaml").read_text("utf-8")
    models = yaml.safe_load(text)["models"]
    for name, entry in models.items():
        if not entry["input_price"]:
            continue  # local models cost nothing
        read, write = Fraction(str(entry["cache_read_price"])), Fraction(
            str(entry["cache_write_price"]))
        ratio = (read / Fraction(str(entry["input_price"])),
                 write / Fraction(str(entry["input_price"])))
        expected = {"anthropic": (Fraction(1, 10), Fraction(5, 4)),
                    "google": (Fraction(1, 10), Fraction(1))}.get(entry["provider"])
        if expected is None:  # OpenAI: 0.5x (4o family) or 0.25x (4.1 family); no write fee
            expected = (Fraction(1, 4) if name.startswith("gpt-4.1") else Fraction(1, 2),
                        Fraction(1))
        assert ratio == expected, name


def _record(i: int, cached: int, written: int, reasoning: int) -> RequestRecord:
    return RequestRecord(
        id=f"c{i}", ts=1000.0 + i, key="k", user="u", team=None, session=None,
        requested_model="auto", decision={}, models_tried=["claude-haiku-4-5"], outcome="ok",
        error=None, model="claude-haiku-4-5", prompt_tokens=2000, completion_tokens=100,
        cost_usd=0.001, baseline_cost_usd=0.002, ttft_ms=None, total_ms=5.0,
        cached_tokens=cached, cache_creation_tokens=written, reasoning_tokens=reasoning)


async def _round_trip(log: SqliteRequestLog | PostgresRequestLog) -> None:
    records = [_record(i, 1000 + i, 300, 40 * i) for i in range(3)]
    for r in records:
        await log.write(r)
    await log.flush()
    assert await log.records() == records
    summary = await log.spend_summary(None, None, 0.0, 5000.0)
    assert summary.tokens == TokenTotals(6000, 300, 3003, 900, 120)


@pytest.mark.anyio
async def test_the_log_keeps_the_counts_in_sqlite(tmp_path: Path) -> None:
    log = SqliteRequestLog(tmp_path / "requests.db")
    await _round_trip(log)
    await log.aclose()
    conn = sqlite3.connect(tmp_path / "requests.db")
    try:
        rows = conn.execute("SELECT cached_tokens, cache_creation_tokens, reasoning_tokens "
                            "FROM requests ORDER BY ts").fetchall()
    finally:
        conn.close()
    assert rows == [(1000, 300, 0), (1001, 300, 40), (1002, 300, 80)]


@pytest.mark.anyio
async def test_the_log_keeps_the_counts_in_postgres() -> None:
    schema = f"test_cost_{uuid.uuid4().hex[:12]}"
    try:
        log = await PostgresRequestLog.open(PG_DSN, schema)
        await _round_trip(log)
        await log.aclose()
        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            cur = await conn.execute(f'SELECT SUM(cached_tokens), SUM(reasoning_tokens) '
                                     f'FROM "{schema}".requests')
            assert await cur.fetchone() == (3003, 120)
    finally:
        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_spend_shows_the_cache_and_reasoning_totals(tmp_path: Path) -> None:
    config = tmp_path / "pointsman.yaml"
    config.write_text(yaml.safe_dump({"budgets": {"sqlite_path": str(tmp_path / "no.db")}}))

    async def fill(path: Path, records: list[RequestRecord]) -> None:
        log = SqliteRequestLog(path)
        for r in records:
            await log.write(replace(r, ts=time.time()))
        await log.aclose()

    asyncio.run(fill(tmp_path / "cached.db", [_record(i, 1000, 300, 40) for i in range(2)]))
    asyncio.run(fill(tmp_path / "plain.db", [_record(9, 0, 0, 0)]))
    runner = CliRunner()
    text = runner.invoke(cli_app, ["spend", "--config", str(config), "--log",
                                   str(tmp_path / "cached.db")])
    assert text.exit_code == 0, text.output
    assert ("tokens     4000 in (2000 cache reads, 600 cache writes), 200 out "
            "(80 reasoning)") in text.output
    plain = runner.invoke(cli_app, ["spend", "--config", str(config), "--log",
                                    str(tmp_path / "plain.db")])
    assert plain.exit_code == 0 and "cache reads" not in plain.output
    as_json = runner.invoke(cli_app, ["spend", "--json", "--config", str(config), "--log",
                                      str(tmp_path / "cached.db")])
    assert json.loads(as_json.output)["tokens"] == {
        "prompt": 4000, "completion": 200, "cache_read": 2000, "cache_write": 600,
        "reasoning": 80}
