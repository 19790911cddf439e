"""500 malformed events mixed into good traffic through a real broker and the real feature service:
each one lands in rtml.dlq with its reason and its source coordinates, the service stays ready and
keeps processing, and no good event is lost (the store equals the backfill of the good events)."""

from __future__ import annotations

from typing import Any

import httpx

from services.common.events import Topics
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.demo.probes import metric_total
from services.features import names as n
from services.features.backfill import compute
from services.simulator import SimulatorConfig, generate, to_frames
from tests.feature.conftest import (
    ServiceProcess,
    assert_offline_equals_backfill,
    assert_online_equals_backfill,
    wait_caught_up,
)
from tests.feature.malformed import RawEvent, mix, read_topic, send_raw

MALFORMED = 500


def check_dead_letters(settings: Settings, sent: list[RawEvent], dlq: list[Any]) -> None:
    """Every malformed event is on the DLQ once (by dlq_id), bytes intact, with the right reason
    and headers naming the exact source record."""
    source = {(r.topic, r.partition, r.offset): r for t in (Topics.TRANSACTIONS, Topics.LABELS)
              for r in read_topic(settings, t)}
    expected = {e.key: e for e in sent if e.malformed}
    by_id: dict[str, Any] = {}
    for record in dlq:
        headers = {k: v.decode() for k, v in record.headers}
        by_id.setdefault(headers["dlq_id"], (record, headers))
    assert len(by_id) == len(expected) == MALFORMED, (len(by_id), len(expected))
    for dlq_id, (record, headers) in by_id.items():
        want = expected[record.key]
        coordinates = (headers["source_topic"], int(headers["source_partition"]), int(headers["source_offset"]))
        assert dlq_id == "/".join(map(str, coordinates))
        original = source[coordinates]
        assert (original.key, original.value, original.topic) == (record.key, want.value, want.topic)
        assert record.value == want.value, "the DLQ copy must carry the original bytes"
        reason = headers["reason"]
        assert reason.startswith(f"{want.field}:") and want.phrase in reason, (want.field, reason)


def test_malformed_events_are_dead_lettered_and_good_ones_kept(settings: Settings, service: ServiceProcess) -> None:
    good = list(generate(SimulatorConfig(events=3000, users=200, merchants=40, seed=21)))
    cut = len(good) * 2 // 3
    first = mix(good[:cut], MALFORMED, seed=5)
    producer = make_producer(settings, max_request_size=4 * 1024 * 1024)
    published = send_raw(producer, first)

    service.start()
    wait_caught_up(settings, service, published)
    ready = httpx.get(f"http://127.0.0.1:{settings.feature_port}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text

    # Good traffic after the malformed burst is still processed.
    rest = mix(good[cut:], 0, seed=0)
    published += send_raw(producer, rest)
    producer.close()
    wait_caught_up(settings, service, published)

    check_dead_letters(settings, first, read_topic(settings, Topics.DLQ))
    transactions, labels = to_frames(good)
    backfill = compute(transactions, labels)
    assert backfill.dropped_late == 0
    assert_online_equals_backfill(settings, backfill)
    assert_offline_equals_backfill(settings, backfill)
    check_freshness_metric(service, users=transactions["user_id"].nunique())
    assert service.stop() == 0


def check_freshness_metric(service: ServiceProcess, users: int) -> None:
    """Freshness is observed for each batch's newest row per user (the one online reads see): at
    least once per user, at most once per user row written (older rows of a batch went offline only)."""
    observed = metric_total(service.url, "rtml_feature_freshness_seconds_count")
    rows = metric_total(service.url, "rtml_feature_rows_written_total", view=n.USER_VIEW)
    assert users <= observed <= rows, (users, observed, rows)
    assert metric_total(service.url, "rtml_feature_freshness_seconds_sum") > 0
