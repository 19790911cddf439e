"""The monitor against a real broker and registry: stable traffic stays quiet, labels give the
true live quality, malformed messages are counted and skipped, quality loss asks for retraining once."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from services.common.events import Event, Topics
from services.common.settings import Settings
from tests.monitor.conftest import api_state, http_get, publish, running_monitor, training_requests, wait_for
from tests.monitor.traffic import THRESHOLDS, payments, prediction, reference_for, register_version


@pytest.fixture(scope="module")
def stream() -> list[Any]:
    return payments(6000)


def _counted(settings: Settings, predictions: int, labels: int, malformed: int = 0) -> bool:
    counts = api_state(settings)["counts"]
    return bool(
        counts["predictions"] == predictions
        and counts["labels"] == labels
        and sum(counts["malformed"].values()) == malformed
    )


def test_stable_traffic_measures_drift_but_asks_for_nothing(
    monitor_settings: Settings, stream: list[Any], tmp_path: Any
) -> None:
    settings = monitor_settings
    version = register_version(settings.registry_uri, reference_for([p.transaction for p in stream[:3000]]), tmp_path)
    live = stream[3000:6000]
    with running_monitor(settings):
        publish(
            settings,
            [(Topics.PREDICTIONS, p.transaction.transaction_id, prediction(p.transaction, version)) for p in live],
        )
        wait_for("3000 predictions read", lambda: _counted(settings, 3000, 0))
        state = api_state(settings)
        status, metrics = http_get(settings, "/metrics")

    drift = state["drift"]
    assert state["current_version"] == version and drift["measured"] and drift["window"] == 1000
    monitored = {n: drift["psi"][n] for n in drift["monitored"] if n in drift["psi"]}
    assert len(monitored) == 5 and max(monitored.values()) < drift["psi_threshold"]
    assert drift["score_psi"] < drift["psi_threshold"]
    # Hour of day follows the daily rhythm: measured and shown, never alarmed on.
    assert "txn_hour_of_day" in drift["psi"] and "txn_hour_of_day" not in drift["monitored"]
    assert drift["psi"]["txn_hour_of_day"] > max(monitored.values())
    assert state["requests"] == [] and training_requests(settings) == []
    text = metrics.decode()
    assert status == 200
    assert f'rtml_monitor_feature_psi{{feature="txn_amount_log",model_version="{version}"}}' in text
    assert "rtml_monitor_predictions_total 3000.0" in text


def test_labels_give_true_quality_malformed_are_skipped_and_quality_loss_asks_once(
    monitor_settings: Settings, stream: list[Any], tmp_path: Any
) -> None:
    settings = monitor_settings.model_copy(
        update={
            "monitor_drift_features": "",  # quality alone decides here
            "monitor_min_labels": 200,
            "monitor_min_positives": 5,
            # Floors at zero: only the bar set from the version's registered test figures can alarm.
            "monitor_min_recall": 0.0,
            "monitor_min_pr_auc": 0.0,
            "monitor_min_recall_ratio": 0.7,
            "monitor_min_pr_auc_ratio": 0.7,
        }
    )
    # The scoring rule's live recall here is about 0.35 and its PR-AUC about 0.12: tested at a recall
    # of 0.6 (bar 0.42) it has "lost" recall; tested at PR-AUC 0.12 (bar 0.084) it has not.
    tested = {"pr_auc": 0.12, "recall_at_fpr_0.01": 0.6}
    version = register_version(
        settings.registry_uri, reference_for([p.transaction for p in stream[:3000]]), tmp_path, tested
    )
    live = stream[3000:5000]
    labelled = [p for p in live if p.label is not None]
    early, late = labelled[:150], labelled[150:]
    logs = {p.transaction.transaction_id: prediction(p.transaction, version) for p in live}
    bad_prediction = json.loads(next(iter(logs.values())).to_json())
    bad_prediction["fraud_probability"] = "high"
    items: list[tuple[str, str, Event | bytes]] = [
        (Topics.LABELS, p.transaction.transaction_id, p.label) for p in early
    ]  # type: ignore[misc]
    items += [
        (Topics.PREDICTIONS, "x", b"\xff not json"),
        (Topics.PREDICTIONS, "y", json.dumps(bad_prediction).encode()),
    ]
    items += [(Topics.PREDICTIONS, tid, log) for tid, log in logs.items()]
    items += [(Topics.LABELS, "z", b'{"schema_version": 2, "transaction_id": "t-1", "is_fraud": true}')]
    items += [
        (Topics.LABELS, "w", b'{"transaction_id": "t-1", "is_fraud": "yes", "timestamp": "2026-11-01T00:00:00Z"}')
    ]
    items += [(Topics.LABELS, p.transaction.transaction_id, p.label) for p in late]  # type: ignore[misc]
    items += [(Topics.LABELS, p.transaction.transaction_id, p.label) for p in late[:40]]  # redelivered
    n_labels = len(labelled) + 40
    with running_monitor(settings):
        publish(settings, items)
        wait_for("every message read", lambda: _counted(settings, len(live), n_labels, malformed=4))
        # The request is published just before the state records it; wait for the record.
        wait_for("the quality request recorded", lambda: bool(api_state(settings)["requests"]))
        state = api_state(settings)
        status, metrics = http_get(settings, "/metrics")
        assert status == 200
        assert http_get(settings, "/readyz")[0] == 200  # still serving after the bad messages

    counts = state["counts"]
    assert counts["malformed"] == {Topics.PREDICTIONS: 2, Topics.LABELS: 2}
    assert counts["joined"] == len(labelled) and counts["duplicates"] == 40
    assert counts["pending_predictions"] == len(live) - len(labelled)

    truth = np.array([p.label.is_fraud for p in labelled])  # type: ignore[union-attr]
    scores = np.array([logs[p.transaction.transaction_id].fraud_probability for p in labelled])
    flagged = np.array([logs[p.transaction.transaction_id].decision != "approve" for p in labelled])
    assert truth.sum() >= 5 and flagged.sum() > 0
    quality = state["quality"]
    assert quality["labelled"] == len(labelled) and quality["positives"] == int(truth.sum())
    assert quality["precision"] == pytest.approx((flagged & truth).sum() / flagged.sum(), abs=1e-4)
    assert quality["recall"] == pytest.approx((flagged & truth).sum() / truth.sum(), abs=1e-4)
    assert quality["pr_auc"] == pytest.approx(average_precision_score(truth, scores), abs=1e-4)
    assert THRESHOLDS.review == 0.5  # "flagged" above means review or decline at the version's thresholds
    assert quality["min_recall"] == pytest.approx(0.42) and quality["min_pr_auc"] == pytest.approx(0.084)
    assert quality["test_recall_at_fpr_0.01"] == 0.6 and quality["floor_min_recall"] == 0.0
    assert quality["recall"] < 0.42 < quality["recall"] + 0.2 and quality["pr_auc"] > 0.084

    published = [r for r in training_requests(settings) if r.requested_by == "monitor"]
    assert len(published) == 1, published
    request = published[0]
    assert request.reason == "quality" and request.request_id == f"monitor-{version}-1"
    assert request.evidence["model_version"] == version
    # Judged on the labels read by then: recall under its bar (PR-AUC may dip under its own early on).
    evidence = request.evidence["quality"]
    assert evidence["min_recall"] == pytest.approx(0.42) and evidence["crossed"]["recall"] < 0.42
    assert all(evidence[name] < evidence[f"min_{name}"] for name in evidence["crossed"])
    assert request.evidence["quality"]["labelled"] >= 200
    assert [r["request_id"] for r in state["requests"]] == [request.request_id]
    text = metrics.decode()
    assert 'rtml_monitor_malformed_total{topic="rtml.labels"} 2.0' in text
    assert 'rtml_monitor_training_requests_total{reason="quality"} 1.0' in text
    assert f'rtml_monitor_live_pr_auc{{model_version="{version}"}}' in text
