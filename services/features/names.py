"""Names of every stored feature, feature view, entity and the FeatureService: the one contract.

Semantics (avoids train/serve skew): a stored feature row is stamped with the event
time of the event that produced it and describes the history *including* that event
(every event with a timestamp at or before the stamp). Scoring happens before a
transaction is recorded, so the model must see the state strictly before it: training
joins point-in-time at ``transaction time - POINT_IN_TIME_OFFSET``; serving reads the
online store, which holds the latest state because clients score first, then publish.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

FEATURE_SERVICE: Final = "fraud_scoring"

USER_ENTITY: Final = "user"
USER_JOIN_KEY: Final = "user_id"
MERCHANT_ENTITY: Final = "merchant"
MERCHANT_JOIN_KEY: Final = "merchant_id"

USER_VIEW: Final = "user_activity"
MERCHANT_VIEW: Final = "merchant_activity"
MERCHANT_RISK_VIEW: Final = "merchant_risk"

# Push sources feeding each view (the feature service writes through these).
USER_PUSH_SOURCE: Final = "user_activity_push"
MERCHANT_PUSH_SOURCE: Final = "merchant_activity_push"
MERCHANT_RISK_PUSH_SOURCE: Final = "merchant_risk_push"

# Columns every stored row carries besides its key and features.
EVENT_TIMESTAMP: Final = "event_timestamp"
CREATED_TIMESTAMP: Final = "created_timestamp"  # later writes of the same row win (late-event revisions)

POINT_IN_TIME_OFFSET: Final = timedelta(microseconds=1)

# --- view user_activity (entity user) ---
USER_TXN_COUNT_10M: Final = "user_txn_count_10m"
USER_TXN_COUNT_1H: Final = "user_txn_count_1h"
USER_TXN_COUNT_24H: Final = "user_txn_count_24h"
USER_AMOUNT_SUM_24H: Final = "user_amount_sum_24h"
USER_AMOUNT_MEAN_24H: Final = "user_amount_mean_24h"
USER_AMOUNT_STD_24H: Final = "user_amount_std_24h"
USER_AMOUNT_MAX_24H: Final = "user_amount_max_24h"
USER_DISTINCT_MERCHANTS_24H: Final = "user_distinct_merchants_24h"
USER_DISTINCT_COUNTRIES_24H: Final = "user_distinct_countries_24h"
USER_AMOUNT_MEAN_30D: Final = "user_amount_mean_30d"
USER_LAST_TXN_EPOCH_S: Final = "user_last_txn_epoch_s"
USER_COUNTRIES_30D: Final = "user_countries_30d"  # Array(String), sorted
USER_DEVICES_30D: Final = "user_devices_30d"  # Array(String), sorted

USER_INT_FEATURES: Final = (
    USER_TXN_COUNT_10M,
    USER_TXN_COUNT_1H,
    USER_TXN_COUNT_24H,
    USER_DISTINCT_MERCHANTS_24H,
    USER_DISTINCT_COUNTRIES_24H,
)
USER_FLOAT_FEATURES: Final = (
    USER_AMOUNT_SUM_24H,
    USER_AMOUNT_MEAN_24H,
    USER_AMOUNT_STD_24H,
    USER_AMOUNT_MAX_24H,
    USER_AMOUNT_MEAN_30D,
    USER_LAST_TXN_EPOCH_S,
)
USER_LIST_FEATURES: Final = (USER_COUNTRIES_30D, USER_DEVICES_30D)

USER_FEATURES: Final = (
    USER_TXN_COUNT_10M,
    USER_TXN_COUNT_1H,
    USER_TXN_COUNT_24H,
    USER_AMOUNT_SUM_24H,
    USER_AMOUNT_MEAN_24H,
    USER_AMOUNT_STD_24H,
    USER_AMOUNT_MAX_24H,
    USER_DISTINCT_MERCHANTS_24H,
    USER_DISTINCT_COUNTRIES_24H,
    USER_AMOUNT_MEAN_30D,
    USER_LAST_TXN_EPOCH_S,
    USER_COUNTRIES_30D,
    USER_DEVICES_30D,
)

# --- view merchant_activity (entity merchant) ---
MERCHANT_TXN_COUNT_24H: Final = "merchant_txn_count_24h"
MERCHANT_AMOUNT_MEAN_24H: Final = "merchant_amount_mean_24h"
MERCHANT_FEATURES: Final = (MERCHANT_TXN_COUNT_24H, MERCHANT_AMOUNT_MEAN_24H)

# --- view merchant_risk (entity merchant, from labels, stamped at label time) ---
MERCHANT_FRAUD_RATE_30D: Final = "merchant_fraud_rate_30d"
MERCHANT_LABELLED_COUNT_30D: Final = "merchant_labelled_count_30d"
MERCHANT_RISK_FEATURES: Final = (MERCHANT_FRAUD_RATE_30D, MERCHANT_LABELLED_COUNT_30D)

# Every stored feature the model reads, view by view (what FeatureService fraud_scoring serves).
VIEW_FEATURES: Final[dict[str, tuple[str, ...]]] = {
    USER_VIEW: USER_FEATURES,
    MERCHANT_VIEW: MERCHANT_FEATURES,
    MERCHANT_RISK_VIEW: MERCHANT_RISK_FEATURES,
}
VIEW_JOIN_KEY: Final[dict[str, str]] = {
    USER_VIEW: USER_JOIN_KEY,
    MERCHANT_VIEW: MERCHANT_JOIN_KEY,
    MERCHANT_RISK_VIEW: MERCHANT_JOIN_KEY,
}
VIEW_PUSH_SOURCE: Final[dict[str, str]] = {
    USER_VIEW: USER_PUSH_SOURCE,
    MERCHANT_VIEW: MERCHANT_PUSH_SOURCE,
    MERCHANT_RISK_VIEW: MERCHANT_RISK_PUSH_SOURCE,
}
STORED_FEATURES: Final = (*USER_FEATURES, *MERCHANT_FEATURES, *MERCHANT_RISK_FEATURES)


def feature_refs() -> list[str]:
    """``view:feature`` references of every stored feature, in STORED_FEATURES order."""
    return [f"{view}:{name}" for view, names in VIEW_FEATURES.items() for name in names]
