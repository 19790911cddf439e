"""Wiring of the feature service: one consumer group per stage, each with its own state, Feast
writer and rebuilder, run on its own thread; a shared producer for forwards and dead letters; ops HTTP.

Several instances may run: each stage's partitions spread over the instances (docs/features.md,
Scaling), and every key's state lives on exactly one partition of exactly one stage.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.coordinator.assignors.range import RangePartitionAssignor

from services.common.events import InternalTopics, Topics
from services.common.heap import collect_young_rarely, freeze_startup_heap
from services.common.kafka import (
    BatchConsumer,
    ShutdownFlag,
    ensure_topics,
    lags,
    make_consumer,
    make_producer,
    make_reader,
)
from services.common.ops_http import OpsServer, ops_app
from services.common.settings import FEATURE_STAGES, Settings
from services.feature import metrics
from services.feature.processor import BatchProcessor, StageLogic
from services.feature.rebuild import MAX_PARTITION_FETCH_BYTES, StateRebuilder
from services.feature.stages import LabelStage, MerchantStage, UserStage
from services.feature.store import apply_repo, open_store
from services.feature.writer import FeatureWriter

log = logging.getLogger(__name__)

GROUPS = {stage.name: stage.group for stage in (UserStage, LabelStage, MerchantStage)}
# A batch must be handled well within RTML_KAFKA_MAX_POLL_INTERVAL_MS (5 s by default), even on a
# starved CPU, or the instance drops out of the group and the same batch is redelivered, again too
# big: batches are capped at one event per WORST_US_PER_EVENT of the interval (5x the ~100 µs of
# CPU per event measured at most), and at MAX_BATCH.
MAX_BATCH = 10_000
WORST_US_PER_EVENT = 500
# Bounded wait for more records once a batch has started: at 1,000 events/s it adds at most
# this much to freshness and turns ~50 tiny writes a second into ~20 bigger ones.
ACCUMULATE_MS = 30
# While behind (a backlog, a burst, a restart), batches fill on up to MAX_BATCH for this long:
# the records are already there, and one write per key per batch instead of one per 3,000
# events halved the service's CPU per event on a backlog (docs/benchmarks.md, Feature ingestion).
CATCH_UP_MS = 200
PRODUCER_LINGER_MS = 500
PRODUCER_BATCH_BYTES = 512 * 1024


def batch_limit(settings: Settings) -> int:
    """Records per batch: MAX_BATCH, or fewer when the poll interval could not cover them."""
    return min(MAX_BATCH, settings.kafka_max_poll_interval_ms * 1000 // WORST_US_PER_EVENT)


def update_lag(consumer: KafkaConsumer) -> None:
    for tp, lag in lags(consumer).items():
        metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)


def partition_counts(settings: Settings, timeout_s: float = 30.0) -> dict[str, int]:
    """Partitions of the stages' topics; the label join needs rtml.labels and
    rtml.transaction-merchants co-partitioned (same count, same default partitioner)."""
    topics = (Topics.TRANSACTIONS, Topics.LABELS, *InternalTopics.ALL)
    reader = make_reader(settings, "feature-partitions")
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            counts = {t: len(reader.partitions_for_topic(t) or ()) for t in topics}
            if all(counts.values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics without partitions after {timeout_s} s: {counts}")
            time.sleep(0.5)
    finally:
        reader.close()
    if counts[Topics.LABELS] != counts[InternalTopics.TRANSACTION_MERCHANTS]:
        raise RuntimeError(
            f"{Topics.LABELS} has {counts[Topics.LABELS]} partitions but {InternalTopics.TRANSACTION_MERCHANTS} "
            f"{counts[InternalTopics.TRANSACTION_MERCHANTS]}: the label join needs the same count"
        )
    return counts


def build_stages(counts: dict[str, int], names: tuple[str, ...] = FEATURE_STAGES) -> list[StageLogic]:
    """The stages called ``names`` (by default user, label and merchant), given the partition
    counts of their topics."""
    internal = {topic: counts[topic] for topic in InternalTopics.ALL}
    stages: list[StageLogic] = [
        UserStage(internal),
        LabelStage(counts[Topics.TRANSACTIONS], internal),
        MerchantStage(counts[Topics.TRANSACTIONS], counts[Topics.LABELS]),
    ]
    return [stage for stage in stages if stage.name in names]


class StageRunner:
    """One stage in its consumer group: rebuild on assignment, then poll → handle → commit."""

    def __init__(self, settings: Settings, logic: StageLogic, producer: KafkaProducer) -> None:
        self.name = logic.name
        self.max_batch = batch_limit(settings)
        # A Feast store per stage: each thread writes through its own online-store connection.
        self.processor = BatchProcessor(logic, FeatureWriter(open_store(settings)), producer)
        self.rebuilder = StateRebuilder(settings, self.processor)
        # Big batches under load: one Feast write per view per batch is the fixed cost to amortise.
        # The range assignor (the default's first choice, pinned here) gives a member the same
        # partition numbers of every topic it subscribes to: the label join's co-partitioning.
        self.consumer = make_consumer(
            settings, logic.group, logic.topics, listener=self.rebuilder, max_poll_records=self.max_batch,
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES, partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self.rebuilder.group_consumer = self.consumer

    def handle(self, batch: list[ConsumerRecord]) -> None:
        self.rebuilder.rebuild_if_needed()
        self.processor.handle(batch)
        update_lag(self.consumer)

    def run(self, stop: ShutdownFlag) -> None:
        BatchConsumer(
            self.consumer, self.handle, on_idle=self.rebuilder.rebuild_if_needed,
            accumulate_ms=ACCUMULATE_MS, max_batch=self.max_batch, catch_up_ms=CATCH_UP_MS,
        ).run(stop)


def readiness(runners: list[StageRunner]) -> tuple[bool, str]:
    waiting = [r.name for r in runners if not r.rebuilder.rebuilt]
    if waiting:
        return False, f"waiting for partitions and state rebuild: {', '.join(waiting)} stage"
    return True, "consuming"


def run(settings: Settings, stop: ShutdownFlag) -> None:
    """Consume until ``stop`` is set; each stage finishes and commits its batch in flight first.
    A stage that fails stops the others, and the instance exits with the error (to be restarted)."""
    ensure_topics(settings)
    apply_repo(settings)
    counts = partition_counts(settings)
    # Every send of a batch (forwards, dead letters) is flushed before its offsets are committed,
    # so lingering adds no latency; it lets records fill large batches instead of waking the
    # sender thread for each new small one (13 % of the service's samples with the default).
    producer = make_producer(settings, linger_ms=PRODUCER_LINGER_MS, batch_size=PRODUCER_BATCH_BYTES)
    stages = build_stages(counts, settings.feature_stage_names)
    runners = [StageRunner(settings, stage, producer) for stage in stages]
    failed: list[str] = []

    def guarded(runner: StageRunner) -> None:
        try:
            runner.run(stop)
        except Exception:
            log.exception("stage failed; stopping the instance", extra={"stage": runner.name})
            failed.append(runner.name)
            stop.set()

    # Imports and wiring are done: nothing alive now needs collecting, and batches allocate in bursts.
    freeze_startup_heap()
    collect_young_rarely()
    ops = OpsServer(ops_app(lambda: readiness(runners)), settings.bind_host, settings.feature_port).start()
    threads = [threading.Thread(target=guarded, args=(r,), name=f"feature-{r.name}") for r in runners]
    for thread in threads:
        thread.start()
    groups = {stage.name: stage.group for stage in stages}
    log.info("feature service started", extra={"groups": groups, "port": settings.feature_port})
    try:
        while any(t.is_alive() for t in threads):
            # Short joins keep the main thread free to run the SIGTERM handler.
            for thread in threads:
                thread.join(timeout=0.2)
    finally:
        producer.flush(timeout=30)
        producer.close()
        ops.stop()
        log.info("feature service stopped")
    if failed:
        raise RuntimeError(f"feature stages failed: {failed}")
