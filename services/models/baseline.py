"""The scikit-learn baseline: gradient-boosted trees, which need no scaling and handle skewed amounts."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from services.models.artifacts import SklearnScorer


def train_baseline(features: np.ndarray, labels: np.ndarray, seed: int, max_iter: int = 200) -> SklearnScorer:
    """Fit on the training split; the model holds out 10 % of it internally for early stopping."""
    model = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=0.1,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        # Log-loss for early stopping: skops cannot persist the scorer object a metric name would attach.
        scoring="loss",
        random_state=seed,
    )
    model.fit(np.asarray(features, dtype=np.float32), np.asarray(labels, dtype=np.int64))
    return SklearnScorer(model)
