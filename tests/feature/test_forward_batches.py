"""Batched forwards between the feature service's stages: each fact lands on the partition a
keyed record would (Kafka's default partitioner), every record decodes within the event size
limit, and a source partition's facts keep their order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2

from services.common.events import MAX_EVENT_BYTES, EventError, InternalTopics, decode
from services.common.settings import Settings
from services.feature.messages import (
    MAX_FACTS_PER_RECORD,
    FactBatch,
    forwards_of_labels,
    forwards_of_transactions,
    partition_of,
)
from services.features.aggregate import LabelFact, TxnFact

PARTITIONS = {InternalTopics.MERCHANT_EVENTS: 3, InternalTopics.TRANSACTION_MERCHANTS: 4}
LONGEST_ID = "x" * 64  # the contract's longest identifier


def _txn(i: int) -> TxnFact:
    return TxnFact(f"{LONGEST_ID[:56]}-{i:07d}", f"u-{i % 7}", f"m-{i % 11}-{LONGEST_ID[:50]}", 1_000 + i, 12.5, "DE", None)


def test_partition_matches_where_the_broker_puts_a_keyed_record(settings: Settings) -> None:
    """kafka-python's default partitioner (the Java client's) on a real topic of 5 partitions."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.create_topics([NewTopic("rtml.partitioner-check", num_partitions=5, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    try:
        keys = [f"key-{i}" for i in range(300)]
        futures = [producer.send("rtml.partitioner-check", key=k.encode(), value=b"x") for k in keys]
        producer.flush(timeout=30)
        landed = [f.get(timeout=30).partition for f in futures]
    finally:
        producer.close()
    assert len(set(landed)) == 5
    assert landed == [partition_of(k, 5) for k in keys]


@hypothesis_settings(max_examples=2_000, deadline=None)
@given(key=st.text(max_size=80), partitions=st.integers(1, 64))
def test_partition_agrees_with_kafka_pythons_partitioner(key: str, partitions: int) -> None:
    """The C murmur2 against kafka-python's pure-Python one, on any key (UTF-8, every length)."""
    assert partition_of(key, partitions) == (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def test_transactions_land_where_their_keys_hash_in_order_and_within_size() -> None:
    accepted = [(i % 2, _txn(i)) for i in range(3_000)]  # a full batch from two source partitions
    lows = {0: 10, 1: 20}
    forwards = forwards_of_transactions(accepted, lows, PARTITIONS)

    seen: dict[str, list[tuple[int, int, str]]] = {t: [] for t in InternalTopics.ALL}
    for topic, partition, value in forwards:
        assert len(value) <= MAX_EVENT_BYTES
        batch = decode(FactBatch, value)
        assert 0 < len(batch.transactions) <= MAX_FACTS_PER_RECORD
        assert batch.low_us == lows[batch.partition]
        key_of = (lambda f: f.merchant_id) if topic == InternalTopics.MERCHANT_EVENTS else (lambda f: f.transaction_id)
        for fact in batch.transactions:
            assert partition_of(key_of(fact), PARTITIONS[topic]) == partition
            assert fact.transaction_id.endswith(f"{fact.ts_us - 1_000:07d}")  # round-trips whole
            seen[topic].append((partition, batch.partition, fact.transaction_id))

    expected = sorted((p, f.transaction_id) for p, f in accepted)
    for topic in InternalTopics.ALL:
        assert sorted((source, t) for _, source, t in seen[topic]) == expected  # each fact once per topic
        streams: dict[tuple[int, int], list[str]] = {}
        for target, source, txn_id in seen[topic]:
            streams.setdefault((target, source), []).append(txn_id)
        assert len(streams) > 2
        for stream in streams.values():
            assert stream == sorted(stream)  # a (target, source) stream keeps the source's order


def test_labels_go_to_their_merchants_partition() -> None:
    labels = [(0, LabelFact(f"t-{i}", f"m-{i % 5}", 5_000 + i, i % 3 == 0)) for i in range(450)]
    forwards = forwards_of_labels(labels, {0: 4_999}, PARTITIONS)
    facts = []
    for topic, partition, value in forwards:
        assert topic == InternalTopics.MERCHANT_EVENTS
        batch = decode(FactBatch, value)
        assert not batch.transactions
        assert all(partition_of(f.merchant_id, 3) == partition for f in batch.labels)
        facts.extend(batch.labels)
    assert sorted(facts, key=lambda f: f.ts_us) == [f for _, f in labels]


def test_a_batch_holds_exactly_one_kind_of_fact() -> None:
    with pytest.raises(EventError, match="exactly one of transactions and labels"):
        decode(FactBatch, b'{"partition": 0, "low_us": 1}')
    both = FactBatch.model_construct(
        partition=0, low_us=1, transactions=[_txn(1)], labels=[LabelFact("t", "m", 1, True)]
    ).to_json()
    with pytest.raises(EventError, match="exactly one of transactions and labels"):
        decode(FactBatch, both)
