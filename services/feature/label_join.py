"""The label stage's state: attributing each label to its transaction's merchant.

rtml.labels and rtml.transaction-merchants are both keyed by transaction_id with the same
partition count, so a label and its transaction's record share a partition number and the range
assignor gives both to the same member: the join needs no other partition.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from services.common.events import Label
from services.feature.state import NEVER, Outcome, Watermarks, batch_lows
from services.features import aggregate as agg
from services.features.aggregate import LabelFact, TxnFact

# Labels arrive up to 240 h after their transaction (the simulator's longest chargeback delay;
# the monitor waits 264 h too): older transactions are forgotten by the label join.
LABEL_HORIZON_US = 264 * 3600 * 1_000_000
# A label waits this much event time (on the slowest transaction partition) past its own time
# for its transaction, which is always earlier; then it is dead-lettered.
PENDING_LABEL_WAIT_US = 2 * agg.LATENESS_US


@dataclass(frozen=True)
class Pending:
    """A label waiting for its transaction, with its source record for the dead letter."""

    label: Label
    partition: int
    offset: int
    value: bytes
    ts_us: int  # the label's event time, converted once (every batch reads it)


@dataclass
class LabelJoin:
    """Transactions seen (bounded by the label horizon), labels waiting for theirs, and the labels
    attributed since the last batch."""

    txn_merchant: dict[str, tuple[str, int]] = field(default_factory=dict)  # txn id -> (merchant, time)
    attributed: set[str] = field(default_factory=set)  # txn ids already labelled (first label wins)
    pending_labels: dict[str, Pending] = field(default_factory=dict)
    # Min-heaps by event time that bound the maps above (trimmed in take_labels).
    txn_times: list[tuple[int, str]] = field(default_factory=list)
    pending_times: list[tuple[int, str]] = field(default_factory=list)
    expired_labels: list[Pending] = field(default_factory=list)
    new_labels: list[tuple[int, LabelFact]] = field(default_factory=list)  # (rtml.labels partition, fact)
    # Sources (transaction-merchants partition, rtml.transactions partition): how far each
    # upstream partition has got, as seen on each partition of this stage.
    txn_lows: Watermarks = field(default_factory=Watermarks)
    label_progress: dict[int, int] = field(default_factory=dict)  # latest label time per partition
    label_partitions: set[int] = field(default_factory=set)  # assigned; set by the rebuilder

    def add_transaction(self, fact: TxnFact, source: tuple[int, int], low_us: int) -> Outcome:
        self.txn_lows.report(source, low_us)
        if fact.transaction_id in self.txn_merchant:
            return Outcome.DUPLICATE
        self.txn_merchant[fact.transaction_id] = (fact.merchant_id, fact.ts_us)
        heapq.heappush(self.txn_times, (fact.ts_us, fact.transaction_id))
        waiting = self.pending_labels.pop(fact.transaction_id, None)
        if waiting is not None:
            self._attribute(waiting.label, waiting.partition, fact.merchant_id)
        return Outcome.NEW

    def add_label(self, label: Label, partition: int, offset: int = -1, value: bytes = b"") -> Outcome:
        ts_us = agg.to_us(label.timestamp)
        self.label_progress[partition] = max(self.label_progress.get(partition, ts_us), ts_us)
        if label.transaction_id in self.attributed:
            return Outcome.DUPLICATE
        known = self.txn_merchant.get(label.transaction_id)
        if known is None:
            # Labels race their transaction, which goes through the user stage first.
            if label.transaction_id not in self.pending_labels:
                self.pending_labels[label.transaction_id] = Pending(label, partition, offset, value, ts_us)
                heapq.heappush(self.pending_times, (ts_us, label.transaction_id))
            return Outcome.PENDING
        self._attribute(label, partition, known[0])
        return Outcome.NEW

    def _attribute(self, label: Label, partition: int, merchant_id: str) -> None:
        self.attributed.add(label.transaction_id)
        self.new_labels.append((partition, LabelFact.of(label, merchant_id)))

    def take_labels(self) -> tuple[list[tuple[int, LabelFact]], dict[int, int]]:
        """Labels attributed since the last call with their source partition, the low watermark
        per rtml.labels partition to forward them with; then trim the join."""
        labels, self.new_labels = self.new_labels, []
        if not labels:
            self._trim()
            return [], {}
        lows = batch_lows(self.label_progress, ((p, f.ts_us) for p, f in labels))
        # A waiting label is attributed later with its own (older) time.
        for waiting in self.pending_labels.values():
            held = lows.get(waiting.partition)
            if held is None or waiting.ts_us < held:
                lows[waiting.partition] = waiting.ts_us
        self._trim()
        return labels, lows

    def _trim(self) -> None:
        """Forget transactions no label can still name, and expire labels whose transaction
        never came (``expired_labels``, for the dead-letter queue). Runs on live batches only,
        never during a replay, so a replay's cross-partition order cannot expire a label."""
        label_partitions = self.label_partitions
        if label_partitions and label_partitions.issubset(self.label_progress):
            horizon = min(self.label_progress[p] for p in label_partitions) - LABEL_HORIZON_US - agg.LATENESS_US
            while self.txn_times and self.txn_times[0][0] < horizon:
                _, txn_id = heapq.heappop(self.txn_times)
                self.txn_merchant.pop(txn_id, None)
                self.attributed.discard(txn_id)
        slowest = self.txn_lows.slowest()
        if slowest == NEVER:
            return
        # slowest is a partition's progress minus the lateness: wait as long as before the split.
        give_up = slowest + agg.LATENESS_US - PENDING_LABEL_WAIT_US
        while self.pending_times and self.pending_times[0][0] < give_up:
            _, txn_id = heapq.heappop(self.pending_times)
            expired = self.pending_labels.pop(txn_id, None)
            if expired is not None:
                self.expired_labels.append(expired)

    def take_expired_labels(self) -> list[Pending]:
        expired, self.expired_labels = self.expired_labels, []
        return expired

    def clear_dirty(self) -> None:
        """Forget what a replay attributed (it was written and forwarded before)."""
        self.new_labels.clear()
