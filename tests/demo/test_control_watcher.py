"""The demo's control-topic watcher against a real broker: one request id is one request."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from services.common.events import Topics, TrainingRequest
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings
from services.demo.watch import ControlTopicWatcher


def _request(request_id: str, attempt: int, requested_by: str = "monitor") -> TrainingRequest:
    return TrainingRequest(
        request_id=request_id,
        reason="quality",
        evidence={"model_version": "v0001", "attempt": attempt},
        requested_by=requested_by,
        timestamp=datetime.now(UTC),
    )


def test_a_request_published_twice_counts_once(settings: Settings) -> None:
    ensure_topics(settings)
    tag = uuid.uuid4().hex[:8]
    first, again, other, operator = f"monitor-{tag}-1", f"monitor-{tag}-1", f"monitor-{tag}-2", f"ops-{tag}"
    producer = make_producer(settings)
    try:
        # As the monitor does when an ack times out: the same id sent again, then a later episode.
        for request in (_request(first, 1), _request(again, 2), _request(other, 1), _request(operator, 1, "ops")):
            producer.send(Topics.TRAINING_REQUESTS, key=b"quality", value=request.to_json()).get(30)
    finally:
        producer.close()

    watcher = ControlTopicWatcher(settings).start()
    try:
        deadline = time.monotonic() + 30
        ours: list[TrainingRequest] = []
        while time.monotonic() < deadline:
            ours = [r for _, r in watcher.monitor_requests() if tag in r.request_id]
            if len(ours) == 2 and watcher.redeliveries() >= 1:
                break
            time.sleep(0.2)
        assert [r.request_id for r in ours] == [first, other]
        assert ours[0].evidence["attempt"] == 1  # the first record of an id is the one kept
        assert watcher.redeliveries() >= 1
    finally:
        watcher.stop()
