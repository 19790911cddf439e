"""The Feast objects of the fraud-scoring repo, built for one storage location.

``feature_repo/`` exposes them as module-level objects for the ``feast`` CLI; the
services apply them in-process (``services.feature.store.apply_repo``). Paths are an
argument because Feast records a source's path in its registry at apply time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Bool, FeastType, Float64, Int64, String

from services.features import names as n

LABEL_VIEW = "transaction_label"
LABEL_PUSH_SOURCE = "transaction_label_push"
LABEL_ENTITY = "transaction"
LABEL_JOIN_KEY = "transaction_id"
LABEL_FEATURES = ("is_fraud",)

# Rows never expire: a stale row is still the user's latest state, and expiring it only
# offline (online reads ignore ttl) would make training see nulls where serving sees values.
NO_EXPIRY = timedelta(0)


@dataclass(frozen=True)
class FraudRepo:
    user: Entity
    merchant: Entity
    transaction: Entity
    views: dict[str, FeatureView]
    join_keys: dict[str, str]
    push_sources: dict[str, PushSource]
    fraud_scoring: FeatureService

    def objects(self) -> list[Any]:
        return [
            self.user,
            self.merchant,
            self.transaction,
            *self.push_sources.values(),
            *self.views.values(),
            self.fraud_scoring,
        ]


def offline_path(data_uri: str, view: str) -> str:
    return f"{data_uri.rstrip('/')}/offline/{view}.parquet"


def _schema(view: str) -> list[Field]:
    types: dict[str, FeastType]
    if view == n.USER_VIEW:
        types = {
            **dict.fromkeys(n.USER_INT_FEATURES, Int64),
            **dict.fromkeys(n.USER_FLOAT_FEATURES, Float64),
            **dict.fromkeys(n.USER_LIST_FEATURES, Array(String)),
        }
    elif view == n.MERCHANT_VIEW:
        types = {n.MERCHANT_TXN_COUNT_24H: Int64, n.MERCHANT_AMOUNT_MEAN_24H: Float64}
    elif view == n.MERCHANT_RISK_VIEW:
        types = {n.MERCHANT_FRAUD_RATE_30D: Float64, n.MERCHANT_LABELLED_COUNT_30D: Int64}
    else:
        types = {"is_fraud": Bool}
    names = n.VIEW_FEATURES.get(view, LABEL_FEATURES)
    return [Field(name=name, dtype=types[name]) for name in names]


def build_repo(data_uri: str, s3_endpoint: str | None = None) -> FraudRepo:
    """Every Feast object of the repo, with offline Parquet under ``data_uri``."""
    user = Entity(
        name=n.USER_ENTITY, join_keys=[n.USER_JOIN_KEY], value_type=ValueType.STRING, description="A card holder"
    )
    merchant = Entity(
        name=n.MERCHANT_ENTITY,
        join_keys=[n.MERCHANT_JOIN_KEY],
        value_type=ValueType.STRING,
        description="A merchant accepting cards",
    )
    transaction = Entity(
        name=LABEL_ENTITY,
        join_keys=[LABEL_JOIN_KEY],
        value_type=ValueType.STRING,
        description="One card transaction (labels are keyed by it)",
    )
    entity_of = {n.USER_VIEW: user, n.MERCHANT_VIEW: merchant, n.MERCHANT_RISK_VIEW: merchant, LABEL_VIEW: transaction}
    push_name = {**n.VIEW_PUSH_SOURCE, LABEL_VIEW: LABEL_PUSH_SOURCE}
    descriptions = {
        n.USER_VIEW: "Per-user streaming aggregates, stamped at each transaction, including it",
        n.MERCHANT_VIEW: "Per-merchant volume over 24 h, stamped at each transaction, including it",
        n.MERCHANT_RISK_VIEW: "Per-merchant fraud rate from labels, stamped at each label's time",
        LABEL_VIEW: "Fraud labels (chargebacks) for training; offline only",
    }
    views: dict[str, FeatureView] = {}
    pushes: dict[str, PushSource] = {}
    for view, entity in entity_of.items():
        batch = FileSource(
            name=f"{view}_offline",
            path=offline_path(data_uri, view),
            timestamp_field=n.EVENT_TIMESTAMP,
            created_timestamp_column=n.CREATED_TIMESTAMP,
            s3_endpoint_override=s3_endpoint or "",
        )
        push = PushSource(name=push_name[view], batch_source=batch)
        pushes[view] = push
        views[view] = FeatureView(
            name=view,
            entities=[entity],
            ttl=NO_EXPIRY,
            schema=_schema(view),
            source=push,
            online=view != LABEL_VIEW,
            description=descriptions[view],
            tags={"team": "fraud", "written_by": "services.feature"},
        )
    fraud_scoring = FeatureService(
        name=n.FEATURE_SERVICE,
        features=[views[v] for v in n.VIEW_FEATURES],
        description="Everything the fraud model reads, at training (point-in-time) and serving (online)",
    )
    join_keys = {**n.VIEW_JOIN_KEY, LABEL_VIEW: LABEL_JOIN_KEY}
    return FraudRepo(user, merchant, transaction, views, join_keys, pushes, fraud_scoring)
