"""Rebuilding window state after a (re)start or rebalance by replaying the topics.

The Kafka log is the source of truth: on every assignment of a stage its state is reset and
each assigned partition is read from its beginning up to the stage group's committed offset,
updating state only (those records were written and dead-lettered before). Records
after the committed offset are then handled normally; a record that was written but
not committed before a crash is written again with the same values and event time,
so replays never double count; a fact forwarded again to the next stage is ignored there
by id. Retention of rtml.transactions, rtml.labels and the internal topics must cover the
longest window (30 d) plus the allowed lateness.

A partition committed beyond the end of its log (a commit in flight that reached a restarted
in-memory Tansu) is not replayed but read from the beginning as new records
(services/common/lost_log.py).
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition

from services.common.kafka import LOOKUP_TIMEOUT_MS, make_reader
from services.common.lost_log import PendingAssignment, committed_offsets, read_short_logs_from_start
from services.common.settings import Settings
from services.feature import metrics
from services.feature.processor import BatchProcessor

log = logging.getLogger(__name__)

# Both the stage's group consumer and its replay reader fetch this much per partition: the replay
# must read every batch the live path could, or it would wait at one it cannot fetch.
MAX_PARTITION_FETCH_BYTES = 4 * 1024 * 1024


class StateRebuilder(PendingAssignment):
    """Notes one stage's assignments; ``rebuild_if_needed`` then does the replay on the polling
    thread, before the first batch of the new assignment is handled."""

    def __init__(self, settings: Settings, processor: BatchProcessor) -> None:
        super().__init__()
        self.settings = settings
        self.processor = processor
        self.group_consumer: KafkaConsumer | None = None
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
        super().on_partitions_assigned(assigned)
        self.rebuilt = False
        metrics.STAGE_READY.labels(self.stage).set(0)

    def rebuild_if_needed(self) -> None:
        assigned = self.take()
        if assigned is None:
            return
        assert self.group_consumer is not None
        started = time.monotonic()
        try:
            self.processor.logic.reset(assigned)
            committed = committed_offsets(self.group_consumer, assigned)
            short = read_short_logs_from_start(self.settings, self.group_consumer, committed, f"feature {self.stage}")
            ends = {tp: end for tp, end in committed.items() if end > 0 and tp not in short}
            replayed = replay(self.settings, ends, self.processor) if ends else 0
        except Exception:
            # Still to do (a broker call failed): the handler's retry or the next idle poll
            # rebuilds again, unless a newer assignment has come meanwhile.
            self.put_back(assigned)
            raise
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


def replay(settings: Settings, ends: dict[TopicPartition, int], processor: BatchProcessor) -> int:
    """Feed records [beginning, end) of each partition to ``processor.replay``; returns the count."""
    reader = make_reader(
        settings, f"feature-replay-{processor.logic.name}",
        max_poll_records=5000, max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
    )
    try:
        reader.assign(list(ends))
        reader.seek_to_beginning(*ends)
        remaining = {tp for tp in ends if reader.position(tp, timeout_ms=LOOKUP_TIMEOUT_MS) < ends[tp]}
        count = 0
        while remaining:
            for tp, records in reader.poll(timeout_ms=500).items():
                for record in records:
                    if record.offset < ends[tp]:
                        processor.replay(record)
                        count += 1
                if reader.position(tp, timeout_ms=LOOKUP_TIMEOUT_MS) >= ends[tp]:
                    remaining.discard(tp)
        return count
    finally:
        reader.close()
