"""Following model changes: every replica reads rtml.model-events itself and polls the registry.

Each replica must see every event, so the consumer joins no group: it assigns itself
all partitions and starts at the end (older events are history; the registry pointer
says what the champion is now). Polling the registry covers events missed while the
broker was unreachable.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer, TopicPartition

from services.common.events import EventError, ModelEvent, Topics, decode
from services.common.kafka import make_reader
from services.common.settings import Settings

from .champion import ChampionSlot

log = logging.getLogger(__name__)


def _latest_consumer(settings: Settings) -> KafkaConsumer:
    consumer = make_reader(
        settings, "inference-model-events",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,  # how late a new event is seen
    )
    partitions = consumer.partitions_for_topic(Topics.MODEL_EVENTS)
    if not partitions:
        consumer.close()
        raise RuntimeError(f"topic {Topics.MODEL_EVENTS} does not exist yet")
    assigned = [TopicPartition(Topics.MODEL_EVENTS, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_end(*assigned)
    for tp in assigned:
        consumer.position(tp)  # resolve "end" now, so events published from here on are seen
    return consumer


class ModelWatcher:
    """A daemon thread switching the champion slot on model events and registry changes."""

    def __init__(self, settings: Settings, slot: ChampionSlot, registry_poll_s: float = 10.0) -> None:
        self.settings = settings
        self.slot = slot
        self.registry_poll_s = registry_poll_s
        self._stop = threading.Event()
        self._consumer: KafkaConsumer | None = None
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._next_poll = 0.0

    def connect(self) -> bool:
        """Subscribe now (start-up does this before reporting ready); False if Kafka is unreachable."""
        try:
            self._consumer = _latest_consumer(self.settings)
            return True
        except Exception as exc:
            log.warning("model events unavailable; relying on registry polling", extra={"reason": str(exc)})
            return False

    def start(self) -> ModelWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._consumer is not None:
            self._consumer.close(autocommit=False)

    def handle(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            event = decode(ModelEvent, raw)
        except EventError as exc:
            log.warning("ignoring malformed model event", extra={"reason": str(exc)})
            return
        if event.model_name != self.slot.name:
            return
        log.info("model event", extra={"event": event.event, "version": event.version})
        # An explicit event is a fresh decision, so a version refused before gets another try.
        self.slot.install(event.version, retry_rejected=True)

    def _poll_registry(self) -> None:
        if time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + self.registry_poll_s
        try:
            self.slot.follow_registry()
        except Exception:
            log.exception("registry poll failed; the current model keeps serving")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poll_registry()
            if self._consumer is None and not self.connect():
                self._stop.wait(min(5.0, self.registry_poll_s))
                continue
            assert self._consumer is not None
            try:
                polled = self._consumer.poll(timeout_ms=500)
            except Exception:
                log.exception("model event poll failed; reconnecting")
                self._consumer.close(autocommit=False)
                self._consumer = None
                continue
            for records in polled.values():
                for record in records:
                    self.handle(record.value)
