"""Kafka plumbing on kafka-python: a durable producer, topic creation, and an
at-least-once batch consumer that commits only after its handler returned.

Works the same against the embedded Tansu broker and Apache Kafka.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from services.common.events import InternalTopics, Topics
from services.common.settings import Settings

if TYPE_CHECKING:  # lost_log reads partitions with make_reader from here
    from services.common.lost_log import ShortLogGuard

log = logging.getLogger(__name__)

Handler = Callable[[list[ConsumerRecord]], None]

# What a commit raises when the group rebalanced under the batch, none of it retriable: kafka-python
# 3 raises RebalanceInProgressError itself while its own rejoin is under way (a short poll, such
# as the feature stages' accumulating ones, started the join and returned before it completed),
# and the broker answers ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID once the group has moved on;
# kafka-python 2.x raised CommitFailedError. Uncaught, it ended a feature instance whenever its
# partner restarted (tests/foundation/test_commit_in_rebalance.py).
GROUP_MOVED_ON = (CommitFailedError, RebalanceInProgressError, IllegalGenerationError, UnknownMemberIdError)


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A producer that only counts a message as sent once every in-sync replica has it."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.kafka_client_id}-producer",
        "acks": "all",
        "retries": 10,
        "retry_backoff_ms": 200,
        "linger_ms": 5,
        # One in-flight request keeps per-key order across retries without idempotence,
        # which not every Kafka-protocol broker implements. kafka-python >= 2.1 turns it on
        # by default; after a Tansu restart its InitProducerId then fails for good and every
        # send errors until the process restarts (tests/resilience/test_broker_outage.py).
        "enable_idempotence": False,
        "max_in_flight_requests_per_connection": 1,
        "request_timeout_ms": 15_000,
    }
    config.update(overrides)
    return KafkaProducer(**config)


# kafka-python's blocking lookups (committed, end_offsets, position) retry for ever without a
# timeout, and a response lost in a rebalance or a broker restart then holds the polling thread
# (a stage that never gets ready). With it they raise KafkaTimeoutError, which is retriable:
# the caller's next poll tries again.
LOOKUP_TIMEOUT_MS = 15_000


def make_reader(settings: Settings, purpose: str, **overrides: Any) -> KafkaConsumer:
    """A consumer outside any group, for ``assign`` and ``seek``: it never joins or commits;
    ``purpose`` names it to the broker (client id)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.kafka_client_id}-{purpose}",
        "group_id": None,
        "enable_auto_commit": False,
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def make_consumer(
    settings: Settings,
    group_id: str,
    topics: Sequence[str],
    listener: ConsumerRebalanceListener | None = None,
    **overrides: Any,
) -> KafkaConsumer:
    """A group consumer with manual commits; the short poll interval keeps group joins fast
    (kafka-python sends it as the rebalance timeout, which the broker waits out on join)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.kafka_client_id}-{group_id}",
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": settings.kafka_max_poll_interval_ms,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": max(500, settings.kafka_session_timeout_ms // 5),
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "max_poll_records": 2000,
    }
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    consumer.subscribe(list(topics), listener=listener)
    return consumer


def ensure_topics(
    settings: Settings, topics: Iterable[str] = (*Topics.ALL, *InternalTopics.ALL), timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet (by default the contract's and the internal ones,
    all with the same partition count, which the feature service's label join relies on);
    returns the ones created."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=settings.bootstrap_servers, client_id=f"{settings.kafka_client_id}-admin"
            )
            break
        except Exception as exc:  # the broker may still be starting
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {settings.kafka_bootstrap} not reachable: {exc}") from exc
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            new = [NewTopic(t, settings.topic_partitions, settings.topic_replication) for t in missing]
            # Another process may win the race; the topic is then there, which is all we need.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
        return missing
    finally:
        admin.close()


def next_offsets(records: Iterable[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit after ``records`` are done: one past the highest per partition."""
    highest: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        highest[tp] = max(highest.get(tp, -1), rec.offset)
    return {tp: OffsetAndMetadata(off + 1, "", -1) for tp, off in highest.items()}


class ShutdownFlag:
    """Set by SIGTERM/SIGINT so loops finish their current batch and exit cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> ShutdownFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("shutdown requested", extra={"signal": signal.Signals(signum).name})
        self.event.set()

    def set(self) -> None:
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)


def _log_batch(message: str, batch: list[ConsumerRecord]) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug(message, extra={"records": len(batch), "by_topic": dict(Counter(rec.topic for rec in batch))})


def lags(consumer: KafkaConsumer) -> dict[TopicPartition, int]:
    """Per assigned partition with a known high watermark, the records past the consumer's
    position, as of its last fetch response (no request is made)."""
    out: dict[TopicPartition, int] = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is not None:
            out[tp] = max(0, high - consumer.position(tp))
    return out


class BatchConsumer:
    """At-least-once processing: poll a batch, hand it to ``handler``, commit only after it returns.

    If the handler raises, nothing is committed and the records are delivered again
    (after a seek back), so a handler must be idempotent per record.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        handler: Handler,
        *,
        poll_timeout_ms: int = 200,
        on_idle: Callable[[], None] | None = None,
        retry_backoff_s: float = 1.0,
        accumulate_ms: int = 0,
        max_batch: int = 0,
        catch_up_ms: int = 0,
        guard: ShortLogGuard | None = None,
    ) -> None:
        self.consumer = consumer
        # Set when ``consumer`` was made with this guard as its listener: each assignment's
        # partitions are checked for an offset past their log before their records are handled.
        self.guard = guard
        self.handler = handler
        self.poll_timeout_ms = poll_timeout_ms
        # Under load, keep polling up to ``accumulate_ms`` after the first records arrive (until
        # ``max_batch`` records): fewer, bigger batches amortise a handler's fixed cost per batch.
        self.accumulate_ms = accumulate_ms
        self.max_batch = max_batch
        # While the consumer is behind (records already on the broker past its position), keep
        # filling the batch up to ``catch_up_ms``: those records are not waited for, so a bigger
        # batch costs no freshness, and a backlog drains in fewer, cheaper batches.
        self.catch_up_ms = max(catch_up_ms, accumulate_ms)
        self.on_idle = on_idle
        self.retry_backoff_s = retry_backoff_s
        self.batches = 0
        self.records = 0

    def poll_once(self) -> int:
        try:
            polled = self.consumer.poll(timeout_ms=self.poll_timeout_ms)
        except KafkaError as exc:
            # kafka-python 3 raises from poll when it cannot reach the group coordinator (broker
            # down or restarting); the consumer reconnects by itself, so wait and poll again.
            if not exc.retriable:
                raise
            log.warning("broker unreachable; polling again", extra={"error": str(exc)})
            time.sleep(self.retry_backoff_s)
            return 0
        if self.guard is not None:
            # After the poll that joined: no record of a short log can be in it (its position
            # lies past the log's end), so the seek back loses nothing.
            self.guard.check(self.consumer)
        batch = [rec for recs in polled.values() for rec in recs]
        if not batch:
            if self.on_idle:
                try:
                    self.on_idle()
                except KafkaError as exc:
                    # Idle work that talks to the broker (a state rebuild, a control-topic read)
                    # meets the same outages as poll: wait and do it again at the next idle poll.
                    if not exc.retriable:
                        raise
                    log.warning("idle work failed, broker unreachable; trying again", extra={"error": str(exc)})
                    time.sleep(self.retry_backoff_s)
            return 0
        if self.accumulate_ms > 0:
            self._accumulate(batch)
        # Summed over a consumer's lives (tests/resilience/test_consumer_crashes.py does): "received"
        # counts every delivery, each record once plus once per redelivery; "handled", written after
        # the handler and before the commit, counts every record at least once if none was lost.
        _log_batch("batch received", batch)
        try:
            self.handler(batch)
        except Exception:
            log.exception("batch handler failed; rewinding to redeliver", extra={"records": len(batch)})
            self._rewind(batch)
            time.sleep(self.retry_backoff_s)
            return 0
        _log_batch("batch handled", batch)
        try:
            self.consumer.commit(next_offsets(batch))
        except GROUP_MOVED_ON:
            # The group moved on (a batch outlived max_poll_interval, e.g. on a starved CPU, or a
            # member joined or left while it was handled): the next poll rejoins and whoever owns
            # the partitions now handles these records again.
            log.warning("commit refused after a rebalance; the batch will be redelivered", extra={"records": len(batch)})
            return 0
        except KafkaError as exc:
            if not exc.retriable:
                raise
            # Handled but not committed: the next batch's commit covers these offsets, and a
            # restart before it redelivers them (handlers are idempotent).
            log.warning("commit failed, broker unreachable", extra={"records": len(batch), "error": str(exc)})
            return 0
        self.batches += 1
        self.records += len(batch)
        return len(batch)

    def _accumulate(self, batch: list[ConsumerRecord]) -> None:
        """Poll more into ``batch`` for up to ``accumulate_ms``, and on to ``catch_up_ms`` while
        the consumer is behind, until ``max_batch`` records."""
        started = time.monotonic()
        live_deadline = started + self.accumulate_ms / 1000
        catch_up_deadline = started + self.catch_up_ms / 1000
        while len(batch) < self.max_batch:
            now = time.monotonic()
            left = live_deadline - now
            if left <= 0:
                left = catch_up_deadline - now
                if left <= 0 or not self._behind():
                    return
            more = self.consumer.poll(timeout_ms=int(left * 1000), max_records=self.max_batch - len(batch))
            batch.extend(rec for recs in more.values() for rec in recs)

    def _behind(self) -> bool:
        """Records on the broker past this consumer's position (see ``lags``)."""
        return any(lag > 0 for lag in lags(self.consumer).values())

    def _rewind(self, batch: list[ConsumerRecord]) -> None:
        lowest: dict[TopicPartition, int] = {}
        for rec in batch:
            tp = TopicPartition(rec.topic, rec.partition)
            lowest[tp] = min(lowest.get(tp, rec.offset), rec.offset)
        for tp, off in lowest.items():
            self.consumer.seek(tp, off)

    def run(self, stop: ShutdownFlag | threading.Event) -> None:
        is_set = stop.event.is_set if isinstance(stop, ShutdownFlag) else stop.is_set
        try:
            while not is_set():
                self.poll_once()
        finally:
            # Everything handled was committed batch by batch; never auto-commit on close.
            self.consumer.close(autocommit=False)
