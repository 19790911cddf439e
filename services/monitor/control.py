"""A per-instance reader of the control topics (model events, training requests), from the beginning.

Not a consumer group: every monitor instance must see every promotion and every
request, and rebuilding from offset 0 on start is how a restarted monitor learns
which requests it already made.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from services.common.kafka import make_reader
from services.common.settings import Settings


class ControlReader:
    def __init__(self, settings: Settings, topics: Sequence[str], timeout_s: float = 30.0) -> None:
        self.consumer = make_reader(
            settings, "monitor-control",
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,  # how late a new event is seen
            auto_offset_reset="earliest",
        )
        deadline = time.monotonic() + timeout_s
        partitions: list[TopicPartition] = []
        for topic in topics:
            found = self.consumer.partitions_for_topic(topic)
            while not found:  # metadata for a just-created topic can lag a moment
                if time.monotonic() > deadline:
                    self.consumer.close()
                    raise RuntimeError(f"topic {topic} has no partitions on {settings.kafka_bootstrap}")
                time.sleep(0.2)
                found = self.consumer.partitions_for_topic(topic)
            partitions.extend(TopicPartition(topic, p) for p in sorted(found))
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        self.partitions = partitions

    def read_to_end(self, timeout_s: float = 30.0) -> list[ConsumerRecord]:
        """Everything published so far, in partition order."""
        ends = self.consumer.end_offsets(self.partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while any(self.consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"control topics not read to the end within {timeout_s:.0f}s")
            records.extend(self.poll(200))
        return records

    def poll(self, timeout_ms: int = 0) -> list[ConsumerRecord]:
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        return [rec for recs in polled.values() for rec in recs]

    def close(self) -> None:
        self.consumer.close(autocommit=False)
