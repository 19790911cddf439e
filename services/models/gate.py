"""The champion/challenger gate: a challenger replaces the champion only when it is clearly better
on the same test set and fast enough to serve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

GATE_METRIC = "pr_auc"
LATENCY_METRIC = "latency_single_row_p95_ms"


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    challenger: str | None  # the candidate the gate judged (the best one within the latency budget)
    reason: str


def best_candidate(candidates: Mapping[str, Mapping[str, float]], latency_budget_ms: float) -> str | None:
    """Highest PR-AUC among candidates within the latency budget; None when none is fast enough."""
    fast = {name: m for name, m in candidates.items() if m[LATENCY_METRIC] <= latency_budget_ms}
    if not fast:
        return None
    return max(sorted(fast), key=lambda name: fast[name][GATE_METRIC])


def decide(
    candidates: Mapping[str, Mapping[str, float]],
    champion: Mapping[str, float] | None,
    margin: float,
    latency_budget_ms: float,
) -> GateDecision:
    """``candidates`` and ``champion`` are metrics measured on the same held-out test set."""
    if not candidates:
        return GateDecision(False, None, "no candidate was trained")
    name = best_candidate(candidates, latency_budget_ms)
    if name is None:
        slowest = ", ".join(f"{n} {m[LATENCY_METRIC]:.2f} ms" for n, m in sorted(candidates.items()))
        return GateDecision(False, None, f"every candidate exceeds the {latency_budget_ms:g} ms latency budget ({slowest})")
    score = candidates[name][GATE_METRIC]
    too_slow = sorted(n for n, m in candidates.items() if m[LATENCY_METRIC] > latency_budget_ms)
    if too_slow:
        name_note = f" ({', '.join(too_slow)} over the {latency_budget_ms:g} ms latency budget)"
        result = decide({name: candidates[name]}, champion, margin, latency_budget_ms)
        return GateDecision(result.promote, result.challenger, result.reason + name_note)
    if champion is None:
        return GateDecision(True, name, f"no champion yet; {name} {GATE_METRIC} {score:.4f}")
    incumbent = champion[GATE_METRIC]
    if score >= incumbent + margin:
        return GateDecision(
            True, name, f"{name} {GATE_METRIC} {score:.4f} beats champion {incumbent:.4f} by at least {margin:g}"
        )
    return GateDecision(
        False, name, f"{name} {GATE_METRIC} {score:.4f} does not beat champion {incumbent:.4f} by the margin {margin:g}"
    )
