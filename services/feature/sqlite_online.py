"""Feast's SQLite online store, writing a batch in a few multi-row statements instead of one
``execute`` per key and feature.

Feast's loop runs one statement per value: ~2,100 for a user batch of 160 rows, each one a trip
through the sqlite3 module that drops and retakes the GIL, while the service's other stages
compete for it. In the feature service at 1,000 events/s that loop was 40 % of the batch time
(docs/benchmarks.md, Feature ingestion). Table, columns, conflict rule and stored values are
Feast's own, so Feast's reads, ``store.apply`` and teardown work unchanged; the options that
change the columns (vector search, the OpenAI-compatible ``value_num`` column) take Feast's path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from feast import FeatureView, RepoConfig
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig, _quote_id, _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.utils import to_naive_utc

OnlineRows = Sequence[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]]
StoredRow = tuple[bytes, str, bytes, str | None, int, int | None]

_COLUMNS = ("entity_key", "feature_name", "value", "value_text", "event_ts", "created_ts")
# Rows per statement: 6 variables each stays far under SQLite's variable limit (32,766 since 3.32).
ROWS_PER_STATEMENT = 1_000


_TYPE = "services.feature.sqlite_online.BatchedSqliteOnlineStore"


class BatchedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """``online_store.type: services.feature.sqlite_online.BatchedSqliteOnlineStore``; the other
    options are Feast's SQLite ones (``path``)."""

    # A narrower Literal than the base's: Feast picks the store class from this value.
    type: Literal["services.feature.sqlite_online.BatchedSqliteOnlineStore"] = _TYPE  # type: ignore[assignment]


def _epoch_s(moment: datetime) -> int:
    # What Feast's registered sqlite3 datetime adapter stores (adapt_datetime_epoch after
    # to_naive_utc), computed once per row instead of once per value.
    return int(to_naive_utc(moment).timestamp())


def stored_rows(data: OnlineRows, key_version: int) -> list[StoredRow]:
    """One row per (entity, feature), as Feast's SQLite store lays them out."""
    out: list[StoredRow] = []
    for entity_key, values, event_ts, created_ts in data:
        key = serialize_entity_key(entity_key, entity_key_serialization_version=key_version)
        event_s = _epoch_s(event_ts)
        created_s = _epoch_s(created_ts) if created_ts is not None else None
        for feature_name, value in values.items():
            text, _ = extract_text_and_num(value, False)
            out.append((key, feature_name, value.SerializeToString(), text, event_s, created_s))
    return out


def upsert_sql(table_name: str, rows: int) -> str:
    placeholders = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])
    # Only the quoted table id and fixed column names go into the text; values are bound.
    return (
        f"INSERT INTO {_quote_id(table_name)} ({', '.join(_COLUMNS)}) VALUES {placeholders} "  # noqa: S608
        f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET {updates}"
    )


# SQLite's page cache per connection, in KiB (a negative cache_size): the default 2 MiB holds
# less than a user table of a few thousand keys (13 rows per key), so upserts and reads went to
# the OS for pages; 64 MiB is a bound, not an allocation.
CACHE_KIB = 65_536


class BatchedSqliteOnlineStore(SqliteOnlineStore):
    def _get_conn(self, config: RepoConfig) -> Any:
        fresh = not self._conn
        conn = super()._get_conn(config)
        if fresh:
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        return conn

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: OnlineRows,  # type: ignore[override]
        progress: Callable[[int], Any] | None,
    ) -> None:
        online = config.online_store
        if online.vector_enabled or getattr(online, "enable_openai_compatible_store", False):
            super().online_write_batch(config, table, list(data), progress)
            return
        rows = stored_rows(data, config.entity_key_serialization_version)
        table_name = _table_id(config.project, table, config.registry.enable_online_feature_view_versioning)
        conn = self._get_conn(config)
        with conn:  # one transaction, as Feast's loop
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[start : start + ROWS_PER_STATEMENT]
                conn.execute(upsert_sql(table_name, len(chunk)), [v for row in chunk for v in row])
        if progress:
            progress(len(data))
