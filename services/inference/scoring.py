"""Scoring a batch: stored rows -> model vectors (request_features) -> one model call -> decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from services.common.events import Transaction
from services.features.request import missing_stored, request_features
from services.models.artifacts import Scorer
from services.registry import ModelVersion

if TYPE_CHECKING:  # a type only: importing the module would load Feast in BentoML's supervisor process too
    from .online_features import StoredRow


@dataclass(frozen=True)
class LoadedModel:
    """A registered model ready to score; immutable, so a batch holding it is unaffected by a swap."""

    record: ModelVersion
    scorer: Scorer

    @property
    def version(self) -> str:
        return self.record.version


@dataclass(frozen=True)
class Scored:
    transaction: Transaction
    features: dict[str, float]
    features_missing: list[str]
    fraud_probability: float
    decision: str
    model_version: str
    model: LoadedModel | None = field(default=None, repr=False, compare=False)  # what scored it, for explanations

    def answer(self) -> dict[str, object]:
        return {
            "transaction_id": self.transaction.transaction_id,
            "fraud_probability": self.fraud_probability,
            "decision": self.decision,
            "model_version": self.model_version,
            "features_missing": self.features_missing,
        }


class ScoringError(RuntimeError):
    """The model produced something that is not a probability per row."""


def model_vector(model: LoadedModel, txn: Transaction, stored: StoredRow) -> tuple[dict[str, float], list[str]]:
    """The model's inputs in its own order, and the stored features that were defaulted."""
    derived = request_features(txn, stored)
    missing = missing_stored(stored)
    defaults = model.record.feature_defaults
    vector = {}
    for name in model.record.features:
        if name in derived:
            # A stored feature the store lacked takes the model's own default when it declares one.
            value = defaults[name] if name in missing and name in defaults else derived[name]
        else:
            value = defaults.get(name, 0.0)
            missing.append(name)
        vector[name] = value
    return vector, missing


def score_batch(model: LoadedModel, transactions: Sequence[Transaction], stored: Sequence[StoredRow]) -> list[Scored]:
    vectors = [model_vector(model, txn, row) for txn, row in zip(transactions, stored, strict=True)]
    matrix = np.array([list(v.values()) for v, _ in vectors], dtype=np.float32).reshape(len(vectors), len(model.record.features))
    probabilities = np.asarray(model.scorer.predict_proba(matrix), dtype=np.float64).reshape(-1)
    if probabilities.shape[0] != len(vectors):
        raise ScoringError(f"model {model.version} returned {probabilities.shape[0]} values for {len(vectors)} rows")
    outside = ~((probabilities >= 0) & (probabilities <= 1))  # NaN is outside too
    if outside.any():
        raise ScoringError(
            f"model {model.version} answered {probabilities[outside][0]} for {int(outside.sum())} of "
            f"{len(vectors)} rows, not a probability"
        )
    thresholds = model.record.thresholds
    return [
        Scored(txn, vector, missing, float(p), thresholds.decide(float(p)), model.version, model)
        for txn, (vector, missing), p in zip(transactions, vectors, probabilities, strict=True)
    ]


def warm_up(model: LoadedModel) -> None:
    """Score a real (synthetic) transaction through the full path; raise if the answer is unusable."""
    probe = Transaction(
        transaction_id="warm-up",
        user_id="warm-up",
        merchant_id="warm-up",
        amount=42.0,
        currency="EUR",
        country="DE",
        channel="web",
        timestamp=datetime.now(UTC),
    )
    score_batch(model, [probe], [{}])  # raises ScoringError unless the answer is one probability
