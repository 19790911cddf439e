"""`rtml models promote|rollback` announce the new champion on rtml.model-events (real broker)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.cli.main import main
from services.common.events import ModelEvent, Topics, decode
from services.common.kafka import ensure_topics
from services.common.settings import Settings, get_settings
from services.registry import ModelRegistry, ModelVersion, Thresholds
from tests.training.conftest import model_events


def _register(registry: ModelRegistry, name: str, tmp_path: Path, payload: bytes) -> ModelVersion:
    artifact = tmp_path / f"artifact-{payload.hex()}"
    artifact.mkdir()
    (artifact / "model.bin").write_bytes(payload)
    record = ModelVersion(
        name=name, version="pending", kind="sklearn", created_at=datetime.now(UTC), features=["a"],
        thresholds=Thresholds(review=0.3, decline=0.8), metrics={"pr_auc": 0.5},
    )
    return registry.register(record, artifact)


def test_promote_and_rollback_publish_model_events(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_topics(settings, [Topics.MODEL_EVENTS])
    name = f"fraud-cli-{os.urandom(3).hex()}"  # the session broker's topic holds other tests' events too
    registry = ModelRegistry(settings.registry_uri)
    v1 = _register(registry, name, tmp_path, b"one")
    v2 = _register(registry, name, tmp_path, b"two")
    monkeypatch.setenv("RTML_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("RTML_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        assert main(["models", "--name", name, "promote", v1.version]) == 0
        assert main(["models", "--name", name, "promote", v2.version, "--reason", "better"]) == 0
        assert main(["models", "--name", name, "rollback"]) == 0
    finally:
        get_settings.cache_clear()

    records = [r for r in model_events(settings, f"test-cli-{name}") if r.key == name.encode()]
    events = [decode(ModelEvent, r.value) for r in records]
    assert [(e.event, e.version, e.previous_version) for e in events] == [
        ("promoted", v1.version, None),
        ("promoted", v2.version, v1.version),
        ("rolled_back", v1.version, v2.version),
    ]
    assert events[-1].artifact_uri == registry.get(name, v1.version).artifact_uri
    assert registry.champion(name).version == v1.version  # type: ignore[union-attr]
