"""The offline half of a micro-batch write: rows to an Arrow part of the view's schema."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from services.common.settings import load_settings
from services.feature.store import apply_repo, open_store
from services.feature.writer import EmptyWriteError, FeatureWriter, rows_table
from services.features import names as n
from services.features.aggregate import Row

CREATED = datetime(2026, 12, 3, 12, 0, 0, 654321, tzinfo=UTC)


def _row(i: int) -> Row:
    row: Row = {n.MERCHANT_JOIN_KEY: f"m-{i}", n.EVENT_TIMESTAMP: 1_780_000_000_000_000 + i}
    row[n.MERCHANT_TXN_COUNT_24H] = i + 1
    row[n.MERCHANT_AMOUNT_MEAN_24H] = math.nan if i == 1 else 10.5 * i
    return row


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> FeatureWriter:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("writer") / "data")
    apply_repo(settings)
    return FeatureWriter(open_store(settings))


def test_part_holds_the_rows(writer: FeatureWriter) -> None:
    table = writer.offline(n.MERCHANT_VIEW)
    part = table.write(rows_table(n.MERCHANT_VIEW, [_row(i) for i in range(3)], CREATED, table.schema))
    read = pq.read_table(part).to_pylist()
    assert [r[n.MERCHANT_JOIN_KEY] for r in read] == ["m-0", "m-1", "m-2"]
    assert [r[n.MERCHANT_TXN_COUNT_24H] for r in read] == [1, 2, 3]
    assert [r[n.MERCHANT_AMOUNT_MEAN_24H] for r in read] == [0.0, None, 21.0]  # NaN is stored as null
    assert read[2][n.EVENT_TIMESTAMP] == datetime(2026, 5, 28, 20, 26, 40, 2, tzinfo=UTC)
    assert {r[n.CREATED_TIMESTAMP] for r in read} == {CREATED}
    assert pq.read_schema(part) == table.schema


def test_no_rows_is_refused(writer: FeatureWriter) -> None:
    with pytest.raises(EmptyWriteError, match="no rows"):
        rows_table(n.MERCHANT_VIEW, [], CREATED, writer.offline(n.MERCHANT_VIEW).schema)


def test_a_feature_null_in_every_row_is_refused(writer: FeatureWriter) -> None:
    rows = [{**_row(i), n.MERCHANT_AMOUNT_MEAN_24H: None if i else math.nan} for i in range(2)]
    with pytest.raises(EmptyWriteError, match=n.MERCHANT_AMOUNT_MEAN_24H):
        rows_table(n.MERCHANT_VIEW, rows, CREATED, writer.offline(n.MERCHANT_VIEW).schema)
