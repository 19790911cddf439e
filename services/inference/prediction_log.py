"""Sending prediction logs to rtml.predictions off the request path.

Requests only append to a bounded in-memory buffer; a background thread builds the
events and hands them to Kafka. While the broker is unreachable logs wait in the
buffer (and Kafka's own send retries); when the buffer is full the oldest are dropped
and counted, because answering payments matters more than the log of them.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaProducer

from services.common.events import PredictionLog, Topics
from services.common.kafka import make_producer
from services.common.settings import Settings

from .metrics import InferenceMetrics
from .scoring import Scored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingLog:
    scored: Scored
    latency_ms: float
    at: datetime

    def event(self) -> PredictionLog:
        s = self.scored
        return PredictionLog(
            transaction_id=s.transaction.transaction_id,
            request=s.transaction,
            features=dict[str, float | None](s.features),
            features_missing=s.features_missing,
            fraud_probability=s.fraud_probability,
            decision=s.decision,  # type: ignore[arg-type]
            model_version=s.model_version,
            latency_ms=max(0.0, self.latency_ms),
            timestamp=self.at,
        )


class PredictionLogger:
    def __init__(self, settings: Settings, metrics: InferenceMetrics, capacity: int = 50_000) -> None:
        self.settings = settings
        self.metrics = metrics
        self.capacity = capacity
        self._buffer: collections.deque[PendingLog] = collections.deque()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._producer: KafkaProducer | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._dropped_since_report = 0

    def start(self) -> PredictionLogger:
        self._thread.start()
        return self

    def submit(self, entries: list[PendingLog]) -> None:
        """Never blocks on Kafka; called from the request path."""
        with self._ready:
            self._buffer.extend(entries)
            overflow = len(self._buffer) - self.capacity
            for _ in range(max(0, overflow)):
                self._buffer.popleft()
            if overflow > 0:
                self.metrics.log_dropped.inc(overflow)
                self._dropped_since_report += overflow
            self.metrics.log_buffered.set(len(self._buffer))
            self._ready.notify()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _requeue(self, entry: PendingLog) -> None:
        with self._ready:
            if len(self._buffer) < self.capacity:
                self._buffer.appendleft(entry)
            else:
                self.metrics.log_dropped.inc()
                self._dropped_since_report += 1
            self.metrics.log_buffered.set(len(self._buffer))

    def _take(self, limit: int = 500) -> list[PendingLog]:
        with self._ready:
            if not self._buffer:
                self._ready.wait(timeout=0.5)
            batch = [self._buffer.popleft() for _ in range(min(limit, len(self._buffer)))]
            self.metrics.log_buffered.set(len(self._buffer))
            if self._dropped_since_report:
                log.warning("prediction logs dropped: buffer full", extra={"dropped": self._dropped_since_report})
                self._dropped_since_report = 0
            return batch

    def _connect(self) -> KafkaProducer | None:
        try:
            # Short blocking: while Kafka is away, logs wait in our buffer, not in a stuck send().
            return make_producer(self.settings, max_block_ms=2_000)
        except Exception as exc:
            log.warning("prediction log producer cannot connect; buffering", extra={"reason": str(exc), "buffered": self.buffered})
            return None

    def _send(self, producer: KafkaProducer, entry: PendingLog) -> None:
        def failed(exc: BaseException) -> None:
            self.metrics.log_send_errors.inc()
            log.warning("prediction log send failed; buffered again", extra={"reason": str(exc)})
            self._requeue(entry)

        def sent(_: Any) -> None:
            self.metrics.log_sent.inc()

        event = entry.event()
        future = producer.send(Topics.PREDICTIONS, key=event.transaction_id.encode(), value=event.to_json())
        future.add_callback(sent)
        future.add_errback(failed)

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch and self._stop.is_set():
                break
            if not batch:
                continue
            if self._producer is None:
                self._producer = self._connect()
                if self._producer is None:
                    for entry in reversed(batch):
                        self._requeue(entry)
                    self._stop.wait(1.0)
                    continue
            for i, entry in enumerate(batch):
                try:
                    self._send(self._producer, entry)
                except Exception as exc:  # metadata unavailable within max_block_ms: broker is away
                    self.metrics.log_send_errors.inc()
                    log.warning("prediction log send blocked; buffering", extra={"reason": str(exc)})
                    for pending in reversed(batch[i:]):
                        self._requeue(pending)
                    self._stop.wait(1.0)
                    break

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send what is buffered (within ``timeout_s``), then close the producer."""
        self._stop.set()
        with self._ready:
            self._ready.notify()
        self._thread.join(timeout=timeout_s)
        if self._producer is not None:
            self._producer.flush(timeout=timeout_s)
            self._producer.close(timeout=timeout_s)
        if self._buffer:
            log.warning("prediction logs not sent at shutdown", extra={"lost": len(self._buffer)})
