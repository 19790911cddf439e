"""Rebuilding window state after a (re)start or rebalance by replaying the topics.

The Kafka log is the source of truth: on every assignment of a stage its state is reset and
each assigned partition is read from its beginning up to the stage group's committed offset,
updating state only (those records were written and dead-lettered before). Records
after the committed offset are then handled normally; a record that was written but
not committed before a crash is written again with the same values and event time,
so replays never double count; a fact forwarded again to the next stage is ignored there
by id. Retention of rtml.transactions, rtml.labels and the internal topics must cover the
longest window (30 d) plus the allowed lateness.

A partition whose log ends before the committed offset lost its log: a restarted in-memory Tansu
forgets every record, yet a commit that was in flight can reach it, so the group's offset points
past the new, short log. Apache Kafka would answer a fetch there with OFFSET_OUT_OF_RANGE and the
consumer would reset to the beginning; Tansu just waits at that offset, which would skip every
new record below it and (before this check) held the replay forever. Such a partition is read
from the beginning as new records instead, as Kafka's reset would do.
"""

from __future__ import annotations

import logging
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from services.common.settings import Settings
from services.feature import metrics
from services.feature.processor import BatchProcessor

log = logging.getLogger(__name__)

# Both the stage's group consumer and its replay reader fetch this much per partition: the replay
# must read every batch the live path could, or it would wait at one it cannot fetch.
MAX_PARTITION_FETCH_BYTES = 4 * 1024 * 1024


class StateRebuilder(ConsumerRebalanceListener):
    """Notes one stage's assignments (kafka-python runs listeners on its IO thread, where blocking
    calls are refused); ``rebuild_if_needed`` then does the replay on the polling thread, before
    the first batch of the new assignment is handled."""

    def __init__(self, settings: Settings, processor: BatchProcessor) -> None:
        self.settings = settings
        self.processor = processor
        self.group_consumer: KafkaConsumer | None = None
        self.pending: set[TopicPartition] | None = None
        self.rebuilt = False

    @property
    def stage(self) -> str:
        return self.processor.logic.name

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Logged because a stage that stays unready between these two lines is waiting on its
        # group's rebalance (every member must rejoin within the rebalance timeout).
        log.info("partitions revoked", extra={"stage": self.stage, "partitions": _names(revoked)})
        self.rebuilt = False
        metrics.STAGE_READY.labels(self.stage).set(0)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"stage": self.stage, "partitions": _names(assigned)})
        self.pending = set(assigned)
        self.rebuilt = False
        metrics.STAGE_READY.labels(self.stage).set(0)

    def rebuild_if_needed(self) -> None:
        if self.pending is None:
            return
        assert self.group_consumer is not None
        assigned, self.pending = self.pending, None
        started = time.monotonic()
        self.processor.logic.reset(assigned)
        ends = {tp: self.group_consumer.committed(tp) or 0 for tp in assigned}
        ends = {tp: end for tp, end in ends.items() if end > 0}
        replayed, lost = replay(self.settings, ends, self.processor) if ends else (0, {})
        if lost:
            log.warning(
                "committed offset beyond the log end: the broker lost these partitions' records; "
                "reading them from the beginning",
                extra={"stage": self.stage, "lost": {f"{tp.topic}/{tp.partition}": v for tp, v in lost.items()}},
            )
            # The replay fed their surviving records to state as if already written: start over
            # without them, and let the live path handle them (write, forward, dead-letter).
            self.processor.logic.reset(assigned)
            intact = {tp: end for tp, end in ends.items() if tp not in lost}
            replayed, _ = replay(self.settings, intact, self.processor) if intact else (0, {})
            self.group_consumer.seek_to_beginning(*lost)
        self.processor.logic.clear()
        self.rebuilt = True
        metrics.ASSIGNED.labels(self.stage).set(len(assigned))
        metrics.STAGE_READY.labels(self.stage).set(1)
        log.info(
            "window state rebuilt",
            extra={
                "stage": self.stage,
                "partitions": _names(assigned),
                "replayed": replayed,
                "seconds": round(time.monotonic() - started, 3),
            },
        )


def _names(partitions: set[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)


def replay(
    settings: Settings, ends: dict[TopicPartition, int], processor: BatchProcessor, stall_s: float = 3.0
) -> tuple[int, dict[TopicPartition, tuple[int, int]]]:
    """Feed records [beginning, end) of each partition to ``processor.replay``; returns the count
    and the partitions whose log ended short of ``end`` (their committed offset, their last
    offset + 1): every record below a committed offset was consumed once, so none is still to
    come, and ``stall_s`` without a record means the log is shorter. (Tansu's ListOffsets cannot
    tell: it answers a partition's end as its last batch's base offset + 1.)"""
    reader = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.kafka_client_id}-feature-replay-{processor.logic.name}",
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=5000,
        max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
    )
    try:
        reader.assign(list(ends))
        reader.seek_to_beginning(*ends)
        remaining = {tp for tp in ends if reader.position(tp) < ends[tp]}
        count = 0
        last_record = time.monotonic()
        while remaining:
            polled = reader.poll(timeout_ms=500)
            for tp, records in polled.items():
                for record in records:
                    if record.offset < ends[tp]:
                        processor.replay(record)
                        count += 1
                if reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if polled:
                last_record = time.monotonic()
            elif time.monotonic() - last_record > stall_s:
                return count, {tp: (ends[tp], reader.position(tp)) for tp in remaining}
        return count, {}
    finally:
        reader.close()
