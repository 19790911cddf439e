"""10,000 simulated transactions (plus their labels) through a real broker into the real
feature service: the Feast store ends equal to the backfill of the same events, exactly,
including out-of-order arrivals within the allowed lateness and rejected ones beyond it."""

from __future__ import annotations

import itertools
import random

from kafka import KafkaConsumer

from services.common.events import Topics, Transaction
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.features.aggregate import LATENESS_US, to_us
from services.features.backfill import compute
from services.simulator import SimEvent, SimulatorConfig, generate, publish, to_frames
from tests.feature.conftest import (
    ServiceProcess,
    assert_offline_equals_backfill,
    assert_online_equals_backfill,
    wait_caught_up,
)


def shuffle_within_lateness(events: list[SimEvent], seed: int) -> tuple[list[SimEvent], int, int]:
    """Delay some transactions past later ones of the same user: most within the allowed
    lateness (they must revise features), a few far beyond it (they must be rejected)."""
    rng = random.Random(seed)
    out = list(events)
    txn_positions: dict[str, list[int]] = {}
    for i, sim in enumerate(out):
        if isinstance(sim.event, Transaction):
            txn_positions.setdefault(sim.event.user_id, []).append(i)
    within = beyond = 0
    for positions in rng.sample(sorted(txn_positions.values(), key=len), k=min(300, len(txn_positions))):
        pairs = [(p, q) for p, q in itertools.pairwise(positions)
                 if 0 < to_us(out[q].event.timestamp) - to_us(out[p].event.timestamp) < LATENESS_US]
        if pairs:  # the earlier one arrives after the later one, but within the lateness
            p, q = pairs[0]
            out[p], out[q] = out[q], out[p]
            within += 1
        elif beyond < 20 and len(positions) >= 3:
            first, last = positions[0], positions[-1]
            if to_us(out[last].event.timestamp) - to_us(out[first].event.timestamp) > 2 * LATENESS_US:
                out.insert(last, out.pop(first))  # arrives after the user's last: beyond the lateness
                beyond += 1
    return out, within, beyond


def test_online_and_offline_equal_backfill(settings: Settings, service: ServiceProcess) -> None:
    events = list(generate(SimulatorConfig(events=10_000, users=400, merchants=60, seed=11)))
    events, within, beyond = shuffle_within_lateness(events, seed=3)
    assert within > 20 and beyond > 0, (within, beyond)
    producer = make_producer(settings)
    assert publish(events, producer) == len(events)
    producer.close()

    service.start()
    wait_caught_up(settings, service, len(events))

    transactions, labels = to_frames(events)
    backfill = compute(transactions, labels)
    assert 0 < backfill.dropped_late <= beyond
    assert_online_equals_backfill(settings, backfill)
    assert_offline_equals_backfill(settings, backfill)

    # Every rejected transaction is dead-lettered with the lateness reason, not lost.
    reader = KafkaConsumer(Topics.DLQ, bootstrap_servers=settings.bootstrap_servers,
                           auto_offset_reset="earliest", consumer_timeout_ms=3000)
    reasons = [dict(r.headers)["reason"].decode() for r in reader]
    reader.close()
    late = [r for r in reasons if r.startswith("timestamp: older than")]
    # Labels of the rejected transactions never find them: they expire to the DLQ too.
    orphans = [r for r in reasons if r.startswith("transaction_id: no transaction")]
    assert len(late) == backfill.dropped_late and len(late) + len(orphans) == len(reasons)
    assert len(orphans) <= backfill.dropped_late
    assert service.stop() == 0
