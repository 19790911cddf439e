"""Writing feature rows to Feast: every row offline, each key's latest row online."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode

from services.feature.offline import OfflineTable
from services.features import names as n
from services.features.aggregate import LabelFact, Row
from services.features.definitions import LABEL_VIEW

log = logging.getLogger(__name__)

Revisions = Callable[[str, str], int]  # (view, key) -> revisions of that key


class EmptyWriteError(ValueError):
    """A frame Feast would silently drop (no rows, or a feature that is null everywhere)."""


def rows_frame(view: str, rows: Sequence[Row], created: datetime) -> pd.DataFrame:
    """Rows as the push source's frame; raises EmptyWriteError instead of a silent no-op."""
    key = n.VIEW_JOIN_KEY[view]
    columns = [key, *n.VIEW_FEATURES[view], n.EVENT_TIMESTAMP]
    frame = pd.DataFrame.from_records(list(rows), columns=columns)
    if frame.empty:
        raise EmptyWriteError(f"no rows to write to {view}")
    null_features = [c for c in n.VIEW_FEATURES[view] if frame[c].isna().all()]
    if null_features:
        raise EmptyWriteError(f"{view}: features {null_features} are null in every row")
    frame[n.EVENT_TIMESTAMP] = pd.to_datetime(frame[n.EVENT_TIMESTAMP], unit="us", utc=True)
    frame[n.CREATED_TIMESTAMP] = pd.Timestamp(created)
    return frame


def latest_online_frame(view: str, frame: pd.DataFrame, revisions: Revisions) -> pd.DataFrame:
    """Each key's newest row, stamped event time + revisions µs so a revised row outranks its old
    version in stores that keep only newer timestamps (Redis)."""
    key = n.VIEW_JOIN_KEY[view]
    latest = frame.sort_values([key, n.EVENT_TIMESTAMP]).drop_duplicates(key, keep="last").copy()
    bump = [revisions(view, k) for k in latest[key]]
    latest[n.EVENT_TIMESTAMP] = latest[n.EVENT_TIMESTAMP] + pd.to_timedelta(bump, unit="us")
    return latest


class FeatureWriter:
    """Pushes micro-batches; a raised exception means nothing may be committed."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.tables: dict[str, OfflineTable] = {}

    def offline(self, view: str) -> OfflineTable:
        if view not in self.tables:
            self.tables[view] = OfflineTable.of(self.store.get_feature_view(view))
        return self.tables[view]

    def write(self, rows_by_view: dict[str, list[Row]], labels: Sequence[LabelFact], revisions: Revisions) -> int:
        created = datetime.now(UTC)
        written = 0
        for view, rows in rows_by_view.items():
            if not rows:
                continue
            frame = rows_frame(view, rows, created)
            self.offline(view).append(frame)
            self.store.push(n.VIEW_PUSH_SOURCE[view], latest_online_frame(view, frame, revisions), to=PushMode.ONLINE)
            written += len(frame)
        if labels:
            self.offline(LABEL_VIEW).append(labels_frame(labels, created))
        return written


def labels_frame(labels: Sequence[LabelFact], created: datetime) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "transaction_id": [f.transaction_id for f in labels],
            "is_fraud": [f.is_fraud for f in labels],
            n.EVENT_TIMESTAMP: pd.to_datetime([f.ts_us for f in labels], unit="us", utc=True),
        }
    )
    frame[n.CREATED_TIMESTAMP] = pd.Timestamp(created)
    if frame.empty:
        raise EmptyWriteError(f"no rows to write to {LABEL_VIEW}")
    return frame
