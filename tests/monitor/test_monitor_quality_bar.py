"""Code tests of the live-quality bar: a share of the serving version's own registered test figures,
never below the absolute floors, and still one request per episode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from services.common.events import Label
from services.models.evaluation import FIXED_FPR
from services.monitor.bar import PR_AUC_METRIC, RECALL_METRIC, HeldOutQuality
from services.monitor.config import MonitorConfig
from services.monitor.quality import average_precision
from services.monitor.references import RegistryReferences
from services.monitor.state import MonitorState
from services.registry import ModelRegistry
from tests.monitor.traffic import THRESHOLDS, Payment, payments, prediction, reference_for, register_version

T0 = datetime(2026, 11, 1, tzinfo=UTC)
# Quality only, floors at zero: any alarm below comes from the relative rule.
RELATIVE_ONLY = MonitorConfig(
    drift_inputs=(),
    quality_window=2000,
    min_labels=200,
    min_positives=5,
    min_recall=0.0,
    min_pr_auc=0.0,
    min_recall_ratio=0.7,
    min_pr_auc_ratio=0.7,
)


@pytest.fixture(scope="module")
def labelled() -> list[Payment]:
    return [p for p in payments(3000) if p.label is not None]


def _live(rows: list[Payment]) -> tuple[float, float]:
    """PR-AUC and recall (at THRESHOLDS) of the fixed scoring rule on ``rows``."""
    scores = np.array([prediction(p.transaction, "x").fraud_probability for p in rows])
    truth = np.array([p.is_fraud for p in rows])
    pr_auc = average_precision(scores, truth)
    assert pr_auc is not None
    return pr_auc, float((scores[truth] >= THRESHOLDS.review).mean())


def _state(config: MonitorConfig, held_out: dict[str, HeldOutQuality]) -> MonitorState:
    return MonitorState(config, lambda _v: None, held_out.get)


def _serve(state: MonitorState, version: str, rows: list[Payment]) -> None:
    for p in rows:
        state.observe_prediction(prediction(p.transaction, version, at=T0))
        assert p.label is not None
        state.observe_label(Label(transaction_id=p.transaction.transaction_id, is_fraud=p.is_fraud, timestamp=T0))
    state.refresh()


def test_the_bar_is_a_share_of_the_test_figures_and_never_below_the_floor() -> None:
    config = MonitorConfig(min_recall=0.5, min_pr_auc=0.3, min_recall_ratio=0.7, min_pr_auc_ratio=0.8)
    scaled = config.quality_bar(HeldOutQuality(pr_auc=0.9, recall=0.8))
    assert scaled.min_pr_auc == pytest.approx(0.72) and scaled.min_recall == pytest.approx(0.56)
    weak = config.quality_bar(HeldOutQuality(pr_auc=0.25, recall=None))
    assert weak.min_pr_auc == 0.3 and weak.min_recall == 0.5  # the floors hold
    assert config.quality_bar(None).min_pr_auc == 0.3
    assert scaled.describe()["test_pr_auc"] == 0.9 and scaled.describe()["min_pr_auc_ratio"] == 0.8


def test_held_out_figures_are_read_from_the_registered_metrics_keys() -> None:
    # The pipeline names recall at its fixed false-positive rate this way (services/models/evaluation.py).
    assert f"recall_at_fpr_{FIXED_FPR:g}" == RECALL_METRIC
    assert HeldOutQuality.from_metrics({PR_AUC_METRIC: 0.6, RECALL_METRIC: 0.5, "brier": 0.02}) == HeldOutQuality(
        0.6, 0.5
    )
    assert HeldOutQuality.from_metrics({PR_AUC_METRIC: float("nan"), RECALL_METRIC: 2.0}) is None
    assert HeldOutQuality.from_metrics({}) is None


def test_the_same_live_quality_alarms_for_a_version_that_tested_better_only(labelled: list[Payment]) -> None:
    rows = labelled[:1500]
    pr_auc, recall = _live(rows)
    assert sum(p.is_fraud for p in rows) >= 5 and 0 < pr_auc < 0.9 and 0 < recall < 0.9
    held_out = {
        # Live quality is 60 % of what this one scored on its test set: below 0.7 of it.
        "v-fell": HeldOutQuality(pr_auc=pr_auc / 0.6, recall=recall / 0.6),
        # ... and 80 % of this one's: above the bar.
        "v-holds": HeldOutQuality(pr_auc=pr_auc / 0.8, recall=recall / 0.8),
    }
    fell = _state(RELATIVE_ONLY, held_out)
    _serve(fell, "v-fell", rows)
    found = fell.crossing()
    assert found is not None and found[0] == "quality"
    quality = found[1]["quality"]
    assert set(quality["crossed"]) == {"pr_auc", "recall"}
    assert quality["min_pr_auc"] == pytest.approx(0.7 * pr_auc / 0.6, abs=1e-4)
    assert quality["test_pr_auc"] == pytest.approx(pr_auc / 0.6)
    shown = fell.snapshot()["quality"]
    assert shown["min_pr_auc"] == quality["min_pr_auc"] and shown["min_recall"] == quality["min_recall"]

    holds = _state(RELATIVE_ONLY, held_out)
    _serve(holds, "v-holds", rows)
    assert holds.crossing() is None
    assert holds.snapshot()["quality"]["min_pr_auc"] == pytest.approx(0.7 * pr_auc / 0.8, abs=1e-4)


def test_without_test_figures_the_floor_decides_and_one_episode_asks_once(labelled: list[Payment]) -> None:
    rows = labelled[:1500]
    pr_auc, _ = _live(rows)
    config = MonitorConfig(
        drift_inputs=(), quality_window=2000, min_labels=200, min_positives=5, min_recall=0.0, min_pr_auc=pr_auc + 0.05
    )
    state = _state(config, {})
    _serve(state, "v-unknown", rows)
    request = state.due_request(T0)
    assert request is not None and request.reason == "quality"
    assert request.evidence["quality"]["crossed"] == {"pr_auc": round(pr_auc, 4)}
    assert request.evidence["quality"]["test_pr_auc"] is None
    state.observe_training_request(request)
    assert state.due_request(T0 + timedelta(minutes=5)) is None  # same episode: not again
    assert state.due_request(T0 + config.cooldown) is not None  # re-armed after the cool-down


def test_registry_references_give_each_versions_test_figures(tmp_path: Path) -> None:
    uri = (tmp_path / "registry").as_uri()
    stats = reference_for([p.transaction for p in payments(600)])
    tested = register_version(uri, stats, tmp_path, {PR_AUC_METRIC: 0.62, RECALL_METRIC: 0.55})
    bare = register_version(uri, stats, tmp_path)
    references = RegistryReferences(ModelRegistry(uri), "fraud")
    assert references.held_out(tested) == HeldOutQuality(0.62, 0.55)
    assert references.held_out(bare) is None
    assert references(tested) is not None  # the drift reference comes from the same record
    assert references.held_out("v9999") is None and "v9999" in references.problems
