"""One micro-batch of a stage: validate, dead-letter the bad, update state, write rows, forward."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from kafka import KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from services.common.events import Topics
from services.feature import metrics
from services.feature.label_join import PENDING_LABEL_WAIT_US, Pending
from services.feature.messages import Forward
from services.feature.state import Outcome
from services.feature.writer import FeatureWriter
from services.features import names as n
from services.features.aggregate import LabelFact, Row

log = logging.getLogger(__name__)


def dlq_id(record: ConsumerRecord) -> str:
    """The dead letter's identity: a record handled again after a crash (handled, not yet
    committed) is dead-lettered again with the same id, so DLQ readers dedupe on it."""
    return f"{record.topic}/{record.partition}/{record.offset}"


def dlq_headers(record: ConsumerRecord, reason: str) -> list[tuple[str, bytes]]:
    return [
        ("dlq_id", dlq_id(record).encode()),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
        ("reason", reason.encode("utf-8", "replace")),
    ]


@dataclass
class StageOutput:
    """What a live batch of a stage produced: rows per view, label-view rows, facts to forward to
    the next stage and labels whose transaction never came."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    labels: list[LabelFact] = field(default_factory=list)
    forwards: list[Forward] = field(default_factory=list)
    expired: list[Pending] = field(default_factory=list)


# What one record did to a stage's state: an outcome per fact it carries (a forwarded record
# carries many), or no outcome and the reason it must be dead-lettered.
Applied = tuple[list[Outcome], str]


class StageLogic(Protocol):
    """One stage's state and record handling (services/feature/stages.py)."""

    name: ClassVar[str]
    group: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]

    def reset(self, assigned: set[TopicPartition]) -> None:
        """Start from empty state for a new assignment (a replay follows)."""

    def apply(self, record: ConsumerRecord) -> Applied:
        """Update state with one record; ([], reason) when it must be dead-lettered."""

    def take(self) -> StageOutput:
        """After a live batch: what to write and forward; forgets what no future row needs."""

    def clear(self) -> None:
        """After a replay: drop pending output (it was written and forwarded before)."""

    def revisions(self, view: str, key: str) -> int: ...


class BatchProcessor:
    """The BatchConsumer handler of one stage; raising means the batch is redelivered (writes are
    idempotent, forwarded facts are deduplicated downstream by id)."""

    def __init__(self, logic: StageLogic, writer: FeatureWriter, producer: KafkaProducer) -> None:
        self.logic = logic
        self.writer = writer
        self.producer = producer

    def handle(self, batch: Sequence[ConsumerRecord]) -> None:
        started = time.monotonic()
        dead = 0
        counts: Counter[tuple[str, str]] = Counter()  # (topic, outcome): one metric update per batch
        for record in batch:
            outcomes, reason = self.logic.apply(record)
            if not outcomes:
                self.dead_letter(record, reason)
                dead += 1
                counts[record.topic, "dlq"] += 1
            for outcome in outcomes:
                counts[record.topic, outcome.value] += 1
        for (topic, outcome_name), count in counts.items():
            counter = metrics.EVENTS_IN if topic in Topics.ALL else metrics.INTERNAL_EVENTS
            counter.labels(topic, outcome_name).inc(count)
        out = self.logic.take()
        for expired in out.expired:
            self.dead_letter_label(expired)
            dead += 1
        online = self.writer.write(out.rows, out.labels, self.logic.revisions)
        written_at = time.time()
        for view, view_rows in out.rows.items():
            metrics.ROWS_WRITTEN.labels(view).inc(len(view_rows))
        # The rows online reads see; older rows of a key went offline only (and observing every
        # row cost ~1.7 µs each, ~5 % of the user stage).
        for row in online.get(n.USER_VIEW, {}).values():
            metrics.FRESHNESS.observe(max(0.0, written_at - row[n.EVENT_TIMESTAMP] / 1e6))
        self.forward(out.forwards)
        if dead:
            # The DLQ copy must be durable before the offsets are committed.
            self.producer.flush(timeout=30)
        metrics.BATCH_SIZE.labels(self.logic.name).observe(len(batch))
        metrics.BATCH_LATENCY.labels(self.logic.name).observe(time.monotonic() - started)

    def forward(self, forwards: Sequence[Forward]) -> None:
        """Publish to the next stage after the write succeeded and before the commit: a crash in
        between re-forwards the same facts, which the next stage ignores as duplicates."""
        if not forwards:
            return
        futures = [self.producer.send(topic, value=value, partition=p) for topic, p, value in forwards]
        self.producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)  # a failed send raises: the batch is redelivered, not committed
        metrics.FORWARDED.labels(self.logic.name).inc(len(forwards))

    def dead_letter_label(self, expired: Pending) -> None:
        """A label whose transaction never arrived (within PENDING_LABEL_WAIT_US of event time)."""
        source = ConsumerRecord(
            Topics.LABELS, expired.partition, -1, expired.offset, 0, 0,
            expired.label.transaction_id.encode(), expired.value, [], None, -1, -1, -1,
        )
        wait_min = PENDING_LABEL_WAIT_US // 60_000_000
        self.dead_letter(source, f"transaction_id: no transaction with this id within {wait_min} min after the label")

    def dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        field_name = reason.split(":", 1)[0]
        self.producer.send(Topics.DLQ, key=record.key, value=record.value, headers=dlq_headers(record, reason))
        metrics.DLQ_EVENTS.labels(record.topic, field_name).inc()
        log.warning(
            "dead-lettered event",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason[:200],
            },
        )

    def replay(self, record: ConsumerRecord) -> None:
        """Rebuild state from an already-handled record: no writes, no dead letters, no forwards."""
        self.logic.apply(record)
        metrics.REPLAYED.labels(record.topic).inc()
