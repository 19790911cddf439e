"""Per-decision explanations: baseline Shapley values estimated by sampling feature orderings.

For a row x and a baseline b (the training means the model record keeps in
``reference_stats``), a feature's contribution is its average marginal effect on the fraud
probability when the features are switched from b to x one by one in random orders. Each
ordering's effects add up to exactly ``p(x) - p(b)``, so the contributions always sum to the
gap between this decision and an average transaction. Antithetic orderings (each one and its
reverse) halve the sampling noise; the seed is fixed, so an answer is reproducible.

Model-agnostic on purpose: the champion may be the gradient-boosted trees or the MLP, and one
definition must explain both. All perturbed rows go through one ``predict_proba`` call
(``orderings x (features + 1)`` rows, ~500 for the default), a few milliseconds for either model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from services.models.artifacts import Scorer

DEFAULT_ORDERINGS: Final = 16  # 8 antithetic pairs
DEFAULT_TOP_K: Final = 5
SEED: Final = 20261122


def baseline_from_record(features: Sequence[str], reference_stats: Mapping[str, Any], defaults: Mapping[str, float]) -> np.ndarray:
    """Training means per feature; the record's default (else 0) where no mean was kept."""
    stats = reference_stats.get("features", {}) if isinstance(reference_stats, Mapping) else {}
    values = []
    for name in features:
        mean = stats.get(name, {}).get("mean") if isinstance(stats.get(name), Mapping) else None
        values.append(float(mean) if mean is not None else float(defaults.get(name, 0.0)))
    return np.asarray(values, dtype=np.float64)


def shapley_contributions(
    scorer: Scorer, row: np.ndarray, baseline: np.ndarray, orderings: int = DEFAULT_ORDERINGS, seed: int = SEED
) -> np.ndarray:
    """Contribution of each feature to ``p(row) - p(baseline)``; they sum to that difference exactly."""
    x = np.asarray(row, dtype=np.float64).reshape(-1)
    b = np.asarray(baseline, dtype=np.float64).reshape(-1)
    if x.shape != b.shape:
        raise ValueError(f"row has {x.size} features, baseline {b.size}")
    d = x.size
    rng = np.random.default_rng(seed)
    pairs = max(1, orderings // 2)
    orders = []
    for _ in range(pairs):
        order = rng.permutation(d)
        orders += [order, order[::-1]]
    # Row k of an ordering's block has its first k features (in that order) switched to x.
    blocks = np.empty((len(orders), d + 1, d), dtype=np.float64)
    for o, order in enumerate(orders):
        block = np.tile(b, (d + 1, 1))
        for k in range(1, d + 1):
            block[k:, order[k - 1]] = x[order[k - 1]]
        blocks[o] = block
    scores = np.asarray(scorer.predict_proba(blocks.reshape(-1, d).astype(np.float32)), dtype=np.float64)
    scores = scores.reshape(len(orders), d + 1)
    contributions = np.zeros(d, dtype=np.float64)
    for o, order in enumerate(orders):
        contributions[order] += np.diff(scores[o])
    return contributions / len(orders)


def explain(
    scorer: Scorer,
    features: Sequence[str],
    values: Mapping[str, float],
    baseline: np.ndarray,
    top_k: int = DEFAULT_TOP_K,
) -> list[dict[str, float | str]]:
    """The ``top_k`` features with the largest absolute contribution, largest first."""
    row = np.asarray([float(values[name]) for name in features], dtype=np.float64)
    contributions = shapley_contributions(scorer, row, baseline)
    order = sorted(range(len(features)), key=lambda i: (-abs(contributions[i]), features[i]))[:top_k]
    return [{"feature": features[i], "value": float(row[i]), "contribution": float(contributions[i])} for i in order]
