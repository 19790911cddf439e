"""Benchmark peer (d): the obvious FastAPI service, one Feast lookup and one model call per request.

Run: RTML_* settings as for the real service, then
``uvicorn benchmarks.inference_naive_peer:app --port N``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException

from services.common.events import EventError, Transaction, validate
from services.common.settings import get_settings
from services.feature.store import open_store
from services.features import names as n
from services.features.request import missing_stored, request_features
from services.models.artifacts import load_model
from services.registry import ModelRegistry

settings = get_settings()
store = open_store(settings)
registry = ModelRegistry(settings.registry_uri)
record = registry.champion("fraud")
assert record is not None, "promote a model first"
scorer = load_model(registry, record, settings.data_dir / "naive-peer-cache")
feature_service = store.get_feature_service(n.FEATURE_SERVICE)
app = FastAPI()


@app.post("/predict")
def predict(body: dict[str, Any]) -> dict[str, Any]:
    try:
        txn = validate(Transaction, body)
    except EventError as exc:
        raise HTTPException(422, str(exc)) from None
    row = store.get_online_features(
        features=feature_service, entity_rows=[{n.USER_JOIN_KEY: txn.user_id, n.MERCHANT_JOIN_KEY: txn.merchant_id}]
    ).to_dict()
    stored = {k: v[0] for k, v in row.items()}
    vector = request_features(txn, stored)
    p = float(scorer.predict_proba(np.array([[vector[f] for f in record.features]], dtype=np.float32))[0])
    return {
        "transaction_id": txn.transaction_id,
        "fraud_probability": p,
        "decision": record.thresholds.decide(p),
        "model_version": record.version,
        "features_missing": missing_stored(stored),
    }
