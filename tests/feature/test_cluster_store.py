"""The cluster store config (feature_repo/feature_store.cluster.yaml) against the real Redis server
of this machine and a local S3 API (moto): the repo applies with its registry and offline tables
on S3, the feature writer's rows are read back through Feast online, and the offline table on S3
holds them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
import redis
from moto.server import ThreadedMotoServer
from pyarrow import fs

from services.common.broker import free_port
from services.common.settings import Settings, load_settings
from services.feature.store import apply_repo, open_store
from services.feature.writer import FeatureWriter
from services.features import aggregate as agg
from services.features import names as n
from services.features.aggregate import History, TxnFact
from tests.feature.conftest import online_frame

REDIS_DB = 7  # this suite's database on the machine's Redis; flushed before and after
BUCKET = "rtml-feast"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("FEAST_S3_ENDPOINT_URL", endpoint)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def cluster_settings(s3_endpoint: str, redis_db: redis.Redis, tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        feast_store_yaml="feature_store.cluster.yaml",
        redis_url=f"127.0.0.1:6379,db={REDIS_DB}",
        s3_endpoint=s3_endpoint,
        feast_data_uri=f"s3://{BUCKET}/feast",
    )


def user_history() -> History[TxnFact]:
    start = 1_790_000_000 * 1_000_000
    return History.of(
        TxnFact(f"t-{i}", "u-1", f"m-{i % 2}", start + i * 60_000_000, 10.0 + i, "DE", f"d-{i % 2}") for i in range(5)
    )


def test_cluster_config_writes_and_reads_redis_and_s3(cluster_settings: Settings, redis_db: redis.Redis) -> None:
    apply_repo(cluster_settings)
    store = open_store(cluster_settings)
    assert store.config.online_store.type == "redis"
    s3 = boto3.client("s3", endpoint_url=cluster_settings.s3_endpoint)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    # Each view's offline table is a directory of part files, created with one empty part.
    assert "feast/registry.db" in keys, keys
    assert any(k.startswith(f"feast/offline/{n.USER_VIEW}.parquet/part-") for k in keys), keys

    history = user_history()
    rows = agg.user_rows("u-1", history, -(2**62))
    merchant = agg.merchant_rows("m-1", History.of(f for f in history.facts if f.merchant_id == "m-1"), -(2**62))
    FeatureWriter(store).write({n.USER_VIEW: rows, n.MERCHANT_VIEW: merchant, n.MERCHANT_RISK_VIEW: []}, [],
                               lambda view, key: 0)
    assert redis_db.dbsize() >= 2, "the online rows must be in the machine's Redis"

    got = online_frame(cluster_settings, n.USER_VIEW, ["u-1"]).iloc[0]
    latest = rows[-1]
    assert got[n.USER_TXN_COUNT_24H] == latest[n.USER_TXN_COUNT_24H] == 5
    assert got[n.USER_AMOUNT_SUM_24H] == latest[n.USER_AMOUNT_SUM_24H] == 60.0
    assert list(got[n.USER_DEVICES_30D]) == ["d-0", "d-1"]
    assert online_frame(cluster_settings, n.MERCHANT_VIEW, ["m-1"]).iloc[0][n.MERCHANT_TXN_COUNT_24H] == 2

    s3fs_ = fs.S3FileSystem(endpoint_override=cluster_settings.s3_endpoint, region="us-east-1")
    offline = pq.read_table(f"{BUCKET}/feast/offline/{n.USER_VIEW}.parquet", filesystem=s3fs_).to_pandas()
    assert len(offline) == len(rows) == 5
    assert offline[n.USER_TXN_COUNT_24H].tolist() == [1, 2, 3, 4, 5]
    assert isinstance(offline[n.EVENT_TIMESTAMP].iloc[0], pd.Timestamp)
