"""Prediction logs built from simulated payments: the real model-input function, a fixed scoring rule.

The scoring rule stands in for a trained model (the monitor only sees its outputs); the
feature vectors come from ``request_features``, the same function serving uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from services.common.events import Label, PredictionLog, Transaction
from services.features.request import MODEL_FEATURES, request_features
from services.models.reference import reference_stats
from services.registry import ModelRegistry, ModelVersion, Thresholds
from services.simulator import SimulatorConfig, generate

THRESHOLDS = Thresholds(review=0.5, decline=0.8)


@dataclass(frozen=True)
class Payment:
    transaction: Transaction
    is_fraud: bool
    label: Label | None  # None: this payment never gets a label


def payments(events: int, seed: int = 11, drift_at: int | None = None) -> list[Payment]:
    config = SimulatorConfig(events=events, seed=seed, drift_at=drift_at, users=400, merchants=60)
    labels: dict[str, Label] = {}
    txns: list[tuple[Transaction, bool]] = []
    for sim in generate(config):
        if isinstance(sim.event, Transaction):
            txns.append((sim.event, sim.is_fraud))
        else:
            labels[sim.event.transaction_id] = sim.event
    return [Payment(t, fraud, labels.get(t.transaction_id)) for t, fraud in txns]


def vector(txn: Transaction, amount_factor: float = 1.0) -> dict[str, float]:
    if amount_factor != 1.0:
        txn = txn.model_copy(update={"amount": min(round(txn.amount * amount_factor, 2), 1_000_000.0)})
    return request_features(txn, {})


def score(features: dict[str, float]) -> float:
    logit = 1.3 * (features["txn_amount_log"] - 5.0) - 0.8 * features["txn_channel_pos"]
    return 1.0 / (1.0 + math.exp(-logit))


def prediction(txn: Transaction, version: str, amount_factor: float = 1.0, at: datetime | None = None) -> PredictionLog:
    features = vector(txn, amount_factor)
    probability = score(features)
    return PredictionLog(
        transaction_id=txn.transaction_id,
        request=txn,
        features=dict[str, float | None](features),
        fraud_probability=probability,
        decision=THRESHOLDS.decide(probability),  # type: ignore[arg-type]
        model_version=version,
        latency_ms=2.0,
        timestamp=at or datetime.now(UTC),
    )


def reference_for(txns: list[Transaction], amount_factor: float = 1.0) -> dict[str, object]:
    """Reference statistics as training writes them (services.models.reference), on these payments."""
    rows = [vector(t, amount_factor) for t in txns]
    matrix = np.array([[row[name] for name in MODEL_FEATURES] for row in rows], dtype=np.float64)
    scores = np.array([score(row) for row in rows])
    return reference_stats(matrix, MODEL_FEATURES, scores)


def register_version(
    registry_uri: str, stats: dict[str, object], workdir: Path, metrics: dict[str, float] | None = None
) -> str:
    """A registered version carrying ``stats`` (and test ``metrics``, if given); returns its version name."""
    artifact = workdir / f"artifact-{len(list(workdir.glob('artifact-*')))}"
    artifact.mkdir(parents=True)
    (artifact / "README").write_text("reference statistics only; the monitor never loads the model\n")
    record = ModelVersion(
        name="fraud",
        version="pending",
        kind="sklearn",
        created_at=datetime.now(UTC),
        features=list(MODEL_FEATURES),
        thresholds=THRESHOLDS,
        reference_stats=stats,
        metrics=metrics or {},
    )
    return ModelRegistry(registry_uri).register(record, artifact).version
