"""The feature service's three stages; every instance runs all three, each in its own consumer
group, so each stage's partitions spread over the instances (docs/features.md, Scaling).

- user: rtml.transactions (key user_id) → user rows; forwards accepted transactions.
- label: rtml.labels + rtml.transaction-merchants (both key transaction_id, co-partitioned) →
  label-view rows; forwards labels attributed to their transaction's merchant.
- merchant: rtml.merchant-events (key merchant_id) → merchant and merchant-risk rows.
"""

from __future__ import annotations

from typing import ClassVar

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from services.common.events import EventError, InternalTopics, Label, Topics, Transaction, decode
from services.feature.label_join import LabelJoin
from services.feature.messages import FactBatch, forwards_of_labels, forwards_of_transactions
from services.feature.processor import Applied, StageOutput
from services.feature.state import MerchantState, Outcome, UserState, Watermarks, batch_lows
from services.features.aggregate import LATENESS_US, TxnFact


def _value(record: ConsumerRecord) -> bytes:
    return record.value if record.value is not None else b""


def _partitions(assigned: set[TopicPartition], topic: str) -> set[int]:
    return {tp.partition for tp in assigned if tp.topic == topic}


def _sources(partitions: set[int], upstream: int) -> Watermarks:
    """Watermarks expecting every upstream partition on every assigned partition."""
    return Watermarks(frozenset((p, s) for p in partitions for s in range(upstream)))


class UserStage:
    name: ClassVar[str] = "user"
    # The single-loop service's group: its committed rtml.transactions offsets stay valid.
    group: ClassVar[str] = "rtml-feature"
    topics: ClassVar[tuple[str, ...]] = (Topics.TRANSACTIONS,)

    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions  # of the internal topics it forwards to
        self.state = UserState()
        self.accepted: list[tuple[int, TxnFact]] = []

    def reset(self, assigned: set[TopicPartition]) -> None:
        self.state = UserState()
        self.accepted = []

    def apply(self, record: ConsumerRecord) -> Applied:
        try:
            fact = TxnFact.of(decode(Transaction, _value(record)))
        except EventError as exc:
            return [], str(exc)
        outcome = self.state.add_transaction(fact, record.partition)
        if outcome is Outcome.TOO_LATE:
            return [], f"timestamp: older than the user's latest event minus {LATENESS_US // 60_000_000} min"
        if outcome is Outcome.NEW:
            self.accepted.append((record.partition, fact))
        return [outcome], ""

    def take(self) -> StageOutput:
        accepted, self.accepted = self.accepted, []
        lows = batch_lows(self.state.progress, ((p, f.ts_us) for p, f in accepted))
        forwards = forwards_of_transactions(accepted, lows, self.partitions)
        return StageOutput(rows=self.state.take_rows(), forwards=forwards)

    def clear(self) -> None:
        self.state.clear_dirty()
        self.accepted = []

    def revisions(self, view: str, key: str) -> int:
        return self.state.revisions(view, key)


class LabelStage:
    name: ClassVar[str] = "label"
    group: ClassVar[str] = "rtml-feature-labels"
    topics: ClassVar[tuple[str, ...]] = (Topics.LABELS, InternalTopics.TRANSACTION_MERCHANTS)

    def __init__(self, transaction_partitions: int, partitions: dict[str, int]) -> None:
        self.transaction_partitions = transaction_partitions
        self.partitions = partitions  # of the internal topics it forwards to
        self.state = LabelJoin()

    def reset(self, assigned: set[TopicPartition]) -> None:
        self.state = LabelJoin(
            txn_lows=_sources(_partitions(assigned, InternalTopics.TRANSACTION_MERCHANTS), self.transaction_partitions),
            label_partitions=_partitions(assigned, Topics.LABELS),
        )

    def apply(self, record: ConsumerRecord) -> Applied:
        raw = _value(record)
        try:
            if record.topic == Topics.LABELS:
                return [self.state.add_label(decode(Label, raw), record.partition, record.offset, raw)], ""
            batch = decode(FactBatch, raw)
        except EventError as exc:
            return [], str(exc)
        if not batch.transactions:
            return [], "transactions: missing in a rtml.transaction-merchants record"
        source = (record.partition, batch.partition)
        return [self.state.add_transaction(fact, source, batch.low_us) for fact in batch.transactions], ""

    def take(self) -> StageOutput:
        labels, lows = self.state.take_labels()
        return StageOutput(
            labels=[fact for _, fact in labels],
            forwards=forwards_of_labels(labels, lows, self.partitions),
            expired=self.state.take_expired_labels(),
        )

    def clear(self) -> None:
        self.state.clear_dirty()

    def revisions(self, view: str, key: str) -> int:
        raise AssertionError(f"the label stage writes no {view} rows")


class MerchantStage:
    name: ClassVar[str] = "merchant"
    group: ClassVar[str] = "rtml-feature-merchant"
    topics: ClassVar[tuple[str, ...]] = (InternalTopics.MERCHANT_EVENTS,)

    def __init__(self, transaction_partitions: int, label_partitions: int) -> None:
        self.transaction_partitions = transaction_partitions
        self.label_partitions = label_partitions
        self.state = MerchantState()

    def reset(self, assigned: set[TopicPartition]) -> None:
        mine = _partitions(assigned, InternalTopics.MERCHANT_EVENTS)
        self.state = MerchantState(
            txn_lows=_sources(mine, self.transaction_partitions), label_lows=_sources(mine, self.label_partitions)
        )

    def apply(self, record: ConsumerRecord) -> Applied:
        try:
            batch = decode(FactBatch, _value(record))
        except EventError as exc:
            return [], str(exc)
        source = (record.partition, batch.partition)
        if batch.transactions:
            return [self.state.add_transaction(fact, source, batch.low_us) for fact in batch.transactions], ""
        return [self.state.add_label(fact, source, batch.low_us) for fact in batch.labels], ""

    def take(self) -> StageOutput:
        return StageOutput(rows=self.state.take_rows())

    def clear(self) -> None:
        self.state.clear_dirty()

    def revisions(self, view: str, key: str) -> int:
        return self.state.revisions(view, key)
