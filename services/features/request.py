"""The model's input vector: the transaction itself plus the stored features read for it.

Training (historical, point-in-time rows) and serving (online rows) both call
``request_features``, so the two cannot disagree about how a vector is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import pandas as pd

from services.common.events import Transaction
from services.features import names as n
from services.features.aggregate import is_null

CHANNELS: Final = ("web", "pos", "app")
# With no history the previous transaction is treated as a month ago: "long quiet".
NO_PREVIOUS_TXN_SECONDS: Final = 30 * 24 * 3600.0

# Features derived from the transaction (and the stored state it is compared with).
REQUEST_FEATURES: Final = (
    "txn_amount",
    "txn_amount_log",
    "txn_amount_ratio_to_user_mean_30d",
    "seconds_since_prev_txn",
    "txn_country_is_new",
    "txn_device_is_new",
    "txn_has_device",
    "txn_hour_of_day",
    *(f"txn_channel_{c}" for c in CHANNELS),
    "user_has_history",
    "merchant_has_history",
)
# Stored numeric aggregates fed to the model as they are (absolute time and lists are not).
STORED_MODEL_FEATURES: Final = (
    n.USER_TXN_COUNT_10M,
    n.USER_TXN_COUNT_1H,
    n.USER_TXN_COUNT_24H,
    n.USER_AMOUNT_SUM_24H,
    n.USER_AMOUNT_MEAN_24H,
    n.USER_AMOUNT_STD_24H,
    n.USER_AMOUNT_MAX_24H,
    n.USER_DISTINCT_MERCHANTS_24H,
    n.USER_DISTINCT_COUNTRIES_24H,
    n.USER_AMOUNT_MEAN_30D,
    n.MERCHANT_TXN_COUNT_24H,
    n.MERCHANT_AMOUNT_MEAN_24H,
    n.MERCHANT_FRAUD_RATE_30D,
    n.MERCHANT_LABELLED_COUNT_30D,
)
MODEL_FEATURES: Final[list[str]] = [*REQUEST_FEATURES, *STORED_MODEL_FEATURES]

# Value used when a stored feature is missing (None): no history means nothing happened,
# so counts, sums and rates are 0; a missing mean is 0 and flagged by *_has_history.
FEATURE_DEFAULTS: Final[dict[str, float]] = {name: 0.0 for name in STORED_MODEL_FEATURES}


def missing_stored(stored: Mapping[str, object]) -> list[str]:
    """Stored features the model reads that were absent (e.g. a user never seen)."""
    wanted = (*STORED_MODEL_FEATURES, n.USER_LAST_TXN_EPOCH_S, n.USER_COUNTRIES_30D, n.USER_DEVICES_30D)
    return [name for name in wanted if is_null(stored.get(name))]


def _as_set(value: object) -> set[str] | None:
    if is_null(value):
        return None
    return {str(v) for v in value}  # type: ignore[attr-defined]


def _epoch_seconds(moment: datetime) -> float:
    return moment.timestamp()


def request_features(txn: Transaction, stored: Mapping[str, object]) -> dict[str, float]:
    """The model input for ``txn``, in MODEL_FEATURES order; stored holds the state strictly
    before the transaction (missing names or None values get FEATURE_DEFAULTS)."""
    amount = float(txn.amount)
    user_mean = stored.get(n.USER_AMOUNT_MEAN_30D)
    last_epoch = stored.get(n.USER_LAST_TXN_EPOCH_S)
    countries = _as_set(stored.get(n.USER_COUNTRIES_30D))
    devices = _as_set(stored.get(n.USER_DEVICES_30D))
    user_seen = not is_null(last_epoch)
    since_prev = (
        max(0.0, _epoch_seconds(txn.timestamp) - float(last_epoch))  # type: ignore[arg-type]
        if user_seen
        else NO_PREVIOUS_TXN_SECONDS
    )
    ratio = amount / float(user_mean) if not is_null(user_mean) and float(user_mean) > 0 else 1.0  # type: ignore[arg-type]
    vector: dict[str, Any] = {
        "txn_amount": amount,
        "txn_amount_log": math.log1p(amount),
        "txn_amount_ratio_to_user_mean_30d": ratio,
        "seconds_since_prev_txn": since_prev,
        # A user with no history has every country and device "new".
        "txn_country_is_new": 1.0 if countries is None or txn.country not in countries else 0.0,
        "txn_device_is_new": 1.0
        if txn.device_id is not None and (devices is None or txn.device_id not in devices)
        else 0.0,
        "txn_has_device": 1.0 if txn.device_id is not None else 0.0,
        "txn_hour_of_day": float(txn.timestamp.hour),
        **{f"txn_channel_{c}": 1.0 if txn.channel == c else 0.0 for c in CHANNELS},
        "user_has_history": 1.0 if user_seen else 0.0,
        "merchant_has_history": 1.0 if not is_null(stored.get(n.MERCHANT_TXN_COUNT_24H)) else 0.0,
    }
    for name in STORED_MODEL_FEATURES:
        value = stored.get(name)
        vector[name] = float(value) if not is_null(value) else FEATURE_DEFAULTS[name]  # type: ignore[arg-type]
    return {name: vector[name] for name in MODEL_FEATURES}


_TXN_COLUMNS: Final = (
    "transaction_id",
    "user_id",
    "merchant_id",
    "amount",
    "currency",
    "country",
    "channel",
    "device_id",
    "timestamp",
)


def request_features_frame(transactions: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """``request_features`` row by row: transactions and stored are aligned by position.

    Rows were validated when they entered the system, so Transactions are built without
    re-validation (``model_construct``); the vector logic is the very same function.
    """
    if len(transactions) != len(stored):
        raise ValueError(f"transactions ({len(transactions)}) and stored ({len(stored)}) rows must align")
    missing = [c for c in _TXN_COLUMNS if c not in transactions.columns and c != "device_id"]
    if missing:
        raise ValueError(f"transactions frame lacks columns {missing}")
    timestamps = pd.to_datetime(transactions["timestamp"], utc=True)
    devices = (
        transactions["device_id"] if "device_id" in transactions.columns else pd.Series([None] * len(transactions))
    )
    stored_cols = [c for c in stored.columns if c in n.STORED_FEATURES]
    stored_records = stored[stored_cols].to_dict("records")
    out = []
    for i, (tid, uid, mid, amount, currency, country, channel, device, ts) in enumerate(
        zip(
            transactions["transaction_id"],
            transactions["user_id"],
            transactions["merchant_id"],
            transactions["amount"],
            transactions["currency"],
            transactions["country"],
            transactions["channel"],
            devices,
            timestamps,
            strict=True,
        )
    ):
        txn = Transaction.model_construct(
            transaction_id=tid,
            user_id=uid,
            merchant_id=mid,
            amount=float(amount),
            currency=currency,
            country=country,
            channel=channel,
            device_id=device if isinstance(device, str) else None,
            timestamp=ts.to_pydatetime(),
        )
        out.append(request_features(txn, stored_records[i]))
    return pd.DataFrame(out, columns=MODEL_FEATURES, index=transactions.index)
