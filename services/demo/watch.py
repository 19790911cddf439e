"""Follows the control topics (training requests, model events) the way an operator's dashboard would."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from kafka import TopicPartition

from services.common.events import EventError, ModelEvent, Topics, TrainingRequest, decode
from services.common.kafka import make_reader
from services.common.settings import Settings


@dataclass
class Seen:
    requests: list[tuple[float, TrainingRequest]] = field(default_factory=list)  # (monotonic time, event), one per id
    redelivered: int = 0  # request records seen again under an id already seen
    model_events: list[tuple[float, ModelEvent]] = field(default_factory=list)


class ControlTopicWatcher:
    """Reads rtml.training-requests and rtml.model-events from the beginning, without a consumer group."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen = Seen()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control-topic-watcher", daemon=True)

    def start(self) -> ControlTopicWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        consumer = make_reader(self.settings, "demo-watch")
        try:
            partitions = [
                TopicPartition(topic, p)
                for topic in (Topics.TRAINING_REQUESTS, Topics.MODEL_EVENTS)
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            while not self._stop.is_set():
                for tp, records in consumer.poll(timeout_ms=300).items():
                    for record in records:
                        self._record(tp.topic, record.value)
        finally:
            consumer.close()

    def _record(self, topic: str, raw: bytes) -> None:
        now = time.monotonic()
        try:
            if topic == Topics.TRAINING_REQUESTS:
                request = decode(TrainingRequest, raw)
                with self.lock:
                    # Publishing is at-least-once: a request whose ack timed out is sent again with the
                    # same id. One id is one request, as the training service counts them too.
                    if any(r.request_id == request.request_id for _, r in self.seen.requests):
                        self.seen.redelivered += 1
                    else:
                        self.seen.requests.append((now, request))
            else:
                event = decode(ModelEvent, raw)
                with self.lock:
                    self.seen.model_events.append((now, event))
        except EventError:
            pass  # not ours to judge; the services dead-letter or count what they cannot read

    def monitor_requests(self) -> list[tuple[float, TrainingRequest]]:
        with self.lock:
            return [(t, r) for t, r in self.seen.requests if r.requested_by == "monitor"]

    def redeliveries(self) -> int:
        with self.lock:
            return self.seen.redelivered

    def promotions(self) -> list[tuple[float, ModelEvent]]:
        with self.lock:
            return [(t, e) for t, e in self.seen.model_events if e.event == "promoted"]
