"""The gate on real artifacts, registry and broker: a worse challenger is refused, a better one promoted once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from services.common.events import ModelEvent, decode
from services.common.settings import Settings
from services.models.artifacts import SklearnScorer, save_scorer
from services.models.evaluation import evaluate
from services.models.gate import LATENCY_METRIC
from services.models.reference import reference_stats
from services.models.release import Candidate, release
from services.models.thresholds import choose_thresholds
from services.registry import ModelRegistry
from services.registry.schema import DataWindow
from tests.training.conftest import model_events

FEATURES = ["signal", "noise_a", "noise_b"]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6000, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=6000) > 2.0).astype(np.int64)
    test = pd.DataFrame(x[4000:], columns=FEATURES).assign(is_fraud=y[4000:])
    return test, x[:4000], y[:4000]


def _candidate(tmp: Path, name: str, x: np.ndarray, y: np.ndarray, test: pd.DataFrame) -> Candidate:
    scorer = SklearnScorer(HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y))
    save_scorer(scorer, tmp / name)
    metrics = evaluate(scorer, test[FEATURES].to_numpy(np.float32), test["is_fraud"].to_numpy()).metrics
    scores = scorer.predict_proba(x)
    return Candidate("sklearn", tmp / name, metrics, choose_thresholds(y, scores), reference_stats(x, FEATURES, scores))


def _release(settings: Settings, registry: ModelRegistry, cand: Candidate, test: pd.DataFrame, run: str, tmp: Path,
             latency_budget_ms: float = 1000.0):
    return release(registry=registry, settings=settings, candidates=[cand], test=test, label="is_fraud",
                   features=FEATURES, feature_defaults={}, window=DataWindow(rows=len(test)), margin=0.01,
                   latency_budget_ms=latency_budget_ms, run_id=run, cache_dir=tmp / "cache")


@pytest.fixture()
def own(training_settings: Settings, tmp_path: Path) -> tuple[Settings, ModelRegistry]:
    """Settings pointing at a registry of this test's own, and that registry."""
    settings = training_settings.model_copy(update={"model_registry_uri": (tmp_path / "registry").as_uri()})
    return settings, ModelRegistry(settings.registry_uri)


def test_worse_challenger_is_refused_and_better_one_promoted_once(
    own: tuple[Settings, ModelRegistry], data: tuple, tmp_path: Path
) -> None:
    (settings, registry), (test, x, y) = own, data
    good = _candidate(tmp_path, "good", x, y, test)
    first = _release(settings, registry, good, test, "run-good", tmp_path)
    assert first.decision.promote and first.event_published
    champion = registry.champion("fraud")

    # Deliberately worse: the signal column is shuffled away before training.
    worse_x = x.copy()
    worse_x[:, 0] = np.random.default_rng(2).permutation(worse_x[:, 0])
    worse = _candidate(tmp_path, "worse", worse_x, y, test)
    second = _release(settings, registry, worse, test, "run-worse", tmp_path)

    assert not second.decision.promote
    assert "does not beat champion" in second.decision.reason
    assert second.champion_metrics is not None  # the champion was re-scored on the same test set
    assert registry.champion("fraud") == champion
    assert len(registry.versions("fraud")) == 2  # the refused challenger is still recorded
    events = [decode(ModelEvent, r.value) for r in model_events(settings, "test-gate")]
    mine = [e for e in events if e.artifact_uri.startswith(settings.registry_uri)]
    assert [(e.event, e.version) for e in mine] == [("promoted", champion.version)]


def test_a_good_candidate_over_the_latency_budget_is_refused(
    own: tuple[Settings, ModelRegistry], data: tuple, tmp_path: Path
) -> None:
    (settings, registry), (test, x, y) = own, data
    good = _candidate(tmp_path, "good", x, y, test)
    measured = good.metrics[LATENCY_METRIC]
    budget = measured / 100  # the same model a hundred times too slow for it
    outcome = _release(settings, registry, good, test, "run-slow", tmp_path, latency_budget_ms=budget)

    assert not outcome.decision.promote and not outcome.event_published
    assert f"every candidate exceeds the {budget:g} ms latency budget" in outcome.decision.reason
    assert registry.champion("fraud") is None
    assert len(registry.versions("fraud")) == 1  # recorded with its metrics, not promoted
    events = [decode(ModelEvent, r.value) for r in model_events(settings, "test-gate-budget")]
    assert not [e for e in events if e.artifact_uri.startswith(settings.registry_uri)]
