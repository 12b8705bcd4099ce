"""Shadow replay: what another router configuration would have done with logged traffic.

Every successful record of a request log is routed again through ``Router.decide`` (pure,
no model is called) with the other configuration. The report compares, over the same
requests, the share of *strong* calls and the estimated cost, logged vs shadow.

A call is *strong* when it goes to the configuration's ``router.strong_model`` (threshold
mode), otherwise when the model's catalog tier is ``premium``. Costs are the router's
estimates (``decision.estimated_cost_usd``) on both sides, so the comparison is like for
like; the actual logged cost is reported beside them. A request the shadow router cannot
serve (for example over every context window) is counted and left out of the comparison.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pointsman.errors import NoCandidateError
from pointsman.evaluation.logs import LoggedRequest
from pointsman.router import Router


def is_strong(router: Router, model: str | None) -> bool:
    rc = router.config.router
    if model is None:
        return False
    if rc.mode == "threshold" and rc.strong_model:
        return model == rc.strong_model
    return model in router.catalog and router.catalog.get(model).tier == "premium"


def shadow_replay(logged: Sequence[LoggedRequest], router: Router) -> dict[str, Any]:
    """Compare what was logged with what ``router`` decides for the same requests."""
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    unroutable: Counter[str] = Counter()
    cost_before = cost_after = actual = 0.0
    strong_before = strong_after = agree = 0
    for item in logged:
        try:
            decision = router.decide(item.request)
        except NoCandidateError as exc:
            unroutable[exc.message.split("(")[0].strip()] += 1
            continue
        before[item.model or "unknown"] += 1
        after[decision.model] += 1
        cost_before += item.estimated_cost_usd
        cost_after += decision.estimated_cost_usd
        actual += item.cost_usd
        strong_before += is_strong(router, item.model)
        strong_after += is_strong(router, decision.model)
        agree += decision.model == item.model
    n = sum(after.values())

    def share(k: int) -> float:
        return k / n if n else 0.0

    return {
        "kind": "shadow", "n_requests": n, "unroutable": sum(unroutable.values()),
        "unroutable_reasons": dict(unroutable), "strong_definition": _definition(router),
        "logged": {"strong_share": share(strong_before), "estimated_cost_usd": cost_before,
                   "actual_cost_usd": actual, "models": dict(before.most_common())},
        "shadow": {"strong_share": share(strong_after), "estimated_cost_usd": cost_after,
                   "models": dict(after.most_common()), "strategy": router.strategy},
        "agreement": share(agree),
        "change": {"strong_share": share(strong_after) - share(strong_before),
                   "estimated_cost_usd": cost_after - cost_before,
                   "estimated_cost_ratio": cost_after / cost_before if cost_before else None},
    }


def _definition(router: Router) -> str:
    rc = router.config.router
    if rc.mode == "threshold" and rc.strong_model:
        return f"calls to router.strong_model {rc.strong_model}"
    return "calls to premium-tier models of the catalog"
