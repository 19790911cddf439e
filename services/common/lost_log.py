"""Group offsets that point past the end of their partition's log, and what to do about them.

A restarted in-memory Tansu has forgotten every record, yet an offset commit that was in flight
as it stopped is retried and can reach it, so the group's offset points past the new, short log.
Apache Kafka answers a fetch there with OFFSET_OUT_OF_RANGE and the consumer resets to the
beginning (``auto_offset_reset=earliest``); Tansu waits at that offset, so the consumer would
silently skip every new record below it (docs/reliability.md). Each service checks the
partitions it is handed and reads a short one from the beginning, as Kafka's reset would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from services.common.kafka import LOOKUP_TIMEOUT_MS, make_reader
from services.common.settings import Settings

log = logging.getLogger(__name__)


def committed_offsets(consumer: KafkaConsumer, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
    """The group's committed offset of each partition (0 where none), each lookup bounded."""
    return {tp: consumer.committed(tp, timeout_ms=LOOKUP_TIMEOUT_MS) or 0 for tp in partitions}


def logs_short_of(
    settings: Settings, consumer: KafkaConsumer, committed: Mapping[TopicPartition, int], probe_s: float = 3.0
) -> list[TopicPartition]:
    """The partitions whose log holds no record at ``committed - 1`` (a record consumed once).

    ListOffsets alone cannot tell on Tansu (it reports a partition's end as its last batch's base
    offset + 1, short of the true end), but a log that really reaches an offset is reported at
    least that far minus one batch: only partitions committed beyond the reported end are probed,
    with one fetch each. On Apache Kafka no intact partition is ever probed.
    """
    wanted = {tp: offset for tp, offset in committed.items() if offset > 0}
    if not wanted:
        return []
    reported = consumer.end_offsets(list(wanted), timeout_ms=LOOKUP_TIMEOUT_MS)
    suspects = {tp: offset for tp, offset in wanted.items() if offset > (reported.get(tp) or 0)}
    if not suspects:
        return []
    reader = make_reader(settings, "offset-probe", fetch_max_wait_ms=100)
    try:
        reader.assign(list(suspects))
        for tp, offset in suspects.items():
            reader.seek(tp, offset - 1)
        unseen = set(suspects)
        deadline = time.monotonic() + probe_s
        while unseen and time.monotonic() < deadline:
            for tp, records in reader.poll(timeout_ms=200).items():
                if any(r.offset >= suspects[tp] - 1 for r in records):
                    unseen.discard(tp)
                    reader.pause(tp)
        return sorted(unseen, key=lambda tp: (tp.topic, tp.partition))
    finally:
        reader.close()


def read_short_logs_from_start(
    settings: Settings, consumer: KafkaConsumer, committed: Mapping[TopicPartition, int], who: str
) -> list[TopicPartition]:
    """Seek ``consumer`` to the beginning of every partition whose log ends short of its
    committed offset; returns those partitions."""
    short = logs_short_of(settings, consumer, committed)
    if short:
        log.warning(
            "committed offset beyond the log end: the broker lost these partitions' records; "
            "reading them from the beginning",
            extra={"consumer": who, "lost": {f"{tp.topic}/{tp.partition}": committed[tp] for tp in short}},
        )
        consumer.seek_to_beginning(*short)
    return short


class PendingAssignment(ConsumerRebalanceListener):
    """Notes each assignment for the polling thread to act on before its next batch: kafka-python
    runs listeners on its IO thread, where blocking calls (offset lookups, reads) are refused."""

    def __init__(self) -> None:
        self.pending: set[TopicPartition] | None = None

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.pending = set(assigned)

    def take(self) -> set[TopicPartition] | None:
        """The assignment still to act on, if any; ``put_back`` it when acting failed."""
        assigned, self.pending = self.pending, None
        return assigned

    def put_back(self, assigned: set[TopicPartition]) -> None:
        """Act on ``assigned`` again at the next poll, unless a newer assignment came meanwhile."""
        if self.pending is None:
            self.pending = assigned


class ShortLogGuard(PendingAssignment):
    """Reads a newly assigned partition from the beginning when its log ends short of the group's
    offset; ``check`` runs on the polling thread, before the batch is handled."""

    def __init__(self, settings: Settings, who: str) -> None:
        super().__init__()
        self.settings = settings
        self.who = who

    def check(self, consumer: KafkaConsumer) -> list[TopicPartition]:
        assigned = self.take()
        if assigned is None:
            return []
        try:
            return read_short_logs_from_start(self.settings, consumer, committed_offsets(consumer, assigned), self.who)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            # The broker went away again: check at the next poll, unless a newer assignment came.
            log.warning("could not check the assigned offsets; trying again", extra={"error": str(exc)})
            self.put_back(assigned)
            return []
