"""Register every candidate, re-score the champion on the same test set, and promote the gate's winner."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from services.common.events import ModelEvent, Topics
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.models.artifacts import ArtifactError, load_model
from services.models.card import model_card
from services.models.evaluation import evaluate
from services.models.gate import GateDecision, decide
from services.registry import ModelRegistry, ModelVersion, Thresholds
from services.registry.schema import DataWindow

log = logging.getLogger(__name__)

MODEL_NAME = "fraud"
PUBLISH_TIMEOUT_S = 30.0


@dataclass
class Candidate:
    kind: str
    artifact_dir: Path
    metrics: dict[str, float]
    thresholds: Thresholds
    reference_stats: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReleaseOutcome:
    decision: GateDecision
    registered: dict[str, str]  # candidate kind -> registry version
    champion_before: str | None
    champion_after: str | None
    champion_metrics: dict[str, float] | None
    event_published: bool

    def summary(self) -> dict[str, Any]:
        return {
            "promoted": self.decision.promote,
            "challenger": self.decision.challenger,
            "reason": self.decision.reason,
            "registered": self.registered,
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "champion_metrics": self.champion_metrics,
            "event_published": self.event_published,
        }


def rescore_champion(
    registry: ModelRegistry, champion: ModelVersion, test: pd.DataFrame, label: str, cache_dir: Path
) -> dict[str, float] | None:
    """The champion's metrics on today's test set; None when it cannot score it (its features are gone)."""
    missing = [f for f in champion.features if f not in test.columns]
    if missing:
        log.warning("champion cannot score the test set", extra={"version": champion.version, "missing": missing})
        return None
    try:
        scorer = load_model(registry, champion, cache_dir)
    except ArtifactError as exc:
        log.warning("champion artifact unusable", extra={"version": champion.version, "error": str(exc)})
        return None
    features = test[champion.features].to_numpy(dtype=np.float32)
    return evaluate(scorer, features, test[label].to_numpy()).metrics


def _existing(registry: ModelRegistry, run_id: str) -> dict[str, ModelVersion]:
    """Candidates this run already registered (a retried task must not register them twice)."""
    if not run_id:
        return {}
    return {
        str(v.extra.get("candidate")): v for v in registry.versions(MODEL_NAME) if v.run_id == run_id
    }


def publish_promotion(
    settings: Settings,
    promoted: ModelVersion,
    previous: str | None,
    event_type: Literal["promoted", "rolled_back"] = "promoted",
) -> None:
    """Tell serving replicas on rtml.model-events that ``promoted`` is the champion now (the gate,
    ``rtml models promote`` and ``rtml models rollback`` all announce through here)."""
    event = ModelEvent(
        event=event_type,
        model_name=promoted.name,
        version=promoted.version,
        artifact_uri=promoted.artifact_uri,
        previous_version=previous,
        metrics=promoted.metrics,
        timestamp=datetime.now(UTC),
    )
    producer = make_producer(settings)
    try:
        producer.send(Topics.MODEL_EVENTS, key=promoted.name.encode(), value=event.to_json()).get(PUBLISH_TIMEOUT_S)
    finally:
        producer.close(timeout=PUBLISH_TIMEOUT_S)


def release(
    *,
    registry: ModelRegistry,
    settings: Settings,
    candidates: list[Candidate],
    test: pd.DataFrame,
    label: str,
    features: list[str],
    feature_defaults: dict[str, float],
    window: DataWindow,
    margin: float,
    latency_budget_ms: float,
    run_id: str,
    cache_dir: Path,
) -> ReleaseOutcome:
    champion = registry.champion(MODEL_NAME)
    champion_metrics = rescore_champion(registry, champion, test, label, cache_dir) if champion else None
    by_kind = {c.kind: c.metrics for c in candidates}
    if champion is not None and champion_metrics is None:
        decision = decide(by_kind, None, margin, latency_budget_ms)
        decision = GateDecision(
            decision.promote, decision.challenger, f"champion {champion.version} cannot score this test set; {decision.reason}"
        )
    else:
        decision = decide(by_kind, champion_metrics, margin, latency_budget_ms)
    log.info("gate decided", extra={"promote": decision.promote, "reason": decision.reason})

    already = _existing(registry, run_id)
    registered: dict[str, ModelVersion] = {}
    for cand in candidates:
        if cand.kind in already:
            registered[cand.kind] = already[cand.kind]
            continue
        record = ModelVersion(
            name=MODEL_NAME,
            version="pending",
            kind=cand.kind,
            created_at=datetime.now(UTC),
            features=features,
            feature_defaults=feature_defaults,
            thresholds=cand.thresholds,
            metrics=cand.metrics,
            data_window=window,
            reference_stats=cand.reference_stats,
            model_card=model_card(cand.kind, cand.metrics, window, features, cand.thresholds, decision.reason, run_id),
            run_id=run_id,
            extra={**cand.extra, "candidate": cand.kind, "gate": decision.reason, "champion_metrics": champion_metrics},
        )
        registered[cand.kind] = registry.register(record, cand.artifact_dir)

    champion_before = champion.version if champion else None
    champion_after = champion_before
    published = False
    if decision.promote and decision.challenger is not None:
        winner = registered[decision.challenger]
        current = registry.champion(MODEL_NAME)
        if current is None or current.version != winner.version:
            promoted = registry.promote(MODEL_NAME, winner.version, reason=f"gate: {decision.reason}")
            publish_promotion(settings, promoted, champion_before)
            published = True
        champion_after = winner.version
    return ReleaseOutcome(
        decision=decision,
        registered={kind: v.version for kind, v in registered.items()},
        champion_before=champion_before,
        champion_after=champion_after,
        champion_metrics=champion_metrics,
        event_published=published,
    )
