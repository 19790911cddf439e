"""A group offset past the end of its partition's log: what a commit in flight leaves when it
reaches a restarted in-memory Tansu, which has forgotten every record. Apache Kafka answers a
fetch there with OFFSET_OUT_OF_RANGE and the consumer starts over; Tansu waits at the offset.
The feature service must notice (its state rebuild finds the log short of the commit), read the
partition from the beginning as new records, and end equal to the backfill; before, it skipped
every record below the stale offset and its rebuild waited for them forever."""

from __future__ import annotations

import time

from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata

from services.common.events import Topics
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.feature.service import GROUPS
from services.features.backfill import compute
from services.simulator import SimulatorConfig, generate, publish, to_frames
from tests.feature.conftest import ServiceProcess, assert_online_equals_backfill, committed, partitions

STALE_OFFSET = 100_000


def commit_stale_offsets(settings: Settings, group: str, topic: str) -> None:
    committer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False)
    try:
        tps = partitions(settings, topic)
        committer.assign(tps)
        committer.commit({tp: OffsetAndMetadata(STALE_OFFSET, "", -1) for tp in tps})
    finally:
        committer.close(autocommit=False)


def test_an_offset_past_the_log_end_reads_the_partition_from_the_beginning(
    settings: Settings, service: ServiceProcess
) -> None:
    events = list(generate(SimulatorConfig(events=1500, users=120, merchants=40, seed=5)))
    transactions, labels = to_frames(events)
    txn_partitions = partitions(settings, Topics.TRANSACTIONS)
    commit_stale_offsets(settings, GROUPS["user"], Topics.TRANSACTIONS)
    assert committed(settings, "user", txn_partitions) == STALE_OFFSET * len(txn_partitions)
    producer = make_producer(settings)
    assert publish(events, producer) == len(events)
    producer.close()

    service.start()
    backfill = compute(transactions, labels)
    deadline = time.monotonic() + 120
    while committed(settings, "user", txn_partitions) != len(transactions):
        assert service.alive(), service.log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"user stage never caught up; log: {service.log.read_text()[-3000:]}"
        time.sleep(0.5)
    deadline = time.monotonic() + 60
    while True:  # the merchant stage follows the user stage's forwards
        try:
            assert_online_equals_backfill(settings, backfill)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "online store never equal to the backfill"
            time.sleep(1)
    log = service.log.read_text()
    assert "committed offset beyond the log end" in log
    assert service.stop() == 0
