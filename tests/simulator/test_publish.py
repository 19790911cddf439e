"""Round trips through a real Tansu broker: `publish` and `rtml simulate` deliver every event intact."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.broker import EmbeddedBroker
from services.common.events import Label, Topics, Transaction, decode, encode
from services.common.kafka import ensure_topics, make_consumer, make_producer
from services.common.settings import Settings, load_settings
from services.simulator import SimulatorConfig, generate, publish

CONSUME_GIVE_UP_S = 60  # a guard against hanging, not a speed assertion


@pytest.fixture
def broker_settings(tmp_path: Path) -> Iterator[Settings]:
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        yield load_settings(kafka_bootstrap=broker.bootstrap, kafka_max_poll_interval_ms=3_000)


def consume_all(settings: Settings, expected: int) -> list[tuple[str, bytes, bytes]]:
    consumer = make_consumer(settings, "simulator-test", [Topics.TRANSACTIONS, Topics.LABELS])
    received: list[tuple[str, bytes, bytes]] = []
    deadline = time.monotonic() + CONSUME_GIVE_UP_S
    try:
        while len(received) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                received.extend((r.topic, r.key, r.value) for r in records)
    finally:
        consumer.close(autocommit=False)
    return received


def test_publish_delivers_every_event_decodable(broker_settings: Settings) -> None:
    config = SimulatorConfig(events=2_500, seed=11, drift_at=1_200)
    expected = [(s.topic, s.key.encode(), encode(s.event)) for s in generate(config)]
    ensure_topics(broker_settings, [Topics.TRANSACTIONS, Topics.LABELS])
    producer = make_producer(broker_settings)
    progress: list[int] = []
    try:
        sent = publish(generate(config), producer, progress=progress.append)
    finally:
        producer.close()
    assert sent == len(expected)
    assert progress[-1] == sent and progress == sorted(progress)

    received = consume_all(broker_settings, len(expected))
    assert sorted(received) == sorted(expected)
    for topic, key, value in received:
        model = Transaction if topic == Topics.TRANSACTIONS else Label
        event = decode(model, value)
        assert key.decode() == (event.user_id if isinstance(event, Transaction) else event.transaction_id)


def test_paced_publish_sends_everything(broker_settings: Settings) -> None:
    events = list(generate(SimulatorConfig(events=150, seed=3)))
    ensure_topics(broker_settings, [Topics.TRANSACTIONS, Topics.LABELS])
    producer = make_producer(broker_settings)
    try:
        assert publish(events, producer, rate=2_000) == len(events)
    finally:
        producer.close()
    assert len(consume_all(broker_settings, len(events))) == len(events)


def test_rtml_simulate_publishes_the_generated_stream(broker_settings: Settings) -> None:
    env = {**os.environ, "RTML_KAFKA_BOOTSTRAP": broker_settings.kafka_bootstrap}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "simulate", "--events", "1500", "--seed", "5", "--drift-at", "700"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("simulated 1500 transactions")
    config = SimulatorConfig(events=1_500, seed=5, drift_at=700)
    expected = [(s.topic, s.key.encode(), encode(s.event)) for s in generate(config)]
    assert sorted(consume_all(broker_settings, len(expected))) == sorted(expected)
