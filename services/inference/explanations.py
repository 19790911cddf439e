"""The ``explanation`` of one /predict answer: top feature contributions against the training means."""

from __future__ import annotations

from services.models.explain import DEFAULT_TOP_K, baseline_from_record, explain

from .scoring import Scored, ScoringError


def explanation(scored: Scored, top_k: int = DEFAULT_TOP_K) -> list[dict[str, float | str]]:
    """Baseline Shapley values (services.models.explain) for the model that scored ``scored``."""
    if scored.model is None:
        raise ScoringError("the scored transaction does not carry its model; cannot explain it")
    record = scored.model.record
    baseline = baseline_from_record(record.features, record.reference_stats, record.feature_defaults)
    return explain(scored.model.scorer, record.features, scored.features, baseline, top_k)
