"""The demo's traffic chunks: scored together, recorded after, so a user appears at most once per chunk."""

from __future__ import annotations

from services.common.events import Topics
from services.demo.traffic import _chunks
from services.simulator import SimulatorConfig, generate


def test_chunks_keep_the_order_and_hold_each_user_once() -> None:
    # Few users: many repeat within 64 events, so the cut really happens.
    events = list(generate(SimulatorConfig(events=3000, users=40, merchants=30, seed=5)))
    chunks = list(_chunks(events, 64))

    assert [e for c in chunks for e in c] == events  # nothing lost, reordered or duplicated
    assert all(0 < len(c) <= 64 for c in chunks)
    for chunk in chunks:
        users = [e.key for e in chunk if e.topic == Topics.TRANSACTIONS]
        assert len(users) == len(set(users))
    # Cut at repeats, not only at the size limit.
    assert sum(1 for c in chunks if len(c) < 64) > len(chunks) // 2
