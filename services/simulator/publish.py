"""Send a simulated stream to Kafka, optionally paced to a wall-clock rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kafka import KafkaProducer

from services.common.events import encode
from services.simulator.config import SimEvent

PROGRESS_EVERY = 1_000  # events between progress callbacks


class PublishError(RuntimeError):
    """The broker did not take some events (after the producer's own retries)."""


def publish(
    events: Iterable[SimEvent],
    producer: KafkaProducer,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send each event's JSON with its key; ``rate`` events/s (None = as fast as possible).

    Returns how many were sent; raises PublishError if the broker rejected any.
    """
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be greater than 0, got {rate}")
    failures: list[BaseException] = []
    started = time.monotonic()
    sent = 0
    for sim in events:
        if rate is not None:
            # Pace against the start, not the previous send, so rounding never accumulates.
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        future = producer.send(sim.topic, key=sim.key.encode("utf-8"), value=encode(sim.event))
        future.add_errback(failures.append)
        sent += 1
        if progress is not None and sent % PROGRESS_EVERY == 0:
            progress(sent)
    producer.flush()
    if failures:
        raise PublishError(f"{len(failures)} of {sent} events were not accepted by Kafka; first error: {failures[0]!r}")
    if progress is not None:
        progress(sent)
    return sent
