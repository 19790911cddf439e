"""Point-in-time correctness against a real Feast store: a value written after a transaction is never its feature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from feast.data_source import PushMode

from pipelines.dataset import point_in_time_features
from services.common.settings import load_settings
from services.feature.store import apply_repo, open_store
from services.features import names as n


def _user_row(user: str, at: datetime, count: int) -> dict:
    return {
        n.USER_JOIN_KEY: user, n.EVENT_TIMESTAMP: pd.Timestamp(at),
        **dict.fromkeys(n.USER_INT_FEATURES, count), **dict.fromkeys(n.USER_FLOAT_FEATURES, float(count)),
        n.USER_COUNTRIES_30D: ["DE"], n.USER_DEVICES_30D: ["d-1"],
    }


def test_value_written_after_the_transaction_is_not_used(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    apply_repo(settings)
    store = open_store(settings)
    t = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    rows = pd.DataFrame([
        _user_row("u-1", t - timedelta(hours=1), 3),   # before: must be used
        _user_row("u-1", t, 4),                        # the transaction's own row (includes it): must not
        _user_row("u-1", t + timedelta(seconds=1), 99),  # after: must not
    ]).assign(**{n.CREATED_TIMESTAMP: pd.Timestamp.now(tz="UTC")})
    store.push(n.USER_PUSH_SOURCE, rows, to=PushMode.OFFLINE)
    labelled = pd.DataFrame({
        "transaction_id": ["t-1", "t-0"], "user_id": ["u-1", "u-1"], "merchant_id": ["m-1", "m-1"],
        "timestamp": pd.to_datetime([t, t - timedelta(hours=2)], utc=True), "is_fraud": [False, True],
    })

    joined = point_in_time_features(settings, labelled).set_index("transaction_id")

    assert joined.loc["t-1", n.USER_TXN_COUNT_24H] == 3
    assert pd.isna(joined.loc["t-0", n.USER_TXN_COUNT_24H])  # nothing stored before it
    assert pd.isna(joined.loc["t-1", n.MERCHANT_TXN_COUNT_24H])  # no merchant rows at all
