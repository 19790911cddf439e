"""Data tests: one class only and schema drift are refused with a message naming the problem."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.dataset import assign_splits, labelled_transactions
from pipelines.validation import DataValidationError, check_snapshot
from services.features import names as n


def _snapshot(rows: int, fraud_every: int) -> pd.DataFrame:
    frame = pd.DataFrame({
        "transaction_id": [f"t-{i}" for i in range(rows)], "user_id": "u-1", "merchant_id": "m-1",
        "amount": 10.0, "currency": "EUR", "country": "DE", "channel": "web", "device_id": None,
        "timestamp": pd.date_range("2026-11-01", periods=rows, freq="min", tz="UTC"),
        "is_fraud": [fraud_every > 0 and i % fraud_every == 0 for i in range(rows)],
        **{f: 1.0 for f in n.STORED_FEATURES if f not in n.USER_LIST_FEATURES},
    })
    frame[n.MERCHANT_FRAUD_RATE_30D] = 0.01
    frame[n.USER_COUNTRIES_30D] = [["DE"]] * rows
    frame[n.USER_DEVICES_30D] = [[]] * rows
    return assign_splits(frame)


def test_balanced_snapshot_passes() -> None:
    stats = check_snapshot(_snapshot(200, 5), min_rows=100, max_null_rate=0.5)
    assert stats["rows"] == 200


def test_one_class_only_is_refused() -> None:
    with pytest.raises(DataValidationError, match=r"labels hold a single class \(is_fraud=False for all 200 rows"):
        check_snapshot(_snapshot(200, 0), min_rows=100, max_null_rate=0.5)


def test_schema_drift_in_the_source_is_refused() -> None:
    frame = _snapshot(10, 2)
    drifted = frame.drop(columns=["channel"]).assign(amount=frame["amount"].astype(str))
    labels = frame[["transaction_id", "is_fraud", "timestamp"]]
    with pytest.raises(DataValidationError) as err:
        labelled_transactions(drifted, labels, "", "")
    assert "transactions: column 'channel' is missing" in str(err.value)
    assert "transactions: column 'amount' has type object, expected number" in str(err.value)


def test_a_feature_missing_from_the_dataset_is_refused() -> None:
    with pytest.raises(DataValidationError, match="stored features \\['merchant_fraud_rate_30d'\\] are missing"):
        check_snapshot(_snapshot(200, 5).drop(columns=[n.MERCHANT_FRAUD_RATE_30D]), min_rows=100, max_null_rate=0.5)
