"""Writing feature rows to Feast: every row offline, each key's latest row online.

Online rows go straight to the store's provider (``Provider.online_write_batch``, the call
Feast's own materialization and push end in) as protos built from the rows, instead of through
``store.push``: push turns the frame into Arrow and converts every value back through Feast's
generic type inference, 2.7x the cost of the whole write for an 800-row user batch
(docs/benchmarks.md, Feature ingestion). The same provider call writes to SQLite and Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
from feast import FeatureStore, FeatureView
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import StringList
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.types import Array, Bool, Float64, Int64, String

from services.feature.offline import OfflineTable
from services.features import names as n
from services.features.aggregate import LabelFact, Row, from_us, is_null, to_us
from services.features.definitions import LABEL_VIEW

log = logging.getLogger(__name__)

Revisions = Callable[[str, str], int]  # (view, key) -> revisions of that key


class EmptyWriteError(ValueError):
    """A frame Feast would silently drop (no rows, or a feature that is null everywhere)."""


def rows_table(view: str, rows: Sequence[Row], created: datetime, schema: pa.Schema) -> pa.Table:
    """Rows as an Arrow table of the view's offline schema, built column by column (a pandas frame
    in between cost 2-3x the whole part write of a 160-row batch); raises EmptyWriteError instead of
    a silent no-op."""
    if not rows:
        raise EmptyWriteError(f"no rows to write to {view}")
    null_features = [f for f in n.VIEW_FEATURES[view] if all(is_null(row[f]) for row in rows)]
    if null_features:
        raise EmptyWriteError(f"{view}: features {null_features} are null in every row")
    created_us = to_us(created)
    columns = [
        [created_us] * len(rows) if name == n.CREATED_TIMESTAMP else [row[name] for row in rows]
        for name in schema.names
    ]
    # from_pandas=True: a NaN (a float feature without a value) is stored as null, as pandas did.
    arrays = [pa.array(c, type=f.type, from_pandas=True) for c, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


OnlineRow = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]
ToProto = Callable[[Any], ValueProto]

# Feast dtype -> proto of a non-null value; a None (or NaN) value is the empty proto, Feast's null.
_TO_PROTO: dict[object, ToProto] = {
    Int64: lambda v: ValueProto(int64_val=int(v)),
    Float64: lambda v: ValueProto(double_val=float(v)),
    Bool: lambda v: ValueProto(bool_val=bool(v)),
    String: lambda v: ValueProto(string_val=str(v)),
    Array(String): lambda v: ValueProto(string_list_val=StringList(val=list(v))),
}


def proto_converters(view: FeatureView) -> dict[str, ToProto]:
    """Per feature of ``view``, its value-to-proto conversion; a dtype without one is refused here,
    at the first write, not turned into a wrong value."""
    converters = {}
    for feature in view.features:
        to_proto = _TO_PROTO.get(feature.dtype)
        if to_proto is None:
            raise TypeError(f"{view.name}.{feature.name}: no online conversion for Feast type {feature.dtype}")
        converters[feature.name] = to_proto
    return converters


def newest_per_key(rows: Iterable[Row], key_name: str) -> dict[str, Row]:
    """Each key's newest row (the last emitted among equal event times): what online reads see."""
    latest: dict[str, Row] = {}
    for row in rows:
        held = latest.get(row[key_name])
        if held is None or row[n.EVENT_TIMESTAMP] >= held[n.EVENT_TIMESTAMP]:
            latest[row[key_name]] = row
    return latest


def online_rows(
    view: str, newest: dict[str, Row], converters: dict[str, ToProto], revisions: Revisions, created: datetime
) -> list[OnlineRow]:
    """Each key's newest row (``newest_per_key``) as the provider's rows, stamped event time +
    revisions µs so a revised row outranks its old version in stores that keep only newer
    timestamps (Redis)."""
    key_name = n.VIEW_JOIN_KEY[view]
    out: list[OnlineRow] = []
    for key, row in newest.items():
        values = {
            name: ValueProto() if is_null(row[name]) else to_proto(row[name]) for name, to_proto in converters.items()
        }
        event_time = from_us(row[n.EVENT_TIMESTAMP] + revisions(view, key))
        entity = EntityKeyProto(join_keys=[key_name], entity_values=[ValueProto(string_val=key)])
        out.append((entity, values, event_time, created))
    return out


class FeatureWriter:
    """Writes micro-batches; a raised exception means nothing may be committed."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.views: dict[str, tuple[FeatureView, dict[str, ToProto]]] = {}
        self.tables: dict[str, OfflineTable] = {}

    def view(self, name: str) -> tuple[FeatureView, dict[str, ToProto]]:
        if name not in self.views:
            fv = self.store.get_feature_view(name)
            self.views[name] = fv, proto_converters(fv)
        return self.views[name]

    def offline(self, view: str) -> OfflineTable:
        if view not in self.tables:
            self.tables[view] = OfflineTable.of(self.view(view)[0])
        return self.tables[view]

    def write(
        self, rows_by_view: dict[str, list[Row]], labels: Sequence[LabelFact], revisions: Revisions
    ) -> dict[str, dict[str, Row]]:
        """Every row offline, each key's newest online; returns those newest rows per view (what
        online reads now see)."""
        created = datetime.now(UTC)
        online_by_view: dict[str, dict[str, Row]] = {}
        for view, rows in rows_by_view.items():
            if not rows:
                continue
            table = self.offline(view)
            table.write(rows_table(view, rows, created, table.schema))  # raises on what a push would drop
            fv, converters = self.view(view)
            newest = online_by_view[view] = newest_per_key(rows, n.VIEW_JOIN_KEY[view])
            online = online_rows(view, newest, converters, revisions, created)
            self.store.provider.online_write_batch(self.store.config, fv, online, progress=None)
        if labels:
            self.offline(LABEL_VIEW).append(labels_frame(labels, created))
        return online_by_view


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
