"""Held-out evaluation of a scorer: ranking quality, recall at a fixed false-positive rate,
calibration and scoring latency, plus the curves the report draws."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, precision_recall_curve, roc_auc_score, roc_curve

from services.models.artifacts import Scorer

FIXED_FPR = 0.01  # the review queue a fraud team can afford: 1 in 100 good customers
CALIBRATION_BINS = 10
LATENCY_SAMPLE_ROWS = 200


@dataclass
class Evaluation:
    metrics: dict[str, float]
    scores: np.ndarray
    reliability: list[dict[str, float]] = field(default_factory=list)
    pr_curve: dict[str, list[float]] = field(default_factory=dict)
    roc_curve: dict[str, list[float]] = field(default_factory=dict)


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr_limit: float) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    allowed = tpr[fpr <= fpr_limit]
    return float(allowed.max()) if allowed.size else 0.0


def reliability_table(labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict[str, float]]:
    """Mean predicted vs observed fraud rate per equal-width score bin (empty bins left out)."""
    index = np.minimum((scores * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            rows.append(
                {
                    "bin_low": b / bins,
                    "mean_score": float(scores[mask].mean()),
                    "fraud_rate": float(labels[mask].mean()),
                    "count": float(mask.sum()),
                }
            )
    return rows


def expected_calibration_error(table: list[dict[str, float]], total: int) -> float:
    return float(sum(r["count"] / total * abs(r["mean_score"] - r["fraud_rate"]) for r in table)) if total else 0.0


def scoring_latency_ms(scorer: Scorer, features: np.ndarray, rows: int = LATENCY_SAMPLE_ROWS) -> dict[str, float]:
    """Per-row latency as the inference service sees it: one row per call (p50/p95), and amortised in a batch."""
    sample = np.ascontiguousarray(features[:rows], dtype=np.float32)
    scorer.predict_proba(sample[:1])  # warm-up: first calls allocate
    single = []
    for i in range(len(sample)):
        start = time.perf_counter()
        scorer.predict_proba(sample[i : i + 1])
        single.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    scorer.predict_proba(np.ascontiguousarray(features, dtype=np.float32))
    batch_ms = (time.perf_counter() - start) * 1000
    return {
        "latency_single_row_p50_ms": float(np.percentile(single, 50)),
        "latency_single_row_p95_ms": float(np.percentile(single, 95)),
        "latency_batch_per_row_us": float(batch_ms * 1000 / max(len(features), 1)),
    }


def _thin(values: np.ndarray, points: int = 200) -> list[float]:
    idx = np.unique(np.linspace(0, len(values) - 1, min(points, len(values))).astype(int))
    return [float(v) for v in values[idx]]


def evaluate(scorer: Scorer, features: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Score ``features`` once and derive every metric from the same scores."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise ValueError("the test set holds a single class; PR-AUC and ROC-AUC are undefined")
    scores = scorer.predict_proba(np.ascontiguousarray(features, dtype=np.float32))
    table = reliability_table(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    metrics: dict[str, Any] = {
        "pr_auc": float(average_precision_score(labels, scores)),
        "roc_auc": float(roc_auc_score(labels, scores)),
        f"recall_at_fpr_{FIXED_FPR:g}": recall_at_fpr(labels, scores, FIXED_FPR),
        "brier": float(brier_score_loss(labels, scores)),
        "expected_calibration_error": expected_calibration_error(table, len(labels)),
        "base_rate": float(labels.mean()),
        "test_rows": float(len(labels)),
        **scoring_latency_ms(scorer, features),
    }
    return Evaluation(
        metrics=metrics,
        scores=scores,
        reliability=table,
        pr_curve={"precision": _thin(precision), "recall": _thin(recall)},
        roc_curve={"fpr": _thin(fpr), "tpr": _thin(tpr)},
    )
