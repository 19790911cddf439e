"""A batch whose commit meets a rebalance is left to be delivered again; the consumer keeps going.

kafka-python 3 raises RebalanceInProgressError from a commit while its own rejoin is under way
(a poll that started the join returned before it completed: the feature service's accumulating
polls do that), not CommitFailedError as 2.x did; that once ended a feature service instance when
its partner restarted (tests/feature/test_scaling.py)."""

from __future__ import annotations

import threading
import time
import uuid

from kafka.consumer.fetcher import ConsumerRecord

from services.common.kafka import BatchConsumer, ensure_topics, make_consumer, make_producer
from services.common.settings import Settings


def test_a_commit_refused_by_a_rebalance_is_redelivered_not_fatal(settings: Settings) -> None:
    topic, group = f"rebalance-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:6]}"
    ensure_topics(settings, [topic])
    handled: list[ConsumerRecord] = []
    consumer = make_consumer(settings, group, [topic])
    # Accumulating polls, as the feature stages run: one of them starts the rejoin.
    first = BatchConsumer(consumer, handled.extend, poll_timeout_ms=100, accumulate_ms=2500, max_batch=1000)
    joiner_stop = threading.Event()
    joiner_got: list[ConsumerRecord] = []
    joiner = threading.Thread(
        target=lambda: BatchConsumer(make_consumer(settings, group, [topic]), joiner_got.extend).run(joiner_stop)
    )
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment():  # alone in the group first
            assert time.monotonic() < deadline
            first.poll_once()
        producer = make_producer(settings)
        for i in range(30):
            producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
        producer.flush()
        producer.close()
        joiner.start()  # a second member joins while the first accumulates its batch
        while time.monotonic() < deadline:
            first.poll_once()  # raised RebalanceInProgressError from the commit before
            if len({r.value for r in handled} | {r.value for r in joiner_got}) == 30:
                break
    finally:
        joiner_stop.set()
        if joiner.is_alive():
            joiner.join(30)
        consumer.close(autocommit=False)
    assert {r.value for r in handled} | {r.value for r in joiner_got} == {f"v{i}".encode() for i in range(30)}
