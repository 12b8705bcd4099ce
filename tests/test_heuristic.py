"""The heuristic complexity signal."""

from __future__ import annotations

import pytest

from pointsman import Message, RouteRequest, load_config
from pointsman.signals.heuristic import HeuristicScorer


@pytest.fixture(scope="module")
def scorer() -> HeuristicScorer:
    return HeuristicScorer(load_config().heuristic)


def score(scorer: HeuristicScorer, text: str) -> float:
    return scorer.score(RouteRequest.from_prompt(text)).score


def test_ordering_of_typical_requests(scorer: HeuristicScorer) -> None:
    greeting = score(scorer, "hello, thanks!")
    lookup = score(scorer, "What is the capital of Peru?")
    reformat = score(scorer, "Reformat this list as JSON: a, b, c")
    code = score(scorer, "Implement a thread-safe LRU cache in Python and debug the race.")
    proof = score(scorer, "Prove by induction that the sum of the first n odd numbers is n^2.")
    assert greeting < lookup < code
    assert reformat < code
    assert lookup < proof
    assert all(0 <= s <= 100 for s in (greeting, lookup, reformat, code, proof))


def test_signals_and_task_type_are_reported(scorer: HeuristicScorer) -> None:
    signal = scorer.score(RouteRequest.from_prompt("Translate 'good morning' into French"))
    assert signal.task_type == "translation"
    assert "translation" in signal.signals and "length" in signal.signals
    code = scorer.score(RouteRequest.from_prompt("Fix this:\n```py\nx = 1/0\n```"))
    assert code.signals["code_block"] > 0


def test_structure_raises_the_score(scorer: HeuristicScorer) -> None:
    plain = "Compare these two options."
    structured = ("Compare these two options?\n1. cost?\n2. speed?\n3. risk?\n"
                  "You must answer exactly in three sections and do not skip any.")
    assert score(scorer, structured) > score(scorer, plain)
    turns = RouteRequest(messages=tuple(
        Message(role, "and then?") for role in ("user", "assistant") * 4))
    single = RouteRequest.from_prompt("and then?")
    assert scorer.score(turns).score > scorer.score(single).score
    assert "turns" in scorer.score(turns).signals


def test_length_saturates_and_non_ascii_counts(scorer: HeuristicScorer) -> None:
    assert score(scorer, "a " * 50_000) <= 100
    assert score(scorer, "数学" * 400) > score(scorer, "数学")


def test_empty_text_scores_the_base(scorer: HeuristicScorer) -> None:
    assert score(scorer, "") == load_config().heuristic.base
