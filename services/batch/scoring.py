"""Scoring a table of transactions as the online service would have scored each one at its own time.

Stored features come from the Feast offline store through the training pipeline's point-in-time
join (the state strictly before each transaction), model inputs from ``request_features_frame``
(the function training and serving use), missing stored features take the model record's
defaults exactly as ``services.inference.scoring.model_vector`` does, and decisions come from the
record's thresholds. So a batch score equals the online score for the same transaction and
feature values.
"""

from __future__ import annotations

import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from pipelines.dataset import TRANSACTION_FIELDS, point_in_time_features
from services.common.settings import Settings
from services.features import names as n
from services.features.request import missing_stored, request_features_frame
from services.models.artifacts import Scorer, load_model
from services.registry import ModelRegistry, ModelVersion, RegistryError

log = logging.getLogger(__name__)

MODEL_NAME: Final = "fraud"
REQUIRED_COLUMNS: Final = tuple(c for c in TRANSACTION_FIELDS if c != "device_id")
OUTPUT_COLUMNS: Final = ["transaction_id", "fraud_probability", "decision", "model_version", "features_missing"]


class BatchInputError(ValueError):
    """The input table, the output location or the model cannot be used; the message says why."""


@dataclass(frozen=True)
class BatchResult:
    rows: int
    model_version: str
    decisions: dict[str, int]
    rows_with_missing_features: int
    output: str

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "model_version": self.model_version,
            "decisions": self.decisions,
            "rows_with_missing_features": self.rows_with_missing_features,
            "output": self.output,
        }


def _storage_options(path: str, s3_endpoint: str) -> dict[str, Any] | None:
    return {"client_kwargs": {"endpoint_url": s3_endpoint}} if path.startswith("s3://") and s3_endpoint else None


def read_transactions(path: str, s3_endpoint: str = "") -> pd.DataFrame:
    """The transactions to score, checked: required columns, unique ids, positive amounts, parseable times."""
    if "://" not in path and not Path(path).is_file():
        raise BatchInputError(f"--input {path}: no such file")
    try:
        frame = pd.read_parquet(path, storage_options=_storage_options(path, s3_endpoint))
    except Exception as exc:
        raise BatchInputError(f"--input {path}: not a readable Parquet file ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise BatchInputError(f"--input {path}: missing columns {missing}; a Transaction needs {list(REQUIRED_COLUMNS)}")
    if "device_id" not in frame.columns:
        frame["device_id"] = None
    if frame["transaction_id"].isna().any():
        raise BatchInputError(f"--input {path}: transaction_id is null in {int(frame['transaction_id'].isna().sum())} rows")
    duplicated = frame["transaction_id"][frame["transaction_id"].duplicated()]
    if len(duplicated):
        raise BatchInputError(f"--input {path}: transaction_id {duplicated.iloc[0]!r} appears more than once")
    amounts = pd.to_numeric(frame["amount"], errors="coerce")
    bad = frame["transaction_id"][~(amounts > 0)]
    if len(bad):
        raise BatchInputError(f"--input {path}: amount must be a positive number (transaction {bad.iloc[0]!r})")
    try:
        timestamps = pd.to_datetime(frame["timestamp"], utc=True)
    except (ValueError, TypeError) as exc:
        raise BatchInputError(f"--input {path}: timestamp is not a time ({exc})") from None
    if timestamps.isna().any():
        raise BatchInputError(f"--input {path}: timestamp is null in {int(timestamps.isna().sum())} rows")
    out = frame[list(TRANSACTION_FIELDS)].copy()
    out["amount"] = amounts.astype(float)
    out["timestamp"] = timestamps
    return out.reset_index(drop=True)


def resolve_model(registry: ModelRegistry, version: str = "", name: str = MODEL_NAME) -> ModelVersion:
    """``version`` of ``name``, or its champion when empty."""
    if not version:
        champion = registry.champion(name)
        if champion is None:
            raise BatchInputError(f"model {name!r} has no champion; train one or pass --model VERSION")
        return champion
    try:
        return registry.get(name, version)
    except RegistryError as exc:
        raise BatchInputError(f"--model {version}: {exc}") from None


def model_matrix(record: ModelVersion, vectors: pd.DataFrame, missing: list[list[str]]) -> np.ndarray:
    """The model's columns in its order; a stored feature the offline store lacked takes the record's default."""
    columns = {}
    for name in record.features:
        if name in vectors.columns:
            column = vectors[name].to_numpy(dtype=np.float64, copy=True)
            if name in record.feature_defaults:
                defaulted = np.array([name in row for row in missing], dtype=bool)
                column[defaulted] = record.feature_defaults[name]
        else:
            column = np.full(len(vectors), record.feature_defaults.get(name, 0.0))
            for row in missing:
                row.append(name)
        columns[name] = column
    return np.column_stack([columns[name] for name in record.features]).astype(np.float32) if len(vectors) else (
        np.zeros((0, len(record.features)), dtype=np.float32)
    )


def score_frame(settings: Settings, transactions: pd.DataFrame, record: ModelVersion, scorer: Scorer) -> pd.DataFrame:
    """One row per transaction: transaction_id, fraud_probability, decision, model_version, features_missing."""
    if transactions.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS}).astype({"fraud_probability": float})
    stored = point_in_time_features(settings, transactions)
    vectors = request_features_frame(transactions, stored)
    missing = [missing_stored(row) for row in stored[list(n.STORED_FEATURES)].to_dict("records")]
    matrix = model_matrix(record, vectors, missing)
    probabilities = np.asarray(scorer.predict_proba(matrix), dtype=np.float64).reshape(-1)
    return pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"].to_numpy(),
            "fraud_probability": probabilities,
            "decision": [record.thresholds.decide(float(p)) for p in probabilities],
            "model_version": record.version,
            "features_missing": missing,
        }
    )


def write_scores(scores: pd.DataFrame, path: str, s3_endpoint: str = "") -> None:
    if "://" not in path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        scores.to_parquet(partial, index=False)
        partial.replace(target)  # a reader never sees half a file
        return
    buffer = io.BytesIO()
    scores.to_parquet(buffer, index=False)
    import fsspec

    with fsspec.open(path, "wb", **(_storage_options(path, s3_endpoint) or {})) as out:
        out.write(buffer.getvalue())


def score_file(settings: Settings, input_path: str, output_path: str, model_version: str = "") -> BatchResult:
    """Read ``input_path``, score every transaction, write ``output_path``; returns a summary."""
    transactions = read_transactions(input_path, settings.s3_endpoint)
    registry = ModelRegistry(settings.registry_uri, settings.s3_endpoint)
    record = resolve_model(registry, model_version)
    with tempfile.TemporaryDirectory(prefix="rtml-batch-") as cache:
        scorer = load_model(registry, record, Path(cache))
        scores = score_frame(settings, transactions, record, scorer)
    write_scores(scores, output_path, settings.s3_endpoint)
    decisions = {d: int(c) for d, c in scores["decision"].value_counts().sort_index().items()}
    result = BatchResult(
        rows=len(scores),
        model_version=record.version,
        decisions=decisions,
        rows_with_missing_features=int(sum(1 for m in scores["features_missing"] if len(m))),
        output=output_path,
    )
    log.info("batch scored", extra=result.summary())
    return result
