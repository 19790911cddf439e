"""Malformed events of every kind the feature service must dead-letter, mixed into good traffic,
and readers of what the service dead-lettered."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.common.events import MAX_EVENT_BYTES, Topics, encode
from services.common.settings import Settings
from services.simulator import SimEvent


@dataclass(frozen=True)
class RawEvent:
    """One record as sent: for a malformed one, the field its reason must name and a phrase of it."""

    topic: str
    key: bytes
    value: bytes
    field: str = ""
    phrase: str = ""

    @property
    def malformed(self) -> bool:
        return bool(self.field)


def _good_txn(i: int) -> dict[str, object]:
    return {"schema_version": 1, "transaction_id": f"t-bad-{i}", "user_id": f"u-bad-{i % 7}",
            "merchant_id": "m-1", "amount": 12.5, "currency": "EUR", "country": "DE", "channel": "web",
            "timestamp": "2026-11-22T03:00:00Z"}


def malformed(i: int) -> RawEvent:
    """The i-th malformed event; kinds rotate so every kind appears ~count/8 times."""
    txn = _good_txn(i)
    key = f"bad-{i}".encode()
    kind = i % 8
    if kind == 0:
        return RawEvent(Topics.TRANSACTIONS, key, json.dumps(txn).encode()[:-7], "<event>", "not valid UTF-8 JSON")
    if kind == 1:
        return RawEvent(Topics.LABELS, key, b"\xff\xfe not utf-8 \x00", "<event>", "not valid UTF-8 JSON")
    if kind == 2:
        del txn["merchant_id"]
        return RawEvent(Topics.TRANSACTIONS, key, json.dumps(txn).encode(), "merchant_id", "Field required")
    if kind == 3:
        txn["amount"] = "12.5"  # a string where a number belongs: never coerced
        return RawEvent(Topics.TRANSACTIONS, key, json.dumps(txn).encode(), "amount", "valid number")
    if kind == 4:
        txn["amount"] = -40.0
        return RawEvent(Topics.TRANSACTIONS, key, json.dumps(txn).encode(), "amount", "greater than 0")
    if kind == 5:
        txn["schema_version"] = 2
        return RawEvent(Topics.TRANSACTIONS, key, json.dumps(txn).encode(), "schema_version", "unsupported")
    if kind == 6:
        txn["note"] = "x" * (MAX_EVENT_BYTES + 1000)
        return RawEvent(Topics.TRANSACTIONS, key, json.dumps(txn).encode(), "<event>", "exceeds")
    label = {"schema_version": 1, "transaction_id": f"t-bad-{i}", "is_fraud": "yes", "timestamp": "2026-11-22T03:00:00Z"}
    return RawEvent(Topics.LABELS, key, json.dumps(label).encode(), "is_fraud", "valid boolean")


def mix(good: Sequence[SimEvent], count: int, seed: int) -> list[RawEvent]:
    """``good`` in order with ``count`` malformed events inserted at random positions."""
    out = [RawEvent(e.topic, e.key.encode(), encode(e.event)) for e in good]
    rng = random.Random(seed)
    for i in range(count):
        out.insert(rng.randrange(len(out) + 1), malformed(i))
    return out


def send_raw(producer: KafkaProducer, events: Sequence[RawEvent]) -> int:
    for event in events:
        producer.send(event.topic, key=event.key, value=event.value)
    producer.flush()
    return len(events)


def read_topic(settings: Settings, topic: str) -> list[object]:
    """Every record of ``topic`` from the beginning (ConsumerRecords)."""
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                           max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024)
    try:
        tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        records: list[object] = []
        idle = 0
        while idle < 4:
            polled = reader.poll(timeout_ms=500)
            batch = [r for recs in polled.values() for r in recs]
            records.extend(batch)
            idle = 0 if batch else idle + 1
        return records
    finally:
        reader.close()
