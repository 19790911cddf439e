"""Waits until the feature service has written given transactions to the online store.

The demo replays weeks of payments in minutes, so a user's next payment can come a few hundred
milliseconds after the previous one: less than the feature service's freshness. Scored then, it
would see features that miss its predecessor, a training/serving skew no real payment stream
has (people do not pay twice within the freshness of the pipeline). The driver therefore waits,
before scoring a user's payment, until that user's previous one is readable.

"Readable" is read off the consumer group's committed offsets: the feature service's user stage
commits a transaction's offset only after its features were written online (docs/features.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from kafka import KafkaAdminClient, TopicPartition

from services.common.events import Topics
from services.common.settings import Settings
from services.feature.stages import UserStage

log = logging.getLogger(__name__)


class OnlineWrites:
    """How far the feature service's user stage has written ``rtml.transactions``, partition by partition."""

    def __init__(self, settings: Settings, poll_s: float = 0.01, timeout_s: float = 15.0) -> None:
        self.admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers, client_id=f"{settings.kafka_client_id}-demo-readable"
        )
        self.group = UserStage.group
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.written: dict[int, int] = {}  # partition -> committed offset (the next one to write)
        self.waits = 0
        self.waited_s = 0.0
        self.timeouts = 0

    def covers(self, offsets: Mapping[int, int]) -> bool:
        """Whether every ``partition -> record offset`` is written, as of the last read."""
        return all(self.written.get(p, 0) > o for p, o in offsets.items())

    def _read(self, partitions: list[int]) -> None:
        found = self.admin.list_group_offsets(
            {self.group: [TopicPartition(Topics.TRANSACTIONS, p) for p in partitions]}
        )
        for tp, meta in found.get(self.group, {}).items():
            if meta.offset is not None and meta.offset >= 0:
                self.written[tp.partition] = max(self.written.get(tp.partition, 0), meta.offset)

    def wait_for(self, offsets: Mapping[int, int]) -> bool:
        """Block until every record is written; False (and go on) after the timeout: a stalled
        feature service must slow the demo down, not hang it."""
        if self.covers(offsets):
            return True
        started = time.monotonic()
        self.waits += 1
        try:
            while True:
                self._read(sorted(offsets))
                if self.covers(offsets):
                    return True
                if time.monotonic() - started > self.timeout_s:
                    self.timeouts += 1
                    log.warning("features not written in time; scoring anyway", extra={"offsets": dict(offsets)})
                    return False
                time.sleep(self.poll_s)
        finally:
            self.waited_s += time.monotonic() - started

    def close(self) -> None:
        self.admin.close()
