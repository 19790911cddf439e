"""Which candidate of a run the gate puts before the champion: near-ties keep the preferred kind."""

from __future__ import annotations

from services.models.gate import GATE_METRIC, LATENCY_METRIC, best_candidate, decide


def metrics(pr_auc: float, p95_ms: float = 0.3) -> dict[str, float]:
    return {GATE_METRIC: pr_auc, LATENCY_METRIC: p95_ms}


def test_a_candidate_within_the_margin_of_the_trees_does_not_displace_them() -> None:
    # The demo's post-drift retrain: tied on test, far apart live.
    candidates = {"torch": metrics(0.4588), "sklearn": metrics(0.4583)}
    assert best_candidate(candidates, latency_budget_ms=10, margin=0.005) == "sklearn"
    decision = decide(candidates, metrics(0.4141), margin=0.005, latency_budget_ms=10)
    assert decision.promote and decision.challenger == "sklearn"
    assert decision.reason.startswith("sklearn pr_auc 0.4583 beats champion 0.4141")


def test_a_candidate_better_by_the_margin_wins() -> None:
    candidates = {"sklearn": metrics(0.45), "torch": metrics(0.456)}
    assert best_candidate(candidates, latency_budget_ms=10, margin=0.005) == "torch"


def test_a_preferred_kind_over_the_latency_budget_leaves_the_choice_to_the_others() -> None:
    candidates = {"sklearn": metrics(0.60, p95_ms=50), "torch": metrics(0.40), "other": metrics(0.41)}
    assert best_candidate(candidates, latency_budget_ms=10, margin=0.005) == "other"
    assert best_candidate(candidates, latency_budget_ms=10, margin=0.02) == "torch"
    assert best_candidate(candidates, latency_budget_ms=0.1, margin=0.0) is None
