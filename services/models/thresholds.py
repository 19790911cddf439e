"""Decision thresholds chosen on validation data, never on the test set the gate judges by."""

from __future__ import annotations

import numpy as np

from services.registry import Thresholds

REVIEW_FPR = 0.02  # share of good transactions an analyst is asked to look at
DECLINE_FPR = 0.002  # share of good customers we are willing to turn away outright


def _score_at_fpr(negative_scores: np.ndarray, fpr: float) -> float:
    """The lowest cut-off that flags at most ``fpr`` of the legitimate transactions."""
    if negative_scores.size == 0:
        return 0.5
    return float(min(1.0, np.quantile(negative_scores, 1.0 - fpr, method="higher") + 1e-9))


def choose_thresholds(labels: np.ndarray, scores: np.ndarray) -> Thresholds:
    negatives = np.asarray(scores)[np.asarray(labels) == 0]
    review = _score_at_fpr(negatives, REVIEW_FPR)
    decline = max(review, _score_at_fpr(negatives, DECLINE_FPR))
    return Thresholds(review=review, decline=decline)
