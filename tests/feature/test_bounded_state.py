"""Code test: stage state is bounded by event time, never below what a fact still to come needs.
The label join forgets transactions older than the label horizon and expires labels whose
transaction never arrives while labels racing their transaction are still joined; the merchant
stage keeps a merchant's history until every upstream partition has passed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.events import Label, Transaction
from services.feature.label_join import LABEL_HORIZON_US, LabelJoin
from services.feature.state import MerchantState, Outcome, Watermarks
from services.features import aggregate as agg
from services.features import names as n
from services.features.aggregate import LATENESS_US, History, TxnFact

START = datetime(2026, 11, 1, tzinfo=UTC)


def txn(i: int, at: datetime, merchant: str | None = None) -> TxnFact:
    return TxnFact.of(Transaction(transaction_id=f"t-{i}", user_id=f"u-{i % 5}", merchant_id=merchant or f"m-{i % 3}",
                                  amount=10.0 + i, currency="EUR", country="DE", channel="web", timestamp=at))


def label(txn_id: str, at: datetime) -> Label:
    return Label(transaction_id=txn_id, is_fraud=False, timestamp=at)


def test_label_join_is_bounded_over_a_long_run() -> None:
    join = LabelJoin(txn_lows=Watermarks(frozenset({(0, 0)})), label_partitions={0})
    hours = 24 * 40  # 40 days, one transaction per hour, labelled a day later
    expired = []
    for h in range(hours):
        at = START + timedelta(hours=h)
        fact = txn(h, at)
        assert join.add_transaction(fact, (0, 0), fact.ts_us - LATENESS_US) is Outcome.NEW
        if h >= 24:
            assert join.add_label(label(f"t-{h - 24}", at), 0) in (Outcome.NEW, Outcome.DUPLICATE)
        if h % 50 == 0:  # a label for a transaction that never comes
            assert join.add_label(label(f"ghost-{h}", at), 0) is Outcome.PENDING
        if h % 10 == 0:  # a label arriving just before its transaction (another partition raced it)
            join.add_label(label(f"t-{h + 1}", at), 0)
        join.take_labels()
        expired += join.take_expired_labels()
    horizon_hours = LABEL_HORIZON_US // 3_600_000_000
    assert len(join.txn_merchant) <= horizon_hours + 2, len(join.txn_merchant)
    assert len(join.attributed) <= horizon_hours + 2, len(join.attributed)
    assert {p.label.transaction_id for p in expired} == {f"ghost-{h}" for h in range(0, hours - 2, 50)}
    assert len(join.pending_labels) <= 1
    assert all(p.value == b"" and p.partition == 0 for p in expired)


def test_label_waits_while_any_upstream_partition_lags() -> None:
    """A label's transaction may still come from a lagging user-stage partition: no expiry
    until every partition has reported past the label, on every partition of the stage."""
    join = LabelJoin(txn_lows=Watermarks(frozenset({(0, 0), (0, 1)})), label_partitions={0})
    at = START + timedelta(days=1)
    assert join.add_label(label("t-late", at), 0) is Outcome.PENDING
    ahead = txn(1, at + timedelta(days=2))
    join.add_transaction(ahead, (0, 0), ahead.ts_us - LATENESS_US)
    join.take_labels()
    assert not join.take_expired_labels(), "partition 1 has not reported: the label must wait"
    slow = txn(2, at - timedelta(hours=3))
    join.add_transaction(slow, (0, 1), slow.ts_us - LATENESS_US)
    join.take_labels()
    assert not join.take_expired_labels(), "partition 1 is behind the label: it must wait"
    late = TxnFact("t-late", "u-1", "m-9", agg.to_us(at) - 1, 5.0, "DE", None)
    assert join.add_transaction(late, (0, 1), late.ts_us - LATENESS_US) is Outcome.NEW
    labels, lows = join.take_labels()
    assert [(p, f.transaction_id, f.merchant_id) for p, f in labels] == [(0, "t-late", "m-9")]
    assert lows[0] <= labels[0][1].ts_us, "forwarded with a watermark at or below the label it carries"


def test_merchant_history_kept_until_the_slowest_partition_passes() -> None:
    """Partition 0 runs two days ahead of partition 1; partition 1's transactions then arrive
    late for the merchant. Rows must equal those computed from all events at once."""
    state = MerchantState(txn_lows=Watermarks(frozenset({(0, 0), (0, 1)})))
    fast = [txn(i, START + timedelta(hours=i), merchant="m-1") for i in range(48)]
    slow = [txn(100 + i, START + timedelta(hours=i, minutes=30), merchant="m-1") for i in range(48)]
    for fact in fast:
        state.add_transaction(fact, (0, 0), fact.ts_us - LATENESS_US)
        state.take_rows()
    first = slow[0]
    state.add_transaction(first, (0, 1), first.ts_us - LATENESS_US)
    rows = state.take_rows()[n.MERCHANT_VIEW]
    expected = agg.merchant_rows("m-1", History.of([*fast, first]), first.ts_us)
    assert rows == expected, "history behind the slowest partition was pruned too early"
    for fact in slow[1:]:
        state.add_transaction(fact, (0, 1), fact.ts_us - LATENESS_US)
        state.take_rows()
    kept = state.merchants["m-1"].ts[0]
    assert kept > START.timestamp() * 1e6, "history behind every partition minus the window is forgotten"
