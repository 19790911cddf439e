"""The batched SQLite online store stores exactly what Feast's own SQLite store stores."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feast import FeatureStore
from feast.infra.online_stores.sqlite import SqliteOnlineStore, _table_id

from services.common.settings import load_settings
from services.feature import sqlite_online
from services.feature.sqlite_online import BatchedSqliteOnlineStore
from services.feature.store import apply_repo, open_store
from services.feature.writer import OnlineRow, newest_per_key, online_rows, proto_converters
from services.features import names as n
from services.features.aggregate import Row


def _store(tmp: Path) -> FeatureStore:
    settings = load_settings(data_dir=tmp / "data")
    apply_repo(settings)
    return open_store(settings)


def _user_rows(count: int, offset_us: int) -> list[Row]:
    rows = []
    for i in range(count):
        row: Row = {n.USER_JOIN_KEY: f"u-{i % 700}", n.EVENT_TIMESTAMP: 1_780_000_000_000_000 + offset_us + i}
        for k, feature in enumerate(n.VIEW_FEATURES[n.USER_VIEW]):
            if feature in (n.USER_COUNTRIES_30D, n.USER_DEVICES_30D):
                row[feature] = ["DE", f"x{i}"]
            elif feature == n.USER_AMOUNT_STD_24H and i % 3 == 0:
                row[feature] = None  # a null value is stored as the empty proto
            else:
                row[feature] = i + k + 0.25 if "amount" in feature else i + k
        rows.append(row)
    return rows


def _online(store: FeatureStore, rows: list[Row]) -> list[OnlineRow]:
    fv = store.get_feature_view(n.USER_VIEW)
    created = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)
    newest = newest_per_key(rows, n.USER_JOIN_KEY)
    return online_rows(n.USER_VIEW, newest, proto_converters(fv), lambda view, key: 0, created)


def _table(store: FeatureStore) -> list[tuple[object, ...]]:
    fv = store.get_feature_view(n.USER_VIEW)
    path = store.config.online_store.path
    with sqlite3.connect(path) as conn:
        name = _table_id(store.config.project, fv, False)
        return conn.execute(f'SELECT * FROM "{name}" ORDER BY entity_key, feature_name').fetchall()


def test_local_store_config_uses_the_batched_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert isinstance(store.provider.online_store, BatchedSqliteOnlineStore)  # type: ignore[attr-defined]


@pytest.mark.parametrize("rows_per_statement", [1_000, 7])
def test_same_table_as_feasts_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows_per_statement: int
) -> None:
    """Two batches (the second overwrites most keys) through each store: byte-identical tables,
    whether a batch fits one statement or spans many."""
    monkeypatch.setattr(sqlite_online, "ROWS_PER_STATEMENT", rows_per_statement)
    ours, feasts = _store(tmp_path / "ours"), _store(tmp_path / "feast")
    fv = ours.get_feature_view(n.USER_VIEW)
    for offset_us in (0, 3_600_000_000):
        batch = _user_rows(900, offset_us)
        BatchedSqliteOnlineStore().online_write_batch(ours.config, fv, _online(ours, batch), None)
        SqliteOnlineStore().online_write_batch(feasts.config, fv, _online(feasts, batch), None)
    ours_table, feasts_table = _table(ours), _table(feasts)
    assert len(ours_table) == 700 * len(n.VIEW_FEATURES[n.USER_VIEW])
    assert ours_table == feasts_table


def test_feast_reads_what_it_wrote(tmp_path: Path) -> None:
    store = _store(tmp_path)
    fv = store.get_feature_view(n.USER_VIEW)
    rows = _user_rows(5, 0)
    store.provider.online_write_batch(store.config, fv, _online(store, rows), None)  # type: ignore[attr-defined]
    refs = [f"{n.USER_VIEW}:{n.USER_TXN_COUNT_24H}", f"{n.USER_VIEW}:{n.USER_AMOUNT_STD_24H}",
            f"{n.USER_VIEW}:{n.USER_COUNTRIES_30D}"]
    got = store.get_online_features(refs, [{n.USER_JOIN_KEY: "u-3"}, {n.USER_JOIN_KEY: "u-4"}]).to_dict()
    assert got[n.USER_TXN_COUNT_24H] == [rows[3][n.USER_TXN_COUNT_24H], rows[4][n.USER_TXN_COUNT_24H]]
    assert got[n.USER_AMOUNT_STD_24H] == [None, rows[4][n.USER_AMOUNT_STD_24H]]
    assert got[n.USER_COUNTRIES_30D] == [["DE", "x3"], ["DE", "x4"]]
    assert store.get_online_features(refs, [{n.USER_JOIN_KEY: "nobody"}]).to_dict()[n.USER_TXN_COUNT_24H] == [None]


def test_event_and_created_times_as_feast_stores_them(tmp_path: Path) -> None:
    """Feast's sqlite3 adapter stores naive-UTC epoch seconds; ours computes the same integers."""
    store = _store(tmp_path)
    fv = store.get_feature_view(n.USER_VIEW)
    online = _online(store, _user_rows(1, 0))
    BatchedSqliteOnlineStore().online_write_batch(store.config, fv, online, None)
    _, _, event_ts, created_ts = online[0]
    stored = {(row[-2], row[-1]) for row in _table(store)}
    assert stored == {(int(event_ts.timestamp()), int(created_ts.timestamp()))}  # type: ignore[union-attr]


def test_connection_keeps_a_page_cache_for_the_whole_table(tmp_path: Path) -> None:
    store = _store(tmp_path)
    online = store.provider.online_store  # type: ignore[attr-defined]
    conn = online._get_conn(store.config)
    assert conn.execute("PRAGMA cache_size").fetchone() == (-sqlite_online.CACHE_KIB,)
    assert online._get_conn(store.config) is conn  # one connection, set up once
