"""Broker outage: the embedded Tansu broker stopped and restarted on the same port while the
inference service answers traffic and the feature service, the monitor and the training service
consume. Nobody is restarted by hand. Tansu keeps nothing across a restart, so the restart is followed by what
`rtml up` does at start (create the topics); every event produced after that must be
processed, and the prediction logs of requests answered after the restart must arrive. Requests
answered while the broker was away have their logs buffered and acknowledged once it is back; a
producer that sends while it is away does not crash, and reports each event it could not deliver.
Tansu acknowledges and discards what reaches it before the topics are re-created, so what it kept
of the outage's records is read back and published, and only that is asked of the consumers."""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from inference.conftest import TOKEN, make_transaction, read_prediction_logs, read_topic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.producer.future import FutureRecordMetadata

from services.common.broker import EmbeddedBroker
from services.common.events import Topics
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings
from services.demo.probes import metric_total
from services.feature.store import open_store
from services.features import names as n
from services.inference.online_features import OnlineFeatureReader
from tests.resilience.conftest import InferenceServer, ServiceProcess, publish_figures, scale, scoring_settings


@dataclass
class Stack:
    settings: Settings
    inference: InferenceServer
    feature: ServiceProcess
    monitor: ServiceProcess
    training: ServiceProcess

    def all(self) -> list[Any]:
        return [self.inference, self.feature, self.monitor, self.training]


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("broker-outage")
    settings = scoring_settings(broker, workdir, kafka_session_timeout_ms=6000)
    ensure_topics(settings)
    env = {"RTML_LOG_FORMAT": "json"}
    inference = InferenceServer(settings, workdir / "inference.log")
    feature = ServiceProcess("services.feature", settings, "RTML_FEATURE_PORT", workdir / "feature.log", env)
    monitor = ServiceProcess("services.monitor", settings, "RTML_MONITOR_PORT", workdir / "monitor.log", env)
    training = ServiceProcess("services.training", settings, "RTML_TRAINING_PORT", workdir / "training.log", env)
    running = Stack(settings, inference, feature, monitor, training)
    try:
        feature.start()
        monitor.start()
        training.start()
        inference.start()
        yield running
    finally:
        for service in (inference, feature, monitor, training):
            service.stop()


def transactions(count: int, tag: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [
        {**make_transaction(i, user=f"u-{tag}-{i}", merchant=f"m-{tag}", prefix=f"t-{tag}"), "timestamp": now}
        for i in range(count)
    ]


def send_all(producer: KafkaProducer, events: list[dict[str, Any]]) -> list[FutureRecordMetadata]:
    return [
        producer.send(Topics.TRANSACTIONS, key=event["user_id"].encode(), value=json.dumps(event).encode())
        for event in events
    ]


def produce(settings: Settings, events: list[dict[str, Any]]) -> None:
    """Send and require every acknowledgement: a refusal is the broker's, not the consumers'."""
    producer = make_producer(settings)
    try:
        futures = send_all(producer, events)
        producer.flush(timeout=30)
    finally:
        producer.close()
    _, errors = delivered(futures)
    assert not errors, f"the broker refused {len(errors)} of {len(events)} sends: {collections.Counter(errors)}"


def delivered(futures: list[FutureRecordMetadata]) -> tuple[list[int], list[str]]:
    """(indexes the broker acknowledged, errors reported for the others): nothing may stay unresolved."""
    acked, errors = [], []
    for i, future in enumerate(futures):
        assert future.is_done, f"send {i} neither delivered nor reported"
        if future.succeeded():
            acked.append(i)
        else:
            errors.append(type(future.exception).__name__)
    return acked, errors


def score(stack: Stack, events: list[dict[str, Any]]) -> dict[int, int]:
    statuses: dict[int, int] = {}
    with stack.inference.client(TOKEN) as client:
        for event in events:
            try:
                status = client.post("/predict", json=event).status_code
            except httpx.HTTPError:
                status = 0
            statuses[status] = statuses.get(status, 0) + 1
    return statuses


def stored_users(settings: Settings, events: list[dict[str, Any]]) -> int:
    rows = OnlineFeatureReader(open_store(settings)).read_entities([(e["user_id"], e["merchant_id"]) for e in events])
    return sum(1 for row in rows if row.get(n.USER_TXN_COUNT_24H))


def wait_until(what: str, check: Any, limit_s: float = 90.0, explain: Any = None) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up waiting for: {what}" + (f"; {explain()}" if explain else ""))
        time.sleep(0.5)


def tansu_partition_broken(broker: EmbeddedBroker) -> bool:
    """Whether the restarted Tansu logged the offset-0 collision that breaks a partition for good."""
    if broker.log_path is None or not broker.log_path.exists():
        return False
    log = broker.log_path.read_text(errors="replace")
    last_start = log.rfind("tansu broker")
    return "AlreadyExists" in log[last_start:] and "/records/00000000000000000000.batch" in log[last_start:]


def topic_census(settings: Settings) -> str:
    """What rtml.transactions holds now, by the events' tag (pre, away, post), with partitions and
    offsets: tells "never on the topic" from "on the topic, not processed"."""
    where: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        tps = [TopicPartition(Topics.TRANSACTIONS, p) for p in sorted(reader.partitions_for_topic(Topics.TRANSACTIONS) or ())]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 3:
            for records in reader.poll(timeout_ms=300).values():
                quiet_since = time.monotonic()
                for r in records:
                    where[str(json.loads(r.value)["user_id"]).split("-")[1]].append((r.partition, r.offset))
    finally:
        reader.close()
    return "on the topic: " + ", ".join(
        f"{tag} x{len(spots)} (partition/offset {min(spots)}..{max(spots)})" for tag, spots in sorted(where.items())
    ) + f"; partitions {len(tps)}"


def monitor_predictions(monitor: ServiceProcess) -> int:
    return int(httpx.get(f"{monitor.url}/api/state", timeout=10).json()["counts"]["predictions"])




def request_nothing(settings: Settings) -> None:
    """A malformed retraining request: the training service reads and counts it, and starts no run."""
    producer = make_producer(settings)
    try:
        producer.send(Topics.TRAINING_REQUESTS, key=b"outage-probe", value=b'{"reason": "not a request"}').get(timeout=30)
    finally:
        producer.close()


def logs_acknowledged(stack: Stack) -> float:
    return metric_total(stack.inference.url, "rtml_inference_prediction_log_sent_total")


def kept_on_topic(settings: Settings, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of ``events`` that are on rtml.transactions now."""
    def transaction_id(value: bytes) -> str:
        return str(json.loads(value)["transaction_id"])

    wanted = {e["transaction_id"] for e in events}
    on_topic = {transaction_id(v) for v in read_topic(settings, Topics.TRANSACTIONS, wanted, transaction_id, timeout_s=10)}
    return [e for e in events if e["transaction_id"] in on_topic]


def training_counted_invalid(training: ServiceProcess) -> float:
    return metric_total(training.url, "rtml_training_requests_total", decision="invalid", source="topic")


def test_broker_restart_under_traffic(stack: Stack, broker: EmbeddedBroker) -> None:
    count = scale(60, 1000)
    before, during, after = transactions(count, "pre"), transactions(count, "mid"), transactions(count, "post")
    sent_away = transactions(count, "away")  # produced to the stream while the broker is down
    produce(stack.settings, before)
    assert score(stack, before) == {200: count}
    wait_until("events before the outage processed", lambda: stored_users(stack.settings, before) == count)
    wait_until("the monitor saw the predictions before the outage", lambda: monitor_predictions(stack.monitor) >= count)
    seen_before = monitor_predictions(stack.monitor)
    request_nothing(stack.settings)
    wait_until("the training service read a request before the outage", lambda: training_counted_invalid(stack.training) == 1)

    away_producer = make_producer(stack.settings)  # connected before, it keeps sending through the outage
    away_producer.partitions_for(Topics.TRANSACTIONS)  # metadata cached, as in a producer that was running
    broker.stop()
    during_statuses = score(stack, during)  # scoring does not need Kafka: logs are buffered
    away_futures = send_all(away_producer, sent_away)
    time.sleep(scale(3, 20))
    assert all(s.alive() for s in (stack.feature, stack.monitor, stack.training)), "a consumer crashed while the broker was away"
    broker.start()
    ensure_topics(stack.settings)  # what `rtml up` does after starting Tansu (it forgets topics)
    away_producer.flush(timeout=60)
    away_producer.close()
    acked, send_errors = delivered(away_futures)
    restarts = 1
    try:
        produce(stack.settings, after)
    except AssertionError:
        if not tansu_partition_broken(broker):
            raise
        # Tansu 0.6.0's bug, not ours: a record that reached it before the topics were re-created
        # sits at offset 0, the re-created topic's first write goes there again, and from then on
        # every produce to that partition fails (UnknownError). Restart it once more, as an
        # operator would; the consumers meet a second restart (docs/reliability.md).
        broker.stop()
        broker.start()
        ensure_topics(stack.settings)
        restarts = 2
        produce(stack.settings, after)
    request_nothing(stack.settings)
    after_statuses = score(stack, after)
    wait_until("every event produced after the restart in the online store",
               lambda: stored_users(stack.settings, after) == count, explain=lambda: topic_census(stack.settings))
    post_logs = read_prediction_logs(stack.settings, {e["transaction_id"] for e in after})
    logged_after = {log.transaction_id for log in post_logs}
    # Our side is done once every answered request's log is acknowledged and none waits in the buffer.
    wait_until("every prediction log acknowledged by the broker", lambda: logs_acknowledged(stack) >= 3 * count)
    # What the restarted broker kept: Tansu acknowledges and discards what reaches it in the moment
    # between its restart and the topics' re-creation (docs/reliability.md), so of the records
    # acknowledged through the outage only those on the topic afterwards can be asked for.
    outage_logs = read_prediction_logs(stack.settings, {e["transaction_id"] for e in during}, timeout_s=10)
    logged_during = {log.transaction_id for log in outage_logs}
    acked_events = [sent_away[i] for i in acked]
    kept_events = kept_on_topic(stack.settings, acked_events)
    wait_until("every acknowledged event the broker kept in the online store",
               lambda: stored_users(stack.settings, kept_events) == len(kept_events),
               explain=lambda: topic_census(stack.settings))
    wait_until("the monitor consumes predictions after the restart",
               lambda: monitor_predictions(stack.monitor) >= seen_before + count)
    wait_until("the training service reads requests after the restart", lambda: training_counted_invalid(stack.training) >= 2)  # a read whose commit a rejoin refused is read again
    alive = {name: s.alive() for name, s in
             (("feature", stack.feature), ("monitor", stack.monitor), ("training", stack.training))}
    assert stack.inference.process is not None and stack.inference.process.poll() is None
    publish_figures("broker-outage", {
        "events_after_restart": count,
        "processed_after_restart": stored_users(stack.settings, after),
        "lost_after_restart": count - stored_users(stack.settings, after),
        "requests_during_outage": dict(during_statuses),
        "requests_after_restart": dict(after_statuses),
        "prediction_logs_after_restart": len(logged_after),
        "duplicate_prediction_logs_after_restart": len(post_logs) - len(logged_after),
        "prediction_logs_acknowledged": logs_acknowledged(stack),
        "prediction_logs_of_outage_requests_kept_by_broker": len(logged_during),
        "duplicate_prediction_logs_of_outage_requests": len(outage_logs) - len(logged_during),
        "prediction_logs_dropped": metric_total(stack.inference.url, "rtml_inference_prediction_log_dropped_total"),
        "events_sent_during_outage": count,
        "events_acknowledged_after_restart": len(acked),
        "events_reported_undelivered": dict(collections.Counter(send_errors)),
        "acknowledged_events_kept_by_broker": len(kept_events),
        "kept_events_processed": stored_users(stack.settings, kept_events),
        "services_alive": alive,
        "broker_restarts": restarts,
    })
    assert during_statuses == {200: count}, "scoring must not depend on the broker"
    assert after_statuses == {200: count}
    assert logged_after == {e["transaction_id"] for e in after}
    # The outage's own requests: each log waited in the buffer and was acknowledged exactly once
    # (read from a live /metrics: an unreachable one reads 0), none dropped, none left behind.
    assert logs_acknowledged(stack) == 3 * count
    assert metric_total(stack.inference.url, "rtml_inference_prediction_log_dropped_total") == 0
    assert metric_total(stack.inference.url, "rtml_inference_prediction_log_buffered") == 0
    assert len(outage_logs) == len(logged_during), "an outage request's log arrived twice"
    assert all(alive.values())
