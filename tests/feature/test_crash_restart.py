"""SIGKILL of the feature service mid-stream, then a restart: the online and offline stores end
with the values of an uninterrupted run (the backfill of the same events, which the uninterrupted
run equals exactly), and dead letters redelivered after the crash carry the same dlq_id."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer

from services.common.events import Topics
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.features.backfill import compute
from services.simulator import SimulatorConfig, generate, to_frames
from tests.feature.conftest import (
    ServiceProcess,
    assert_offline_equals_backfill,
    assert_online_equals_backfill,
    committed_and_end,
    wait_caught_up,
)
from tests.feature.malformed import RawEvent, mix, read_topic, send_raw

MALFORMED = 40


def kill_mid_stream(settings: Settings, service: ServiceProcess, batches: int, limit_s: float = 200) -> int:
    """SIGKILL the service right after its ``batches``-th handled batch; returns the committed count.

    The signal is each batch's debug line in the service's log file ("batch handled", written after
    the store write and before the commit), read as the file grows: the service's own /metrics,
    the signal before, is answered by the busy process itself, and the committed offsets, the one
    before that, moved past the end between two reads."""
    deadline = time.monotonic() + limit_s
    seen = b""
    handled = 0
    with service.log.open("rb") as log:
        log.seek(0, 2)  # this start's lines only
        while time.monotonic() < deadline:
            assert service.alive(), service.log.read_text()[-3000:]
            chunk = log.read()
            # Whole lines only: a line may straddle two reads.
            complete, _, rest = (seen + chunk).rpartition(b"\n")
            handled += complete.count(b"batch handled")
            seen = rest
            if handled >= batches:
                service.kill()
                done, _ = committed_and_end(settings)
                return done
            time.sleep(0.002)
    raise AssertionError(f"the service handled {handled} of the {batches} batches to wait for")


def publish_paced(producer: KafkaProducer, events: Sequence[RawEvent], chunk: int = 500, pause_s: float = 0.1) -> None:
    for start in range(0, len(events), chunk):
        send_raw(producer, events[start : start + chunk])
        time.sleep(pause_s)


def dlq_groups(records: list[Any]) -> dict[str, set[tuple[bytes, bytes]]]:
    groups: dict[str, set[tuple[bytes, bytes]]] = {}
    for record in records:
        headers = dict(record.headers)
        groups.setdefault(headers["dlq_id"].decode(), set()).add((record.value, headers["reason"]))
    return groups


def test_sigkill_mid_stream_then_restart_matches_uninterrupted(settings: Settings, service: ServiceProcess) -> None:
    good = list(generate(SimulatorConfig(events=6000, users=300, merchants=50, seed=31)))
    raw = mix(good, MALFORMED, seed=8)

    # The stream is published while the service runs, paced over ~2 s (a backlog published before
    # its start drained during its readiness wait, and one published at full speed drained within a
    # few batches), and the service is killed after its eighth handled batch: some
    # batches are committed (the restart replays them), the killed one may be written and not
    # committed, and the rest of the stream arrives while it is down.
    service.extra_env["RTML_LOG_LEVEL"] = "DEBUG"  # the "batch handled" lines kill_mid_stream counts
    service.start()
    producer = make_producer(settings, max_request_size=4 * 1024 * 1024)
    publisher = threading.Thread(target=publish_paced, args=(producer, raw))
    publisher.start()
    at_kill = kill_mid_stream(settings, service, batches=8)
    publisher.join()
    producer.close()
    published = len(raw)
    assert 0 < at_kill < published, (at_kill, published)  # committed some (replayed at restart), not all

    del service.extra_env["RTML_LOG_LEVEL"]
    service.start()
    wait_caught_up(settings, service, published)

    transactions, labels = to_frames(good)
    backfill = compute(transactions, labels)
    assert_online_equals_backfill(settings, backfill)
    assert_offline_equals_backfill(settings, backfill)

    # Redelivered dead letters are exact copies under the same dlq_id: readers dedupe on it.
    groups = dlq_groups(read_topic(settings, Topics.DLQ))
    assert len(groups) == MALFORMED
    assert all(len(variants) == 1 for variants in groups.values())
    assert service.stop() == 0
