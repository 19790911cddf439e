"""One scoring step for a batch of transactions: one feature read, one model call, with the served model."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.events import Transaction

from .champion import ChampionSlot
from .metrics import InferenceMetrics
from .online_features import OnlineFeatureReader
from .scoring import Scored, score_batch


class NoModelServed(RuntimeError):
    """No champion has been loaded yet."""


class ScoringEngine:
    def __init__(self, features: OnlineFeatureReader, slot: ChampionSlot, metrics: InferenceMetrics) -> None:
        self.features = features
        self.slot = slot
        self.metrics = metrics

    def score(self, transactions: Sequence[Transaction]) -> list[Scored]:
        # Read the slot once: this whole batch uses one model even if a swap happens meanwhile.
        model = self.slot.current
        if model is None:
            raise NoModelServed("no model is loaded yet")
        stored = self.features.read(transactions)
        scored = score_batch(model, transactions, stored)
        self.metrics.batch_size.observe(len(transactions))
        for item in scored:
            self.metrics.decisions.labels(item.decision, item.model_version).inc()
            for name in item.features_missing:
                self.metrics.feature_misses.labels(name).inc()
        return scored
