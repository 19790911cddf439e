"""Reference distributions a model was trained on, stored with it so the monitor can measure drift.

Shape (``ModelVersion.reference_stats``)::

    {"features": {name: {"edges": [...], "proportions": [...], "mean": m, "std": s, "null_rate": r}},
     "score": {"edges": [...], "proportions": [...]}}

``edges`` are the bin boundaries (quantiles of the reference data, ascending, first = min,
last = max); ``proportions`` has one entry per bin and sums to 1. A live value below the
first edge belongs to the first bin, above the last edge to the last bin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

BINS: Final = 10


def histogram(values: np.ndarray, bins: int = BINS) -> dict[str, list[float]]:
    """Quantile bins of the finite ``values``; a constant column gets a single bin."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"edges": [], "proportions": []}
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        return {"edges": [float(edges[0]), float(edges[0])], "proportions": [1.0]}
    counts, _ = np.histogram(finite, bins=edges)
    return {"edges": [float(e) for e in edges], "proportions": [float(c) for c in counts / counts.sum()]}


def feature_stats(features: np.ndarray, names: Sequence[str], bins: int = BINS) -> dict[str, dict[str, Any]]:
    if features.ndim != 2 or features.shape[1] != len(names):
        raise ValueError(f"features have shape {features.shape}, expected (n, {len(names)})")
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        column = features[:, i].astype(np.float64)
        finite = column[np.isfinite(column)]
        out[name] = {
            **histogram(column, bins),
            "mean": float(finite.mean()) if finite.size else 0.0,
            "std": float(finite.std()) if finite.size else 0.0,
            "null_rate": float(1.0 - finite.size / column.size) if column.size else 0.0,
        }
    return out


def reference_stats(
    train_features: np.ndarray, names: Sequence[str], validation_scores: np.ndarray, bins: int = BINS
) -> dict[str, Any]:
    """Feature distributions of the training data and the score distribution on validation data."""
    return {"features": feature_stats(train_features, names, bins), "score": histogram(validation_scores, bins)}
