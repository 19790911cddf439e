"""The "logged events" data source: rtml.transactions and rtml.labels as Parquet, as logged up to
the moment the run starts (raw events are archived nowhere else)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from kafka import TopicPartition

from services.common.events import Event, EventError, Label, Topics, Transaction, decode
from services.common.kafka import make_reader
from services.common.settings import Settings
from services.registry.registry import filesystem
from services.simulator.frames import LABEL_COLUMNS, LABELS_FILE, TRANSACTIONS_FILE

log = logging.getLogger(__name__)

TRANSACTION_FIELDS = list(Transaction.model_fields)  # the simulator's ground-truth columns never travel on the topic
READ_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class TopicSnapshot:
    transactions_path: str
    labels_path: str
    transactions: int
    labels: int
    skipped: int
    newest_event: datetime | None

    def summary(self) -> dict[str, Any]:
        return {
            "transactions_path": self.transactions_path,
            "labels_path": self.labels_path,
            "transactions": self.transactions,
            "labels": self.labels,
            "skipped_invalid": self.skipped,
            "newest_event": self.newest_event.isoformat() if self.newest_event else None,
        }


def read_topic(settings: Settings, topic: str, model: type[Event]) -> tuple[list[dict[str, Any]], int]:
    """Every valid event logged before this call, from the beginning; returns (rows, skipped)."""
    consumer = make_reader(settings, "training-snapshot", max_poll_records=5000)
    rows: list[dict[str, Any]] = []
    skipped = 0
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return rows, skipped
        consumer.assign(assigned)
        cutoff_ms = int(time.time() * 1000)
        ends = consumer.end_offsets(assigned)
        consumer.seek_to_beginning(*assigned)
        # Tansu reports the high watermark at the last batch's base offset, so the end offsets alone
        # would miss each partition's final batch: past them, read on until a poll comes back empty
        # or a record logged after the run started shows up.
        open_parts = set(assigned)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while open_parts:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic} took longer than {READ_TIMEOUT_S:.0f} s")
            polled = consumer.poll(timeout_ms=1000)
            if not polled and all(consumer.position(tp) >= ends[tp] for tp in open_parts):
                break
            for tp, records in polled.items():
                for record in records:
                    if tp not in open_parts:
                        break
                    if record.offset >= ends[tp] and record.timestamp > cutoff_ms:
                        open_parts.discard(tp)  # logged after the run started: not part of this snapshot
                        consumer.pause(tp)
                        break
                    try:
                        rows.append(decode(model, record.value).model_dump())
                    except EventError:
                        skipped += 1  # the feature service dead-letters these
    finally:
        consumer.close(autocommit=False)
    return rows, skipped


def transactions_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=TRANSACTION_FIELDS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["amount"] = frame["amount"].astype("float64")
    frame["schema_version"] = frame["schema_version"].astype("int64")
    # At-least-once producers may repeat an event; its first copy is the one the features saw.
    return frame.drop_duplicates("transaction_id", keep="first").reset_index(drop=True)


def labels_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=LABEL_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["is_fraud"] = frame["is_fraud"].astype(bool)
    return frame.drop_duplicates("transaction_id", keep="first").reset_index(drop=True)


def _write(frame: pd.DataFrame, uri: str, s3_endpoint: str) -> None:
    fs, path = filesystem(uri, s3_endpoint)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    partial = path + ".partial"
    with fs.open(partial, "wb") as out:
        frame.to_parquet(out, index=False)
    fs.mv(partial, path)


def snapshot_topics(settings: Settings, target_uri: str) -> TopicSnapshot:
    """Write ``transactions.parquet`` and ``labels.parquet`` under ``target_uri`` (file:// or s3://)."""
    txn_rows, txn_skipped = read_topic(settings, Topics.TRANSACTIONS, Transaction)
    label_rows, label_skipped = read_topic(settings, Topics.LABELS, Label)
    transactions, labels = transactions_frame(txn_rows), labels_frame(label_rows)
    base = target_uri.rstrip("/")
    txn_uri, label_uri = f"{base}/{TRANSACTIONS_FILE}", f"{base}/{LABELS_FILE}"
    _write(transactions, txn_uri, settings.s3_endpoint)
    _write(labels, label_uri, settings.s3_endpoint)
    newest = transactions["timestamp"].max() if len(transactions) else None
    snap = TopicSnapshot(
        transactions_path=_as_pipeline_path(txn_uri),
        labels_path=_as_pipeline_path(label_uri),
        transactions=len(transactions),
        labels=len(labels),
        skipped=txn_skipped + label_skipped,
        newest_event=newest.to_pydatetime() if newest is not None else None,
    )
    log.info("topics snapshotted", extra=snap.summary())
    return snap


def _as_pipeline_path(uri: str) -> str:
    """The pipeline reads plain paths locally and s3:// URIs in the cluster."""
    return uri.removeprefix("file://")


def window_start(snap: TopicSnapshot, hours: float) -> str:
    """ISO start of the newest ``hours`` of event time; empty = the whole log."""
    if hours <= 0 or snap.newest_event is None:
        return ""
    return (snap.newest_event - timedelta(hours=hours)).isoformat()
