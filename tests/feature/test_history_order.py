"""A History fed events in any arrival order, with reads in between, holds exactly what the
backfill's bulk constructor builds from the same events (out-of-order events are merged lazily)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.features import aggregate as agg
from services.features.aggregate import History, TxnFact

MINUTE_US = 60_000_000


def fact(i: int, minute: int, amount: float) -> TxnFact:
    return TxnFact(f"t-{i:04d}", "u-1", f"m-{i % 3}", minute * MINUTE_US, amount, "DE", None)


events = st.lists(
    st.tuples(st.integers(0, 40), st.floats(0.01, 5_000, allow_nan=False, allow_infinity=False)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events=events, order=st.randoms(use_true_random=False), reads=st.sets(st.integers(0, 59)), replays=st.booleans())
def test_any_arrival_order_gives_the_bulk_history(
    events: list[tuple[int, float]], order: object, reads: set[int], replays: bool
) -> None:
    facts = [fact(i, minute, amount) for i, (minute, amount) in enumerate(events)]
    arrival = list(facts)
    order.shuffle(arrival)  # type: ignore[attr-defined]
    if replays:
        arrival += arrival[: len(arrival) // 2]  # redeliveries are no-ops
    history: History[TxnFact] = History()
    for k, f in enumerate(arrival):
        history.add(f)
        if k in reads:  # a read mid-stream merges what arrived so far
            last = max(history.ts)
            history.window_sum(0, len(history.facts))
            assert agg.user_row(history, last) == agg.user_row(History.of({f.fact_id: f for f in arrival[: k + 1]}.values()), last)
    bulk = History.of(facts)
    assert history.stamps_from(-(2**62)) == bulk.stamps_from(-(2**62))
    assert history.facts == bulk.facts
    assert history.ts == bulk.ts
    assert history.values == bulk.values
    assert history.window_sum(0, len(facts)) == bulk.window_sum(0, len(facts))
    assert history.prefix == bulk.prefix
    assert agg.user_rows("u-1", history, -(2**62)) == agg.user_rows("u-1", bulk, -(2**62))


@settings(max_examples=100, deadline=None)
@given(events=events, order=st.randoms(use_true_random=False), cut_minute=st.integers(0, 40))
def test_pruning_between_out_of_order_adds(events: list[tuple[int, float]], order: object, cut_minute: int) -> None:
    facts = [fact(i, minute, amount) for i, (minute, amount) in enumerate(events)]
    arrival = list(facts)
    order.shuffle(arrival)  # type: ignore[attr-defined]
    half = len(arrival) // 2
    history: History[TxnFact] = History()
    for f in arrival[:half]:
        history.add(f)
    history.prune(cut_minute * MINUTE_US)
    for f in arrival[half:]:
        history.add(f)
    kept = [f for f in arrival[:half] if f.ts_us > cut_minute * MINUTE_US] + arrival[half:]
    bulk = History.of(kept)
    assert history.stamps_from(-(2**62)) == bulk.stamps_from(-(2**62))
    assert history.facts == bulk.facts
    assert history.window_sum(0, len(kept)) == bulk.window_sum(0, len(kept))
    # Pruning drops the prefix sums' head, not their differences (what window sums read).
    assert [p - history.prefix[0] for p in history.prefix] == bulk.prefix
