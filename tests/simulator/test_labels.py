"""Labels arrive after their transaction (hours to days later); a share never arrives."""

from __future__ import annotations

from datetime import timedelta

from services.common.events import Label, Transaction
from services.simulator import SimEvent, SimulatorConfig, generate


def test_labels_follow_their_transaction(drift_events: list[SimEvent]) -> None:
    seen: dict[str, tuple[int, Transaction]] = {}
    delays = []
    for position, sim in enumerate(drift_events):
        if isinstance(sim.event, Transaction):
            seen[sim.event.transaction_id] = (position, sim.event)
            continue
        label = sim.event
        assert isinstance(label, Label)
        txn_position, txn = seen[label.transaction_id]  # KeyError would mean a label before its transaction
        assert txn_position < position
        assert label.timestamp > txn.timestamp
        assert label.is_fraud == sim.is_fraud
        delays.append(label.timestamp - txn.timestamp)
    assert min(delays) >= timedelta(hours=1)
    assert max(delays) <= timedelta(days=10)
    assert sorted(delays)[len(delays) // 2] > timedelta(hours=6)


def test_some_labels_never_arrive(drift_events: list[SimEvent]) -> None:
    txns = {s.event.transaction_id for s in drift_events if isinstance(s.event, Transaction)}
    labelled = {s.event.transaction_id for s in drift_events if isinstance(s.event, Label)}
    assert labelled <= txns
    never = len(txns - labelled) / len(txns)
    assert 0.07 < never < 0.13  # label_share defaults to 0.9


def test_labels_interleave_with_later_transactions(drift_events: list[SimEvent]) -> None:
    last_txn = max(i for i, s in enumerate(drift_events) if isinstance(s.event, Transaction))
    labels_before_end = sum(1 for s in drift_events[:last_txn] if isinstance(s.event, Label))
    assert labels_before_end > 1_000


def test_label_share_is_configurable() -> None:
    events = list(generate(SimulatorConfig(events=3_000, seed=1, label_share=0.5)))
    labels = sum(1 for s in events if isinstance(s.event, Label))
    assert 1_300 < labels < 1_700
    assert not any(isinstance(s.event, Label) for s in generate(SimulatorConfig(events=500, label_share=0.0)))
