"""The training dataset: labelled transactions joined point-in-time with Feast features, split by time.

The snapshot (raw transaction fields, label, stored features, split) is content-hashed and kept
under ``<registry parent>/datasets/<hash>/``, so a run can be rebuilt from exactly the same data
(``dataset_version``) and every model records which snapshot it learned from.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass

import fsspec
import pandas as pd

from pipelines.point_in_time import join_point_in_time
from pipelines.validation import LABEL, SPLIT, check_source
from services.common.settings import Settings
from services.feature.store import apply_repo, open_store
from services.feature.writer import FeatureWriter
from services.features import backfill
from services.features import names as n

log = logging.getLogger(__name__)

TRANSACTION_FIELDS = ["transaction_id", "user_id", "merchant_id", "amount", "currency", "country", "channel", "device_id", "timestamp"]
SNAPSHOT_FILE = "dataset.parquet"
TRAIN_SHARE, VALIDATION_SHARE = 0.7, 0.15


@dataclass(frozen=True)
class Snapshot:
    frame: pd.DataFrame
    dataset_hash: str
    uri: str


def datasets_uri(registry_uri: str) -> str:
    """Snapshots live beside the model registry, on the same storage."""
    return registry_uri.rstrip("/").rsplit("/", 1)[0] + "/datasets"


def _utc(text: str) -> pd.Timestamp:
    moment = pd.Timestamp(text)
    return moment.tz_convert("UTC") if moment.tzinfo else moment.tz_localize("UTC")


def _in_window(timestamps: pd.Series, start: str, end: str) -> pd.Series:
    keep = pd.Series(True, index=timestamps.index)
    if start:
        keep &= timestamps >= _utc(start)
    if end:
        keep &= timestamps < _utc(end)
    return keep


def labelled_transactions(transactions: pd.DataFrame, labels: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """Transactions in [start, end) that have received a label; the label's own time is kept."""
    check_source(transactions, labels)
    txns = transactions.copy()
    txns["timestamp"] = pd.to_datetime(txns["timestamp"], utc=True)
    if "device_id" not in txns.columns:
        txns["device_id"] = None
    txns = txns[_in_window(txns["timestamp"], start, end)].drop_duplicates("transaction_id", keep="first")
    first_labels = labels.drop_duplicates("transaction_id", keep="first")[["transaction_id", LABEL, "timestamp"]]
    first_labels = first_labels.rename(columns={"timestamp": "label_timestamp"})
    joined = txns[TRANSACTION_FIELDS].merge(first_labels, on="transaction_id", how="inner")
    joined[LABEL] = joined[LABEL].astype(bool)
    return joined.sort_values(["timestamp", "transaction_id"], kind="stable").reset_index(drop=True)


def point_in_time_features(settings: Settings, labelled: pd.DataFrame) -> pd.DataFrame:
    """The stored features each transaction's scorer would have seen: Feast rows stamped strictly before it."""
    columns = [*labelled.columns, *n.STORED_FEATURES]
    if labelled.empty:
        return pd.DataFrame(columns=columns)
    store = open_store(settings)
    # A stored row stamped at t includes the event at t; the model must see the state before it.
    lookup = labelled["timestamp"] - n.POINT_IN_TIME_OFFSET
    joined = join_point_in_time(store, labelled, lookup, settings.s3_endpoint)
    return joined[columns]


def backfill_features(settings: Settings, transactions: pd.DataFrame, labels: pd.DataFrame) -> dict[str, int]:
    """Write the recorded stream's stored rows to the offline store (same functions as the feature service)."""
    apply_repo(settings)
    store = open_store(settings)
    rows = backfill.compute(transactions, labels)
    created = pd.Timestamp.now(tz="UTC")
    written: dict[str, int] = {}
    writer = FeatureWriter(store)
    for view, frame in rows.rows.items():
        if frame.empty:
            continue
        # The streaming writer's own offline path (a Parquet part per write, the view's schema):
        # Feast's write_to_offline_store cannot map the list-typed user features.
        writer.offline(view).append(frame.assign(**{n.CREATED_TIMESTAMP: created}))
        written[view] = len(frame)
    return written


def assign_splits(frame: pd.DataFrame) -> pd.DataFrame:
    """Oldest 70 % train, next 15 % validation, newest 15 % test: the model is judged on the future."""
    total = len(frame)
    train_end, val_end = int(total * TRAIN_SHARE), int(total * (TRAIN_SHARE + VALIDATION_SHARE))
    split = ["train"] * train_end + ["validation"] * (val_end - train_end) + ["test"] * (total - val_end)
    return frame.assign(**{SPLIT: pd.Series(split, index=frame.index, dtype=object)})


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _fs(uri: str, s3_endpoint: str) -> tuple[fsspec.AbstractFileSystem, str]:
    options = {"client_kwargs": {"endpoint_url": s3_endpoint}} if uri.startswith("s3://") and s3_endpoint else {}
    fs, root = fsspec.core.url_to_fs(uri, **options)
    return fs, root.rstrip("/")


def save_snapshot(frame: pd.DataFrame, registry_uri: str, s3_endpoint: str) -> Snapshot:
    data = _parquet_bytes(frame)
    digest = hashlib.sha256(data).hexdigest()[:16]
    base = datasets_uri(registry_uri)
    fs, root = _fs(base, s3_endpoint)
    path = f"{root}/{digest}/{SNAPSHOT_FILE}"
    if not fs.exists(path):
        fs.makedirs(f"{root}/{digest}", exist_ok=True)
        with fs.open(path, "wb") as out:
            out.write(data)
    return Snapshot(frame, digest, f"{base}/{digest}/{SNAPSHOT_FILE}")


def load_snapshot(dataset_hash: str, registry_uri: str, s3_endpoint: str) -> Snapshot:
    base = datasets_uri(registry_uri)
    fs, root = _fs(base, s3_endpoint)
    path = f"{root}/{dataset_hash}/{SNAPSHOT_FILE}"
    if not fs.exists(path):
        raise FileNotFoundError(f"dataset version {dataset_hash!r} not found at {base}/{dataset_hash}")
    with fs.open(path, "rb") as src:
        frame = pd.read_parquet(io.BytesIO(src.read()))
    return Snapshot(frame, dataset_hash, f"{base}/{dataset_hash}/{SNAPSHOT_FILE}")


def build_snapshot(
    settings: Settings,
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    window_start: str = "",
    window_end: str = "",
    backfill_first: bool = True,
) -> Snapshot:
    labelled = labelled_transactions(transactions, labels, window_start, window_end)
    if backfill_first and not labelled.empty:
        written = backfill_features(settings, transactions, labels)
        log.info("offline store backfilled", extra={"rows": written})
    frame = assign_splits(point_in_time_features(settings, labelled))
    return save_snapshot(frame, settings.registry_uri, settings.s3_endpoint)
