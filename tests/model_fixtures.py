"""A small real scikit-learn fraud model, registered in any ModelRegistry (file:// or s3://).

Shared by the inference tests and the k8s boot test; deliberately free of Feast and Kafka imports,
so importing it is cheap."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from services.features.request import FEATURE_DEFAULTS, MODEL_FEATURES
from services.models.artifacts import SklearnScorer, save_scorer
from services.registry import ModelRegistry, ModelVersion, Thresholds


def fit_model(seed: int) -> SklearnScorer:
    """A small real classifier over the model features; fraud rises with amount and novelty."""
    rng = np.random.default_rng(seed)
    rows = rng.gamma(2.0, 20.0, size=(400, len(MODEL_FEATURES))).astype(np.float32)
    amount = rows[:, MODEL_FEATURES.index("txn_amount")]
    labels = (amount + rng.normal(0, 15, size=len(rows)) > np.percentile(amount, 80)).astype(int)
    return SklearnScorer(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(rows, labels))


def model_record(name: str = "fraud") -> ModelVersion:
    return ModelVersion(
        name=name,
        version="pending",
        kind="sklearn",
        created_at=datetime.now(UTC),
        features=list(MODEL_FEATURES),
        feature_defaults=dict(FEATURE_DEFAULTS),
        thresholds=Thresholds(review=0.5, decline=0.9),
    )


def register_model(registry: ModelRegistry, workdir: Path, seed: int) -> ModelVersion:
    artifact = workdir / f"artifact-{seed}"
    save_scorer(fit_model(seed), artifact)
    return registry.register(model_record(), artifact)
