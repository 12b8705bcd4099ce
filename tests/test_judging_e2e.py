"""Judged samples end to end through the gateway with the ``openai`` SDK and the stub acting
as reference and judge: every sampled answer (streams too) gets a ``judge`` label with its
cost; a judge that hangs does not hold up callers; the judging cap refuses samples and is
never passed; judge labels feed ``experiment report`` quality; ``pointsman spend`` reports
the judging spend on its own line, outside the users' spend."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from typer.testing import CliRunner

from gateway_harness import running
from pointsman.cli import app
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.gateway.runtime import Gateway
from pointsman.judging.service import Judging, Sample
from pointsman.stores.labels import Label
from pointsman.stores.labels_sqlite import SqliteLabelStore
from pointsman.testing.upstream import UpstreamStub
from pointsman.types import Message, RouteRequest

WEAK, STRONG, JUDGE = "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"
HARD = "a hard question: prove it"
EASY = "say hello"


def write_config(tmp_path: Path, stub: UpstreamStub, judging: dict[str, Any],
                 **extra: Any) -> Path:
    models = (WEAK, STRONG, JUDGE)
    endpoint = {"kind": "openai", "base_url": stub.base_url,  # a hanging judge stays hung
                "timeouts": {"first_token": 600, "total": 600}}
    data = {
        "router": {"candidates": [WEAK, STRONG], "mode": "threshold", "strong_model": STRONG,
                   "weak_model": WEAK, "scorer": "heuristic", "threshold": 0.0},
        "rules": [],
        "providers": {"endpoints": {"stub": endpoint},
                      "deployments": {m: [{"endpoint": "stub"}] for m in models}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "retry": {"max_retries": 0}, "drain_timeout_s": 2},
        "budgets": {"store": "memory"},
        "judging": {"enabled": True, "share": 1.0, "reference_model": STRONG,
                    "judge_model": JUDGE, "budget_usd": 10.0, **judging},
        **extra,
    }
    path = tmp_path / "pointsman.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture()
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        s.behave(JUDGE, judge=True, judge_low=[WEAK])
        yield s


def ask(client: openai.OpenAI, model: str, text: str, stream: bool = False,
        user: str | None = None) -> str:
    """The request id; the answer is read in full first."""
    extra = {"user": user} if user else None
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model=model, messages=[{"role": "user", "content": text}], stream=True,
                extra_body=extra) as streamed:
            chunks = list(streamed.parse())
            assert chunks and streamed.headers["x-pointsman-model"] == model
            return str(streamed.headers["x-pointsman-request-id"])
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], extra_body=extra)
    assert raw.parse().choices[0].message.content
    return str(raw.headers["x-pointsman-request-id"])


def wait_for(what: Callable[[], Any], seconds: float = 60.0) -> Any:
    """Poll until ``what`` returns something truthy (a generous bound: a loaded machine)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting after {seconds} s")


def judge_labels(db: Path, rids: list[str]) -> dict[str, Label]:
    async def read() -> dict[str, Label]:
        store = SqliteLabelStore(db)
        try:
            return {lb.request_id: lb for rid in rids for lb in await store.labels(rid)
                    if lb.source == "judge"}
        finally:
            await store.aclose()
    return asyncio.run(read())


def all_judged(db: Path, rids: list[str]) -> Callable[[], dict[str, Label]]:
    def check() -> dict[str, Label]:
        found = judge_labels(db, rids)
        return found if len(found) == len(rids) else {}
    return check


def test_every_answer_gets_a_judge_label(stub: UpstreamStub, tmp_path: Path) -> None:
    path = write_config(tmp_path, stub, {"mode": "pairwise"})
    db = tmp_path / "requests.db"
    with running(create_app(load_config(path))) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        rids = [ask(client, WEAK, HARD), ask(client, WEAK, EASY, stream=True),
                ask(client, STRONG, HARD)]
        labels = wait_for(all_judged(db, rids))
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
    weak_hard, weak_easy, strong = (labels[r] for r in rids)
    assert weak_hard.score == 0.0 and weak_hard.model == WEAK  # worse in both orders
    assert weak_easy.score == 0.5  # a stream, judged from its assembled text: a tie
    assert strong.score == 0.5 and strong.cost_usd == 0.0  # the reference itself: no calls
    assert weak_hard.cost_usd > 0 and weak_easy.cost_usd > 0
    assert stub.requests(JUDGE) == 4  # two orders for each of the two weak answers
    assert stub.requests(STRONG) == 1 + 2  # the caller's once, the reference twice
    assert 'pointsman_judged_samples_total{result="judged"} 3.0' in metrics
    assert "pointsman_judging_cost_usd_total" in metrics
    judging = weak_hard.cost_usd + weak_easy.cost_usd

    # spend: the users' requests alone; judging on its own line; quality beside savings
    with sqlite3.connect(db) as conn:
        [(users,)] = conn.execute("SELECT SUM(cost_usd) FROM requests").fetchall()
    result = CliRunner().invoke(app, ["spend", "--config", str(path), "--log", str(db),
                                      "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["requests"] == 3 and report["spent_usd"] == pytest.approx(users)
    assert report["judging"] == {"samples": 3, "cost_usd": pytest.approx(judging)}
    assert report["quality"]["judge"] == {"labels": 3, "mean": pytest.approx(1 / 3)}
    assert report["quality"]["feedback"] == {"labels": 0, "mean": None}
    text = CliRunner().invoke(app, ["spend", "--config", str(path), "--log", str(db)])
    assert text.exit_code == 0, text.output
    assert "judge 0.333 (3 labels)" in text.stdout
    assert "over 3 samples (own budget, not in spent)" in text.stdout


def test_a_hanging_judge_does_not_hold_up_callers(stub: UpstreamStub, tmp_path: Path) -> None:
    stub.behave(JUDGE, hang=True)
    path = write_config(tmp_path, stub, {"max_concurrency": 1, "queue_size": 1})
    application = create_app(load_config(path))
    gw: Gateway = application.state.gateway
    with running(application) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        first = ask(client, WEAK, HARD)
        wait_for(lambda: stub.requests(JUDGE) >= 1)  # judging `first` now hangs on the judge
        later = [ask(client, WEAK, f"{EASY} {i}") for i in range(4)]  # answered all the same
        assert stub.requests(JUDGE) <= 2  # still the first sample's calls, still hanging
        assert judge_labels(tmp_path / "requests.db", [first, *later]) == {}
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        # one waits in the queue (size 1), the others were dropped, not waited for
        assert 'pointsman_judged_samples_total{result="dropped"} 3.0' in metrics
    assert gw.judging is not None
    assert gw.judging.counts == {"dropped": 3, "cancelled": 2}  # shutdown cancelled the rest


def worst_case(path: Path) -> float:
    """What one sample of the cap test may cost at most (the figure each reserves)."""
    judging: Judging | None = create_app(load_config(path)).state.gateway.judging
    assert judging is not None
    messages = [{"role": "user", "content": HARD}]
    sample = Sample("x", RouteRequest(messages=(Message("user", HARD),)), messages, WEAK,
                    f"stub answer from {WEAK}: {HARD}")
    return judging.worst_case(sample)


def test_the_judging_cap_refuses_and_is_never_passed(stub: UpstreamStub,
                                                     tmp_path: Path) -> None:
    small = {"max_concurrency": 1, "max_tokens": 16, "judge_max_tokens": 8}
    cap = 2 * worst_case(write_config(tmp_path, stub, small))
    path = write_config(tmp_path, stub, {**small, "budget_usd": cap})
    application = create_app(load_config(path))
    gw: Gateway = application.state.gateway
    assert gw.judging is not None
    counts = gw.judging.counts
    sent = 12
    with running(application) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        rids = [ask(client, WEAK, f"{HARD} {i}") for i in range(sent)]
        wait_for(lambda: counts.get("judged", 0) + counts.get("refused", 0) == sent)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        labels = judge_labels(tmp_path / "requests.db", rids)
    assert counts.get("refused", 0) >= 1 and counts.get("judged", 0) >= 1
    assert len(labels) == counts["judged"]
    spent = sum(lb.cost_usd for lb in labels.values())
    assert 0 < spent <= cap and gw.judging.budget.spent_usd == pytest.approx(spent)
    assert stub.requests(JUDGE) == 2 * counts["judged"]  # a refused sample calls nobody
    assert f'pointsman_judged_samples_total{{result="refused"}} {counts["refused"]:.1f}' \
        in metrics


def test_judge_labels_are_the_experiment_reports_quality(stub: UpstreamStub,
                                                         tmp_path: Path) -> None:
    experiment = {"name": "cheap", "unit": "user", "control": "A", "margin": 0.02,
                  "arms": [{"name": "A", "share": 0.5},
                           {"name": "B", "share": 0.5, "router": {"threshold": 1.0}}]}
    path = write_config(tmp_path, stub, {"mode": "absolute", "max_concurrency": 4},
                        experiments=[experiment])
    db = tmp_path / "requests.db"
    with running(create_app(load_config(path))) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        rids = [ask(client, "auto", text, user=f"u{i}") for i in range(12)
                for text in (f"{HARD} {i}", f"{EASY} {i}")]
        wait_for(all_judged(db, rids))
        body = httpx.get(f"{url}/v1/experiments/cheap", timeout=30).json()
    arms = {a["arm"]: a for a in body["arms"]}
    assert arms["A"]["requests"] and arms["B"]["requests"]
    assert arms["A"]["quality"]["n"] == arms["A"]["requests"]
    assert arms["A"]["quality"]["value"] == pytest.approx(0.9)  # the strong model: 9/10
    assert arms["B"]["quality"]["value"] == pytest.approx((0.2 + 0.9) / 2)  # weak: hard 2
    result = CliRunner().invoke(app, ["experiment", "report", "cheap", "--config", str(path),
                                      "--json"])
    assert result.exit_code == 0, result.output
    out = {a["arm"]: a for a in json.loads(result.stdout)["arms"]}
    assert out["B"]["quality"]["n"] == arms["B"]["requests"]


def test_pointsman_judge_replays_a_logged_day(stub: UpstreamStub, tmp_path: Path) -> None:
    gateway = {"request_log": {"sqlite_path": str(tmp_path / "requests.db"),
                               "log_messages": True}, "retry": {"max_retries": 0}}
    path = write_config(tmp_path, stub, {"enabled": False, "mode": "absolute"})
    data = yaml.safe_load(path.read_text())
    data["gateway"] = gateway
    path.write_text(yaml.safe_dump(data))
    db = tmp_path / "requests.db"
    with running(create_app(load_config(path))) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        rids = [ask(client, WEAK, HARD), ask(client, WEAK, EASY), ask(client, STRONG, HARD)]
    assert stub.requests(JUDGE) == 0  # judging is off in the gateway
    result = CliRunner().invoke(app, ["judge", "--config", str(path), "--data",
                                      f"sqlite:///{db}", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 3 and summary["judged"] == 3 and summary["spent_usd"] > 0
    labels = judge_labels(db, rids)
    assert [labels[r].score for r in rids] == [0.2, 0.9, 0.9]
    assert all(lb.cost_usd > 0 and lb.source == "judge" for lb in labels.values())
    assert summary["spent_usd"] == pytest.approx(sum(lb.cost_usd for lb in labels.values()))
    again = CliRunner().invoke(app, ["judge", "--config", str(path), "--data", str(db)])
    assert again.exit_code == 0, again.output
    assert "judged 0 of 3 records" in again.stdout and "skipped 3" in again.stdout


def test_pointsman_judge_says_when_the_log_has_no_prompts(stub: UpstreamStub,
                                                           tmp_path: Path) -> None:
    """Logged without log_messages: nothing to replay, said in one line, no model asked."""
    path = write_config(tmp_path, stub, {"enabled": False, "mode": "absolute"})
    data = yaml.safe_load(path.read_text())
    data["gateway"] = {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                       "retry": {"max_retries": 0}}
    path.write_text(yaml.safe_dump(data))
    with running(create_app(load_config(path))) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        ask(client, WEAK, EASY)
        ask(client, WEAK, HARD)
    asked = stub.requests(JUDGE)
    result = CliRunner().invoke(app, ["judge", "--config", str(path), "--data",
                                      str(tmp_path / "requests.db")])
    assert result.exit_code == 0, result.output
    assert "judged 0 of 0 records" in result.stdout
    assert "2 answered records have no prompt to replay" in result.stdout
    assert stub.requests(JUDGE) == asked
