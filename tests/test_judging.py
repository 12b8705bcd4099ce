"""The pure parts of judged samples: sampling by a hash of the request id, the judge's
prompts and verdicts (position swap), the judging budget's hard cap, the config's checks,
and the stub's scripted judge."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from pointsman.errors import BudgetExceededError
from pointsman.judging import grading
from pointsman.judging.budget import DAY_S, JudgingBudget
from pointsman.judging.config import JudgingConfig
from pointsman.testing.stub_state import judge_reply
from pointsman.types import RouteRequest

PAIRWISE, ABSOLUTE = JudgingConfig(), JudgingConfig(mode="absolute")


def test_sampling_is_deterministic_and_near_the_share() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    chosen = [grading.sampled(i, 0.1) for i in ids]
    assert chosen == [grading.sampled(i, 0.1) for i in ids]  # same id, same answer
    assert 0.09 < sum(chosen) / len(ids) < 0.11
    assert all(grading.sampled(i, 1.0) for i in ids[:100])
    assert not any(grading.sampled(i, 0.0) for i in ids[:100])
    # a larger share keeps every id a smaller one chose
    assert all(grading.sampled(i, 0.3) for i, c in zip(ids, chosen, strict=True) if c)


@pytest.mark.parametrize(("replies", "expected"), [
    (["[[A]]", "[[B]]"], 1.0),   # routed better in both orders
    (["[[B]]", "[[A]]"], 0.0),   # reference better in both orders
    (["[[A]]", "[[A]]"], 0.5),   # a judge that always picks the first answer: no signal
    (["[[C]]", "[[C]]"], 0.5),
    (["[[A]]", "[[C]]"], 0.75),
    (["I think [[B]]... no, [[A]]", "[[B]]"], 1.0),  # the last verdict counts
    (["no verdict", "[[B]]"], None),
])
def test_pairwise_scores_average_both_orders(replies: list[str],
                                              expected: float | None) -> None:
    assert grading.score(PAIRWISE, replies) == expected


def test_absolute_rating_over_ten() -> None:
    assert grading.score(ABSOLUTE, ["Rating: [[7]]"]) == 0.7
    assert grading.score(ABSOLUTE, ["Rating: [[7.5]]"]) == 0.75
    assert grading.score(ABSOLUTE, ["Rating: [[11]]"]) is None
    assert grading.score(ABSOLUTE, ["seven"]) is None


def test_prompts_swap_positions_and_keep_braces() -> None:
    first, second = grading.judge_prompts(PAIRWISE, "q {x}", "routed", "ref")
    assert first.index("routed") < first.index("ref")
    assert second.index("ref") < second.index("routed")
    assert "q {x}" in first  # the question's own braces are left alone
    [only] = grading.judge_prompts(ABSOLUTE, "q", "routed", "ref")
    assert "[The Answer]\nrouted" in only and "[Reference Answer]\nref" in only


def test_question_and_answer_text() -> None:
    assert grading.question_text([{"role": "user", "content": "hi"}]) == "hi"
    assert grading.question_text([{"role": "system", "content": "be brief"},
                                  {"role": "user", "content": [{"type": "text",
                                                                "text": "hi"}]}]) \
        == "system: be brief\nuser: hi"
    assert grading.answer_text({"choices": [{"message": {"content": "yes"}}]}) == "yes"
    assert grading.answer_text({"choices": []}) == ""


def test_config_checks() -> None:
    with pytest.raises(ValidationError, match="reference_model and judge_model"):
        JudgingConfig(enabled=True, reference_model="gpt-4o")
    with pytest.raises(ValidationError, match="placeholder"):
        JudgingConfig(pairwise_prompt="compare {answer_a} and {answer_b}")
    with pytest.raises(ValidationError, match="Extra inputs"):
        JudgingConfig.model_validate({"enabled": False, "shared": 0.5})
    with pytest.raises(ValidationError):
        JudgingConfig(share=1.5)


def test_budget_refuses_past_the_cap_and_counts() -> None:
    now = [3 * DAY_S + 100.0]
    budget = JudgingBudget(1.0, clock=lambda: now[0])
    route = RouteRequest(messages=())

    async def run() -> None:
        a = await budget.reserve(route, "m", 0.6)
        with pytest.raises(BudgetExceededError):
            await budget.reserve(route, "m", 0.5)  # 0.6 held + 0.5 > 1.0
        await budget.settle(a, 0.2)
        b = await budget.reserve(route, "m", 0.5)  # 0.2 spent + 0.5 fits
        await budget.release(b)
        assert budget.spent_usd == 0.2 and budget.held == 0
        now[0] += DAY_S  # a new UTC day: the cap is whole again
        c = await budget.reserve(route, "m", 1.0)
        await budget.settle(c, 1.0)
        assert not budget.fits(1e-9)

    asyncio.run(run())
    assert budget.refusals == 1


def test_budget_seeded_with_the_days_spend() -> None:
    budget = JudgingBudget(1.0, clock=lambda: 1000.0)
    budget.seed(0.9)
    assert budget.fits(0.1) and not budget.fits(0.2)


def test_stub_judge_scripts_grades() -> None:
    low = ["gpt-4o-mini"]
    hard = "a hard question"
    cheap, strong = "stub answer from gpt-4o-mini: x", "stub answer from gpt-4o: x"
    [absolute] = grading.judge_prompts(ABSOLUTE, hard, cheap, strong)
    assert judge_reply(absolute, low) == "Rating: [[2]]"
    [absolute] = grading.judge_prompts(ABSOLUTE, "an easy one", cheap, strong)
    assert judge_reply(absolute, low) == "Rating: [[9]]"
    replies = [judge_reply(p, low) for p in grading.judge_prompts(PAIRWISE, hard, cheap,
                                                                 strong)]
    assert replies == ["[[B]]", "[[A]]"] and grading.score(PAIRWISE, replies) == 0.0
    replies = [judge_reply(p, low) for p in grading.judge_prompts(PAIRWISE, "easy", cheap,
                                                                 strong)]
    assert grading.score(PAIRWISE, replies) == 0.5
