"""The batch consumer's guard against a group offset past its partition's log (what a commit in
flight leaves on a restarted in-memory Tansu, docs/reliability.md), on the real broker: such a
partition is read from the beginning, and an intact one is left alone although Tansu reports its
end short of the committed offset (its last batch's base offset + 1)."""

from __future__ import annotations

import threading
import time
import uuid

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from services.common.kafka import BatchConsumer, ensure_topics, make_consumer, make_producer
from services.common.lost_log import ShortLogGuard
from services.common.settings import Settings


def produce_in_one_batch(settings: Settings, topic: str, count: int) -> None:
    producer = make_producer(settings, linger_ms=200)  # one multi-record batch per partition
    for i in range(count):
        producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    producer.flush()
    producer.close()


def commit(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    committer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False)
    try:
        committer.assign(list(offsets))
        committer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    finally:
        committer.close(autocommit=False)


def consume_with_guard(
    settings: Settings, group: str, topic: str, expected: int, quiet_s: float = 4.0
) -> list[ConsumerRecord]:
    """Everything a guarded batch consumer handles: at least ``expected`` records (or 60 s), then
    until nothing more has come for ``quiet_s``, so a duplicate would be seen too. Waiting for the
    count first: on starved cores (a 4-worker suite) the guard's probe and rejoin took longer than
    the quiet period, and an empty result read as "nothing to handle"."""
    got: list[ConsumerRecord] = []
    guard = ShortLogGuard(settings, "test")
    consumer = make_consumer(settings, group, [topic], listener=guard)
    stop = threading.Event()
    worker = threading.Thread(target=BatchConsumer(consumer, got.extend, guard=guard).run, args=(stop,))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < deadline:
            time.sleep(0.2)
        while len(got) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        seen, since = -1, time.monotonic()
        while time.monotonic() - since < quiet_s:
            if len(got) != seen:
                seen, since = len(got), time.monotonic()
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(30)
    return got


def test_an_offset_past_the_log_end_is_read_from_the_beginning(settings: Settings) -> None:
    topic, group = f"short-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:6]}"
    ensure_topics(settings, [topic])
    produce_in_one_batch(settings, topic, 40)
    commit(settings, group, {TopicPartition(topic, p): 10_000 for p in range(settings.topic_partitions)})

    got = consume_with_guard(settings, group, topic, expected=40)
    assert sorted(r.value for r in got) == sorted(f"v{i}".encode() for i in range(40))


def test_an_intact_log_committed_past_the_reported_end_is_not_read_again(settings: Settings) -> None:
    topic, group = f"intact-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:6]}"
    ensure_topics(settings, [topic])
    produce_in_one_batch(settings, topic, 40)
    first = consume_with_guard(settings, group, topic, expected=40)
    assert len(first) == 40
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
    committed = {tp: reader.committed(tp) or 0 for tp in tps}
    reported = reader.end_offsets(tps)
    reader.close(autocommit=False)
    # The case the probe exists for: committed (true end) beyond what the broker reports.
    assert any(committed[tp] > reported[tp] for tp in tps), (committed, reported)

    produce_in_one_batch(settings, topic, 5)
    again = consume_with_guard(settings, group, topic, expected=5)
    assert sorted(r.value for r in again) == [f"v{i}".encode() for i in range(5)]
