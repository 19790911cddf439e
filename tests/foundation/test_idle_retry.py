"""Idle work that meets a broker outage (a retriable Kafka error) is done again at the next idle
poll instead of ending the consumer; any other error still ends it."""

from __future__ import annotations

import uuid

import pytest
from kafka.errors import KafkaConnectionError, UnsupportedVersionError

from services.common.kafka import BatchConsumer, ensure_topics, make_consumer
from services.common.settings import Settings


def test_a_retriable_error_in_idle_work_is_retried_and_a_fatal_one_raised(settings: Settings) -> None:
    topic = f"idle-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    calls: list[str] = []

    def idle() -> None:
        calls.append("idle")
        if len(calls) == 1:
            raise KafkaConnectionError("broker restarting")
        if len(calls) == 3:
            raise UnsupportedVersionError("not retriable")

    consumer = make_consumer(settings, f"g-{uuid.uuid4().hex[:6]}", [topic])
    batches = BatchConsumer(consumer, lambda batch: None, on_idle=idle, retry_backoff_s=0.01, poll_timeout_ms=50)
    try:
        assert batches.poll_once() == 0  # the outage: logged, not raised
        assert batches.poll_once() == 0  # done again
        with pytest.raises(UnsupportedVersionError):
            batches.poll_once()
    finally:
        consumer.close(autocommit=False)
    assert calls == ["idle", "idle", "idle"]
