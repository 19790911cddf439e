"""Registry behaviour on a real filesystem and on a real S3 API (moto's server stands in for MinIO)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from services.common.broker import free_port
from services.registry import ModelRegistry, ModelStage, ModelVersion, RegistryError, Thresholds


def _record(name: str = "fraud") -> ModelVersion:
    return ModelVersion(
        name=name,
        version="pending",
        kind="sklearn",
        created_at=datetime.now(UTC),
        features=["a", "b"],
        thresholds=Thresholds(review=0.3, decline=0.8),
        metrics={"pr_auc": 0.5},
    )


def _artifact(tmp_path: Path, payload: bytes) -> Path:
    art = tmp_path / f"art-{payload.hex()}"
    (art / "sub").mkdir(parents=True)
    (art / "model.bin").write_bytes(payload)
    (art / "sub" / "extra.txt").write_text("x")
    return art


def _exercise(registry: ModelRegistry, tmp_path: Path) -> None:
    v1 = registry.register(_record(), _artifact(tmp_path, b"one"))
    v2 = registry.register(_record(), _artifact(tmp_path, b"two"))
    assert (v1.version, v2.version) == ("v0001", "v0002")
    assert registry.champion("fraud") is None
    registry.promote("fraud", v1.version)
    registry.promote("fraud", v2.version)
    assert registry.champion("fraud").version == "v0002"  # type: ignore[union-attr]
    assert registry.get("fraud", "v0001").stage == ModelStage.ARCHIVED
    back = registry.rollback("fraud")
    assert back.version == "v0001" and registry.get("fraud", "v0002").stage == ModelStage.ARCHIVED
    local = registry.download(registry.get("fraud", "v0002"), tmp_path / "dl")
    assert (local / "model.bin").read_bytes() == b"two"
    assert (local / "sub" / "extra.txt").read_text() == "x"
    assert [v.version for v in registry.versions("fraud")] == ["v0001", "v0002"]
    assert registry.names() == ["fraud"]
    with pytest.raises(RegistryError, match="no version"):
        registry.get("fraud", "v0099")
    with pytest.raises(RegistryError, match="already the champion"):
        registry.promote("fraud", "v0001")


def test_file_registry(tmp_path: Path) -> None:
    _exercise(ModelRegistry((tmp_path / "reg").as_uri()), tmp_path)


@pytest.fixture()
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rtml")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rtml-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
    yield endpoint
    server.stop()


def test_s3_registry(tmp_path: Path, s3_endpoint: str) -> None:
    _exercise(ModelRegistry("s3://models/registry", s3_endpoint), tmp_path)


def test_thresholds_decide_and_validate() -> None:
    t = Thresholds(review=0.3, decline=0.8)
    assert [t.decide(p) for p in (0.1, 0.3, 0.79, 0.8, 1.0)] == ["approve", "review", "review", "decline", "decline"]
    with pytest.raises(ValueError, match="above decline"):
        Thresholds(review=0.9, decline=0.5)
