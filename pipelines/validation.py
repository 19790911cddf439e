"""Data checks that stop a training run before any model sees bad data.

Every failure is a DataValidationError whose message a person can act on: it names the
column, the window or the split, what was found and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from services.features import names as n
from services.features.request import CHANNELS

LABEL = "is_fraud"
SPLIT = "split"
SPLITS = ("train", "validation", "test")

# Raw transaction fields the model's request features are computed from, with the kind each must have.
TRANSACTION_SCHEMA: dict[str, str] = {
    "transaction_id": "string",
    "user_id": "string",
    "merchant_id": "string",
    "amount": "number",
    "currency": "string",
    "country": "string",
    "channel": "string",
    "timestamp": "datetime",
}
LABEL_SCHEMA: dict[str, str] = {"transaction_id": "string", LABEL: "bool", "timestamp": "datetime"}
NUMERIC_STORED = tuple(f for f in n.STORED_FEATURES if f not in n.USER_LIST_FEATURES)
NON_NEGATIVE = tuple(f for f in NUMERIC_STORED if f != n.USER_LAST_TXN_EPOCH_S)


class DataValidationError(ValueError):
    """The training data is unusable; the run stops here and nothing is registered."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("data validation failed: " + "; ".join(self.problems))


def _kind_ok(series: pd.Series, kind: str) -> bool:
    if kind == "number":
        return ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series)
    if kind == "datetime":
        return ptypes.is_datetime64_any_dtype(series)
    if kind == "bool":
        return ptypes.is_bool_dtype(series) or (ptypes.is_integer_dtype(series) and series.isin([0, 1]).all())
    return ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series)


def schema_problems(frame: pd.DataFrame, schema: dict[str, str], table: str) -> list[str]:
    problems = []
    for column, kind in schema.items():
        if column not in frame.columns:
            problems.append(f"{table}: column {column!r} is missing (found {sorted(map(str, frame.columns))})")
        elif not _kind_ok(frame[column], kind):
            problems.append(f"{table}: column {column!r} has type {frame[column].dtype}, expected {kind}")
    return problems


def check_source(transactions: pd.DataFrame, labels: pd.DataFrame) -> None:
    """The raw inputs have the columns and types the dataset is built from (catches schema drift)."""
    problems = schema_problems(transactions, TRANSACTION_SCHEMA, "transactions")
    problems += schema_problems(labels, LABEL_SCHEMA, "labels")
    if problems:
        raise DataValidationError(problems)


def _window(frame: pd.DataFrame, start: str, end: str) -> str:
    return f"{start or 'the beginning'} .. {end or 'the end'}"


def check_snapshot(
    frame: pd.DataFrame, *, min_rows: int, max_null_rate: float, window_start: str = "", window_end: str = ""
) -> dict[str, float]:
    """Schema, ranges, null rates, label balance and size of the point-in-time dataset; returns its stats."""
    window = _window(frame, window_start, window_end)
    if frame.empty:
        raise DataValidationError([f"no labelled transactions in the window {window}"])
    problems = schema_problems(frame, {**TRANSACTION_SCHEMA, LABEL: "bool", SPLIT: "string"}, "dataset")
    missing_features = [f for f in n.STORED_FEATURES if f not in frame.columns]
    if missing_features:
        problems.append(f"dataset: stored features {missing_features} are missing (feature service changed?)")
    for feature in NUMERIC_STORED:
        if feature in frame.columns and not _kind_ok(frame[feature], "number"):
            problems.append(f"dataset: feature {feature!r} has type {frame[feature].dtype}, expected a number")
    if problems:
        raise DataValidationError(problems)

    labels = frame[LABEL].astype(bool)
    if labels.nunique() < 2:
        only = bool(labels.iloc[0])
        problems.append(
            f"labels hold a single class (is_fraud={only} for all {len(frame)} rows in {window}); a classifier needs both"
        )
    if len(frame) < min_rows:
        problems.append(f"only {len(frame)} labelled transactions in {window}; at least {min_rows} are required")
    for split in SPLITS:
        part = frame[frame[SPLIT] == split]
        if part.empty:
            problems.append(f"the {split} split is empty")
        elif split != "validation" and part[LABEL].astype(bool).nunique() < 2:
            problems.append(f"the {split} split ({len(part)} rows) holds a single class")

    amount = frame["amount"].to_numpy(dtype=np.float64, na_value=np.nan)
    bad_amounts = int((~np.isfinite(amount) | (amount <= 0)).sum())
    if bad_amounts:
        problems.append(f"{bad_amounts} transactions have a missing, non-finite or non-positive amount")
    bad_channels = sorted(set(frame["channel"].dropna().astype(str)) - set(CHANNELS))
    if bad_channels:
        problems.append(f"unknown channels {bad_channels}; expected {list(CHANNELS)}")
    for column in TRANSACTION_SCHEMA:
        nulls = int(frame[column].isna().sum())
        if nulls:
            problems.append(f"{nulls} rows have no {column}")
    for feature in NON_NEGATIVE:
        negatives = int((frame[feature].to_numpy(dtype=np.float64, na_value=np.nan) < 0).sum())
        if negatives:
            problems.append(f"feature {feature!r} is negative in {negatives} rows")
    rate = frame[n.MERCHANT_FRAUD_RATE_30D].dropna()
    if ((rate < 0) | (rate > 1)).any():
        problems.append(f"feature {n.MERCHANT_FRAUD_RATE_30D!r} lies outside [0, 1]")
    null_rates = {f: float(frame[f].isna().mean()) for f in n.STORED_FEATURES}
    too_sparse = {f: round(r, 3) for f, r in null_rates.items() if r > max_null_rate}
    if too_sparse:
        problems.append(f"features missing more often than {max_null_rate:g}: {too_sparse}")
    if problems:
        raise DataValidationError(problems)

    stats = {
        "rows": float(len(frame)),
        "fraud_rate": float(labels.mean()),
        **{f"{split}_rows": float((frame[SPLIT] == split).sum()) for split in SPLITS},
        "max_feature_null_rate": max(null_rates.values()),
    }
    return stats
