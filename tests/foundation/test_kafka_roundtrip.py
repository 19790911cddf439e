"""Every event type through a real Tansu broker; group joins; at-least-once commits; graceful shutdown."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid

from kafka import TopicPartition

from services.common.events import EVENT_TYPES, Topics, decode
from services.common.kafka import BatchConsumer, ensure_topics, make_consumer, make_producer
from services.common.settings import Settings
from tests.foundation.test_events import sample_events


def _drain(settings: Settings, group: str, topics: list[str], want: int, timeout_s: float = 30.0) -> list:  # type: ignore[type-arg]
    consumer = make_consumer(settings, group, topics)
    got: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=200).values():
                got.extend(recs)
        consumer.commit()
    finally:
        consumer.close(autocommit=False)
    return got


def test_topics_are_created_with_configured_partitions(settings: Settings) -> None:
    ensure_topics(settings)
    from kafka import KafkaConsumer

    probe = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        for topic in Topics.ALL:
            assert len(probe.partitions_for_topic(topic) or ()) == settings.topic_partitions
    finally:
        probe.close()
    assert ensure_topics(settings) == []  # idempotent


def test_every_event_type_round_trips_through_the_broker(settings: Settings) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    producer = make_producer(settings)
    events = sample_events()
    for name, event in events.items():
        producer.send(topic, key=name.encode(), value=event.to_json())  # type: ignore[attr-defined]
    producer.flush()
    producer.close()

    started = time.monotonic()
    records = _drain(settings, f"g-{uuid.uuid4().hex[:6]}", [topic], want=len(events))
    joined_and_read_s = time.monotonic() - started
    decoded = {r.key.decode(): decode(EVENT_TYPES[r.key.decode()], r.value) for r in records}
    assert decoded == events
    # The group join is bounded by max_poll_interval_ms (3 s here), not kafka-python's 300 s default.
    assert joined_and_read_s < 30, joined_and_read_s


def test_batch_consumer_commits_only_after_the_handler_succeeds(settings: Settings) -> None:
    topic = f"alo-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    producer = make_producer(settings)
    for i in range(50):
        producer.send(topic, key=b"k", value=str(i).encode())
    producer.flush()
    group = f"g-{uuid.uuid4().hex[:6]}"
    seen: list[int] = []
    failures = {"left": 1}

    def handler(batch: list) -> None:  # type: ignore[type-arg]
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("store unavailable")  # nothing may be committed for this batch
        seen.extend(int(r.value) for r in batch)

    stop = threading.Event()
    worker = BatchConsumer(make_consumer(settings, group, [topic]), handler, retry_backoff_s=0.1)
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 30
    while len(set(seen)) < 50 and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(10)
    assert sorted(set(seen)) == list(range(50))  # the failed batch was redelivered, nothing lost

    probe = make_consumer(settings, group, [topic])
    try:
        committed = sum((probe.committed(TopicPartition(topic, p)) or 0) for p in range(settings.topic_partitions))
    finally:
        probe.close(autocommit=False)
    assert committed == 50


def test_sigterm_drains_the_batch_and_commits(settings: Settings) -> None:
    """A consumer process that gets SIGTERM mid-stream exits cleanly with its work committed."""
    topic = f"term-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    ensure_topics(settings, [topic])
    producer = make_producer(settings)
    for i in range(200):
        producer.send(topic, value=str(i).encode())
    producer.flush()
    script = textwrap.dedent(
        f"""
        import sys, time
        from services.common.settings import load_settings
        from services.common.kafka import BatchConsumer, ShutdownFlag, make_consumer
        s = load_settings(kafka_bootstrap={settings.kafka_bootstrap!r}, kafka_max_poll_interval_ms=3000)
        flag = ShutdownFlag().install()
        def handle(batch):
            for r in batch:
                print(r.value.decode(), flush=True)
        c = make_consumer(s, {group!r}, [{topic!r}], max_poll_records=20)
        BatchConsumer(c, handle).run(flag)
        print("clean-exit", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # wait until it is consuming
    assert first.strip().isdigit()
    proc.terminate()
    rest = proc.stdout.read()  # not communicate(): it would bypass lines already buffered by readline
    assert proc.wait(timeout=30) == 0
    lines = [first.strip(), *rest.split()]
    assert lines[-1] == "clean-exit"
    processed = len(lines) - 1
    # Whatever it processed was committed: a new member of the group starts right after it.
    remaining = _drain(settings, group, [topic], want=200 - processed, timeout_s=20)
    assert len(remaining) == 200 - processed


def _batch_sizes_of(settings: Settings, topic: str, expect: int, catch_up_ms: int, live: int = 0) -> list[int]:
    """Batch sizes a BatchConsumer (1 ms accumulation, 3,000 per batch, fetches of 4 KiB per
    partition: a batch takes many fetch round trips) hands over for a backlog of ``expect``
    records, then ``live`` records sent one every 50 ms."""
    sizes: list[int] = []
    stop = threading.Event()
    worker = BatchConsumer(
        make_consumer(settings, f"g-{uuid.uuid4().hex[:6]}", [topic],
                      max_partition_fetch_bytes=4096, fetch_max_bytes=4096),
        lambda batch: sizes.append(len(batch)), accumulate_ms=1, max_batch=3_000, catch_up_ms=catch_up_ms,
    )
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while sum(sizes) < expect and time.monotonic() < deadline:
            time.sleep(0.05)
        producer = make_producer(settings, linger_ms=0)
        for i in range(live):
            producer.send(topic, value=f"live-{i}".encode())
            producer.flush()
            time.sleep(0.05)
        while sum(sizes) < expect + live and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    return sizes


def test_batches_fill_up_while_behind_and_stay_short_when_live(settings: Settings) -> None:
    topic = f"catch-up-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    producer = make_producer(settings, batch_size=1024)  # small record batches: small fetches
    for i in range(6_000):
        producer.send(topic, value=str(i).encode())
    producer.flush()

    eager = _batch_sizes_of(settings, topic, 6_000, catch_up_ms=0)
    assert sum(eager) == 6_000
    assert eager[0] < 3_000  # 1 ms of accumulation is not enough fetches for 3,000

    sizes = _batch_sizes_of(settings, topic, 6_000, catch_up_ms=10_000, live=20)
    assert sizes[:2] == [3_000, 3_000]  # behind: each batch filled up to max_batch
    live = sizes[2:]
    assert sum(live) == 20
    # Not behind: a batch ends after its 1 ms, not after the 10 s catch-up, so the 20 records
    # sent over a second come in several batches (Tansu delivers a sparse topic's records once
    # per fetch wait, up to 500 ms, so a few at a time).
    assert len(live) >= 2, live
