"""Offline backfill: the stored feature rows of a recorded stream (e.g. a simulator Parquet file).

Uses the same gate and row functions as the feature service, so its rows equal what
the stream wrote: transactions are taken in file (arrival) order, events beyond the
allowed lateness of their user are dropped, duplicates (same transaction_id) count once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.features import aggregate as agg
from services.features import names as n
from services.features.aggregate import History, LabelFact, Row, TxnFact

TXN_COLUMNS = ("transaction_id", "user_id", "merchant_id", "amount", "country", "device_id", "timestamp")


@dataclass
class Backfill:
    """Stored rows per view (one per key and event time) and the label view's rows."""

    rows: dict[str, pd.DataFrame]
    labels: pd.DataFrame  # transaction_id, is_fraud, event_timestamp (for the label view)
    dropped_late: int


def _micros(column: pd.Series) -> np.ndarray:
    return pd.to_datetime(column, utc=True).astype("datetime64[us, UTC]").astype("int64").to_numpy()


def accepted_transactions(transactions: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The transactions the stream would accept, in arrival order, with ``ts_us``."""
    missing = [c for c in TXN_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack columns {missing}")
    frame = transactions.loc[:, list(TXN_COLUMNS)].drop_duplicates("transaction_id", keep="first").copy()
    frame["ts_us"] = _micros(frame["timestamp"])
    # Watermark before each event = latest earlier event of the same user.
    before = frame.groupby("user_id", sort=False)["ts_us"].transform(lambda s: s.cummax().shift())
    late = before.notna() & (frame["ts_us"] < before - agg.LATENESS_US)
    return frame.loc[~late], int(late.sum())


def _facts(frame: pd.DataFrame) -> list[TxnFact]:
    devices = [d if isinstance(d, str) else None for d in frame["device_id"]]
    return [
        TxnFact(t, u, m, int(ts), float(a), c, d)
        for t, u, m, ts, a, c, d in zip(
            frame["transaction_id"],
            frame["user_id"],
            frame["merchant_id"],
            frame["ts_us"],
            frame["amount"],
            frame["country"],
            devices,
            strict=True,
        )
    ]


def _frame(view: str, rows: list[Row]) -> pd.DataFrame:
    columns = [n.VIEW_JOIN_KEY[view], *n.VIEW_FEATURES[view], n.EVENT_TIMESTAMP]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame[n.EVENT_TIMESTAMP] = pd.to_datetime(frame[n.EVENT_TIMESTAMP].astype("int64"), unit="us", utc=True)
    return frame


def compute(transactions: pd.DataFrame, labels: pd.DataFrame) -> Backfill:
    """All stored rows for a recorded stream of transactions and labels."""
    accepted, dropped = accepted_transactions(transactions)
    facts = _facts(accepted)
    by_user: dict[str, list[TxnFact]] = {}
    by_merchant: dict[str, list[TxnFact]] = {}
    for fact in facts:
        by_user.setdefault(fact.user_id, []).append(fact)
        by_merchant.setdefault(fact.merchant_id, []).append(fact)
    user_rows = [row for uid, fs in by_user.items() for row in agg.user_rows(uid, History.of(fs), -(2**62))]
    merchant_rows = [row for mid, fs in by_merchant.items() for row in agg.merchant_rows(mid, History.of(fs), -(2**62))]
    merchant_of = dict(zip(accepted["transaction_id"], accepted["merchant_id"], strict=True))
    label_frame = labels.drop_duplicates("transaction_id", keep="first")
    label_frame = label_frame[label_frame["transaction_id"].isin(merchant_of.keys())]
    label_ts = _micros(label_frame["timestamp"]) if len(label_frame) else np.array([], dtype="int64")
    label_facts = [
        LabelFact(t, merchant_of[t], int(ts), bool(f))
        for t, ts, f in zip(label_frame["transaction_id"], label_ts, label_frame["is_fraud"], strict=True)
    ]
    by_risk: dict[str, list[LabelFact]] = {}
    for lf in label_facts:
        by_risk.setdefault(lf.merchant_id, []).append(lf)
    risk_rows = [row for mid, fs in by_risk.items() for row in agg.merchant_risk_rows(mid, History.of(fs), -(2**62))]
    labelled = pd.DataFrame(
        {
            "transaction_id": [f.transaction_id for f in label_facts],
            "is_fraud": [f.is_fraud for f in label_facts],
            n.EVENT_TIMESTAMP: pd.to_datetime(
                np.array([f.ts_us for f in label_facts], dtype="int64"), unit="us", utc=True
            ),
        }
    )
    return Backfill(
        rows={
            n.USER_VIEW: _frame(n.USER_VIEW, user_rows),
            n.MERCHANT_VIEW: _frame(n.MERCHANT_VIEW, merchant_rows),
            n.MERCHANT_RISK_VIEW: _frame(n.MERCHANT_RISK_VIEW, risk_rows),
        },
        labels=labelled,
        dropped_late=dropped,
    )
