"""The simulated stream as tables, for offline work (training backfills, analysis) and Parquet files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from services.common.events import Label, Transaction
from services.simulator.config import SimEvent, SimulatorConfig
from services.simulator.stream import generate

TRANSACTION_COLUMNS = [*Transaction.model_fields, "is_fraud", "pattern"]
LABEL_COLUMNS = ["transaction_id", "is_fraud", "timestamp"]
TRANSACTIONS_FILE = "transactions.parquet"
LABELS_FILE = "labels.parquet"


def to_frames(events: Iterable[SimEvent]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions, labels): every Transaction field plus ground truth; labels at their arrival time."""
    txn_rows: list[dict[str, object]] = []
    label_rows: list[dict[str, object]] = []
    for sim in events:
        event = sim.event
        if isinstance(event, Transaction):
            txn_rows.append({**event.model_dump(), "is_fraud": sim.is_fraud, "pattern": sim.pattern})
        elif isinstance(event, Label):
            label_rows.append(
                {"transaction_id": event.transaction_id, "is_fraud": event.is_fraud, "timestamp": event.timestamp}
            )
    transactions = pd.DataFrame(txn_rows, columns=TRANSACTION_COLUMNS)
    labels = pd.DataFrame(label_rows, columns=LABEL_COLUMNS)
    for frame in (transactions, labels):
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        frame["is_fraud"] = frame["is_fraud"].astype(bool)
    transactions["amount"] = transactions["amount"].astype("float64")
    transactions["schema_version"] = transactions["schema_version"].astype("int64")
    return transactions, labels


def write_parquet(config: SimulatorConfig, directory: Path) -> tuple[Path, Path]:
    """Write the run's stream as ``transactions.parquet`` and ``labels.parquet`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    transactions, labels = to_frames(generate(config))
    paths = directory / TRANSACTIONS_FILE, directory / LABELS_FILE
    for frame, path in zip((transactions, labels), paths, strict=True):
        # Write beside the target and rename, so a reader never sees half a file.
        partial = path.with_suffix(".parquet.partial")
        frame.to_parquet(partial, index=False)
        partial.replace(path)
    return paths
