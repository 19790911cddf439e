"""Explanations: `/predict` with `"explain": true`, and what they say about known simulator fraud;
the training report's global (permutation) importance."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.dataset import load_snapshot
from services.common.events import Transaction
from services.features import names as n
from services.features.request import MODEL_FEATURES
from services.inference.explanations import explanation
from services.inference.openapi import openapi_document
from services.inference.scoring import LoadedModel, score_batch
from services.models.artifacts import load_model
from tests.batch_edge.conftest import Trained
from tests.inference.conftest import RunningService, make_transaction
from tests.inference.conftest import service as service  # the real inference server fixture, reused

pytestmark = pytest.mark.timeout(1500)  # the shared pipeline run on two shared cores
TOP = 3
TOP_IMPORTANCE = 5
# The features that encode each simulator pattern (services/simulator/fraud.py).
PATTERN_FEATURES = {
    "new_country_device": {"txn_country_is_new", "txn_device_is_new"},
    "unusual_amount": {"txn_amount", "txn_amount_log", "txn_amount_ratio_to_user_mean_30d"},
    # a burst from a new device, often abroad, within minutes
    "account_takeover": {
        "txn_device_is_new", "txn_country_is_new", "seconds_since_prev_txn",
        "user_txn_count_10m", "user_txn_count_1h", "user_distinct_countries_24h",
    },
}


def test_predict_explain_returns_top_contributions(service: RunningService) -> None:
    with service.client() as client:
        plain = client.post("/predict", json=make_transaction(1, amount=300.0, prefix="explain"))
        explained = client.post("/predict", json={**make_transaction(2, amount=300.0, prefix="explain"), "explain": True})
        off = client.post("/predict", json={**make_transaction(3, amount=300.0, prefix="explain"), "explain": False})
        bad = client.post("/predict", json={**make_transaction(4, prefix="explain"), "explain": "yes"})
        batch = client.post("/predict_batch", json={"transactions": [{**make_transaction(6, prefix="explain"), "explain": True}]})
    assert plain.status_code == explained.status_code == off.status_code == 200
    assert "explanation" not in plain.json() and "explanation" not in off.json()
    body = explained.json()
    assert body["fraud_probability"] == pytest.approx(plain.json()["fraud_probability"])
    items = body["explanation"]
    assert 1 <= len(items) <= 5 and all(set(i) == {"feature", "value", "contribution"} for i in items)
    assert [abs(i["contribution"]) for i in items] == sorted((abs(i["contribution"]) for i in items), reverse=True)
    assert {i["feature"] for i in items} <= set(service.champion.features)
    assert bad.status_code == 422 and bad.json()["field"] == "explain"
    assert batch.status_code == 200 and "explanation" not in batch.json()["predictions"][0]  # /predict only


def test_openapi_documents_explain() -> None:
    schemas = openapi_document()["components"]["schemas"]
    request = openapi_document()["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request["$ref"].endswith("/PredictRequest")
    assert schemas["PredictRequest"]["properties"]["explain"]["type"] == "boolean"
    assert "explain" not in schemas["PredictRequest"].get("required", [])
    assert set(schemas["PredictRequest"]["properties"]) == {*schemas["Transaction"]["properties"], "explain"}
    assert "explanation" in schemas["PredictionAnswer"]["properties"]
    assert set(schemas["Contribution"]["properties"]) == {"feature", "value", "contribution"}


def _stored(row: pd.Series) -> dict[str, object]:
    return {name: row[name] for name in n.STORED_FEATURES if name in row.index}


@pytest.mark.parametrize("kind", ["torch", "sklearn"])
def test_explanations_of_simulated_fraud_point_at_the_pattern(trained: Trained, kind: str, tmp_path: object) -> None:
    """Flagged test-split fraud of each pattern, explained through the serving path (score_batch ->
    explanation): the pattern's features are among the top 3 contributions."""
    record = trained.of_kind(kind)
    model = LoadedModel(record, load_model(trained.registry, record, trained.settings.data_dir / f"explain-{kind}"))
    snapshot = load_snapshot(record.data_window.dataset_hash, trained.settings.registry_uri, "").frame
    patterns = trained.simulated()[["transaction_id", "pattern"]]
    test = snapshot[snapshot["split"] == "test"].merge(patterns, on="transaction_id")
    test = test[test["pattern"].isin(list(PATTERN_FEATURES))]
    transactions = [
        Transaction.model_construct(**{**row[["transaction_id", "user_id", "merchant_id", "amount", "currency", "country",
                                              "channel", "timestamp"]].to_dict(),
                                       "device_id": row["device_id"] if isinstance(row["device_id"], str) else None,
                                       "timestamp": pd.Timestamp(row["timestamp"]).to_pydatetime()})
        for _, row in test.iterrows()
    ]
    scored = score_batch(model, transactions, [_stored(row) for _, row in test.iterrows()])
    flagged = [(s, p) for s, p in zip(scored, test["pattern"], strict=True) if s.decision != "approve"]
    assert len(flagged) >= 5, f"{kind} flags only {len(flagged)} pattern frauds in the test split"
    hits = {pattern: [0, 0] for pattern in PATTERN_FEATURES}
    for item, pattern in flagged:
        top = {e["feature"] for e in explanation(item, top_k=TOP)}
        hits[pattern][0] += bool(top & PATTERN_FEATURES[pattern])
        hits[pattern][1] += 1
    total_hits, total = (sum(h[i] for h in hits.values()) for i in (0, 1))
    assert total_hits >= 0.8 * total, hits
    # contributions add up to the gap between this decision and an average transaction
    item = flagged[0][0]
    full = explanation(item, top_k=len(record.features))
    baseline = np.array([record.reference_stats["features"][f]["mean"] for f in record.features], dtype=np.float32)
    gap = item.fraud_probability - float(model.scorer.predict_proba(baseline[None, :])[0])
    assert sum(e["contribution"] for e in full) == pytest.approx(gap, abs=1e-6)


def report_outputs(trained: Trained, kind: str) -> tuple[str, dict[str, object]]:
    """The HTML report and the evaluation summary that the shared run's evaluate-model step wrote for
    ``kind``. kfp.local keeps each task's outputs at <pipeline root>/<run>/<task>/<output>; the run's
    root is ``<data_dir>/kfp-local`` (pipelines.runner.run_local) and every registered version records
    its run as ``run_id`` (the gate's PIPELINE_JOB_NAME), so no other run's report can be picked up."""
    run = trained.settings.data_dir / "kfp-local" / trained.of_kind(kind).run_id
    assert run.is_dir(), f"the run that registered {kind} left no outputs at {run}"
    found = {}
    for task in sorted(run.glob("evaluate-model*")):
        summary = json.loads((task / "evaluation" / "evaluation.json").read_text())
        found[summary["kind"]] = (task, summary)
    assert set(found) == {"sklearn", "torch"}, f"evaluate-model tasks in {run}: {sorted(found)}"
    task, summary = found[kind]
    return Path(task / "report").read_text(), summary


def report_importance(html_text: str) -> dict[str, float]:
    """The report's importance table (pipelines/report.py), feature -> PR-AUC drop."""
    table = re.search(r"<table border='1' id='feature-importance'>(.*?)</table>", html_text, re.S)
    assert table, "the report has no importance table"
    rows = re.findall(r"<tr><td>(.*?)</td><td>([-+0-9.eE]+)</td></tr>", table.group(1))
    return {html.unescape(name): float(value) for name, value in rows}


@pytest.mark.parametrize("kind", ["torch", "sklearn"])
def test_training_report_shows_permutation_importance_led_by_pattern_features(trained: Trained, kind: str) -> None:
    """docs/training.md promises a global importance section in evaluate-model's HTML report: a chart
    and a table of every model feature, the very values the registry keeps, with a feature that
    encodes a simulator fraud pattern among the top five."""
    html_text, summary = report_outputs(trained, kind)
    assert f"Fraud model ({kind})" in html_text
    assert "<h2>Global feature importance</h2><img src='data:image/png;base64," in html_text

    shown = report_importance(html_text)
    assert set(shown) == set(MODEL_FEATURES)
    assert all(math.isfinite(v) for v in shown.values()), shown
    stored = trained.of_kind(kind).extra["feature_importance"]
    assert summary["importance"] == stored
    assert shown == pytest.approx(stored, abs=1e-6)

    top = sorted(shown.items(), key=lambda kv: kv[1], reverse=True)[:TOP_IMPORTANCE]
    pattern_features = set().union(*PATTERN_FEATURES.values())
    leading = [(name, value) for name, value in top if name in pattern_features and value > 0]
    assert leading, f"{kind}: no fraud-pattern feature with a positive PR-AUC drop in the top {TOP_IMPORTANCE}: {top}"
