"""Training fixtures: settings on the session broker and a reader of rtml.model-events."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.broker import EmbeddedBroker
from services.common.events import Topics
from services.common.kafka import ensure_topics, make_consumer
from services.common.settings import Settings, load_settings


@pytest.fixture(scope="session")
def training_settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(
        kafka_bootstrap=broker.bootstrap,
        data_dir=tmp_path_factory.mktemp("training") / "data",
        kafka_max_poll_interval_ms=3000,
        kafka_session_timeout_ms=6000,
    )
    ensure_topics(settings, [Topics.MODEL_EVENTS, Topics.TRAINING_REQUESTS])
    return settings


def model_events(settings: Settings, group: str) -> list[Any]:
    """Every record on rtml.model-events, read from the start by a fresh group."""
    consumer = make_consumer(settings, group, [Topics.MODEL_EVENTS])
    records: list[Any] = []
    try:
        empty_polls = 0
        while empty_polls < 6:  # the group join takes a few polls; then stop once the topic is drained
            batch = consumer.poll(timeout_ms=500)
            found = [r for recs in batch.values() for r in recs]
            records += found
            empty_polls = 0 if found or not consumer.assignment() else empty_polls + 1
    finally:
        consumer.close(autocommit=False)
    return records
