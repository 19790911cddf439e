"""Window state of the feature service's stages: per-key histories and which rows need (re)writing.

Each stage owns the keys of its partitions (docs/features.md, Scaling): the user stage users
(rtml.transactions is keyed by user_id), the merchant stage merchants (rtml.merchant-events is
keyed by merchant_id); the label join lives in ``label_join.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from services.features import aggregate as agg
from services.features import names as n
from services.features.aggregate import History, LabelFact, Row, TxnFact

NEVER = -(2**62)  # a watermark no event time is below


class Outcome(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"  # a replayed or redelivered event: already counted, nothing to do
    TOO_LATE = "too_late"  # older than the user's watermark minus the allowed lateness
    PENDING = "pending"  # a label whose transaction has not been seen yet


@dataclass
class Watermarks:
    """The latest low watermark reported per source; ``slowest`` is what every expected source has
    passed, or NEVER until all of them have reported (nothing is forgotten before)."""

    expected: frozenset[Hashable] = frozenset()
    lows: dict[Hashable, int] = field(default_factory=dict)

    def report(self, source: Hashable, low_us: int) -> None:
        self.lows[source] = low_us

    def slowest(self) -> int:
        if not self.expected or not self.expected.issubset(self.lows):
            return NEVER
        return min(self.lows[s] for s in self.expected)


def batch_lows(progress: dict[int, int], facts: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Per source partition, a time no fact forwarded from now on is below: the partition's
    progress minus the allowed lateness (later events may be that late), lowered to the earliest
    fact of this batch (all of a batch's facts share one watermark)."""
    lows = {p: ts - agg.LATENESS_US for p, ts in progress.items()}
    for partition, ts_us in facts:
        lows[partition] = min(lows[partition], ts_us)
    return lows


@dataclass
class UserState:
    """The user stage: per-user histories of accepted transactions and the lateness gate."""

    users: dict[str, History[TxnFact]] = field(default_factory=dict)
    dirty: dict[str, int] = field(default_factory=dict)  # key -> earliest event time to (re)write
    progress: dict[int, int] = field(default_factory=dict)  # latest event time per partition

    def add_transaction(self, fact: TxnFact, partition: int) -> Outcome:
        self.progress[partition] = max(self.progress.get(partition, fact.ts_us), fact.ts_us)
        history = _history(self.users, fact.user_id)
        if fact.transaction_id in history.ids:
            return Outcome.DUPLICATE
        if not agg.is_within_lateness(history.watermark_us, fact.ts_us):
            return Outcome.TOO_LATE
        history.add(fact)
        mark(self.dirty, fact.user_id, fact.ts_us)
        return Outcome.NEW

    def take_rows(self) -> dict[str, list[Row]]:
        return {n.USER_VIEW: take_rows(self.users, self.dirty, agg.user_rows, agg.user_keep_after)}

    def clear_dirty(self) -> None:
        self.dirty.clear()

    def revisions(self, view: str, key: str) -> int:
        return self.users[key].revisions


@dataclass
class MerchantState:
    """The merchant stage: per-merchant transactions and attributed labels, from every source
    partition, pruned below the slowest source's low watermark."""

    merchants: dict[str, History[TxnFact]] = field(default_factory=dict)
    risks: dict[str, History[LabelFact]] = field(default_factory=dict)
    dirty_merchants: dict[str, int] = field(default_factory=dict)
    dirty_risks: dict[str, int] = field(default_factory=dict)
    # Sources are (merchant-events partition, contract partition): each partition of this stage
    # receives a source's facts in order, independently of the others.
    txn_lows: Watermarks = field(default_factory=Watermarks)
    label_lows: Watermarks = field(default_factory=Watermarks)

    def add_transaction(self, fact: TxnFact, source: Hashable, low_us: int) -> Outcome:
        self.txn_lows.report(source, low_us)
        return _add(self.merchants, self.dirty_merchants, fact)

    def add_label(self, fact: LabelFact, source: Hashable, low_us: int) -> Outcome:
        self.label_lows.report(source, low_us)
        return _add(self.risks, self.dirty_risks, fact)

    def take_rows(self) -> dict[str, list[Row]]:
        txn_low, label_low = self.txn_lows.slowest(), self.label_lows.slowest()
        return {
            n.MERCHANT_VIEW: take_rows(
                self.merchants, self.dirty_merchants, agg.merchant_rows, lambda _: txn_low - agg.WINDOW_24H_US
            ),
            n.MERCHANT_RISK_VIEW: take_rows(
                self.risks, self.dirty_risks, agg.merchant_risk_rows, lambda _: label_low - agg.WINDOW_30D_US
            ),
        }

    def clear_dirty(self) -> None:
        self.dirty_merchants.clear()
        self.dirty_risks.clear()

    def revisions(self, view: str, key: str) -> int:
        return (self.merchants if view == n.MERCHANT_VIEW else self.risks)[key].revisions  # type: ignore[index]


def _add(histories: dict[str, History[agg.F]], dirty: dict[str, int], fact: agg.F) -> Outcome:
    """Add a forwarded fact to its merchant's history; a re-forwarded one is a duplicate by id."""
    if not _history(histories, fact.merchant_id).add(fact):
        return Outcome.DUPLICATE
    mark(dirty, fact.merchant_id, fact.ts_us)
    return Outcome.NEW


def _history(histories: dict[str, History[agg.F]], key: str) -> History[agg.F]:
    """The key's history, created on first sight (``setdefault(key, History())`` would build and
    throw away a History for every event: 7 % of the user stage's time)."""
    history = histories.get(key)
    if history is None:
        history = histories[key] = History()
    return history


def mark(dirty: dict[str, int], key: str, ts_us: int) -> None:
    dirty[key] = min(dirty.get(key, ts_us), ts_us)


def take_rows(
    histories: dict[str, History[agg.F]],
    dirty: dict[str, int],
    rows_of: Callable[[str, History[agg.F], int], list[Row]],
    keep_after: Callable[[History[agg.F]], int],
) -> list[Row]:
    """The rows of every dirty key from its earliest changed time on; then forget what no future
    row needs."""
    out: list[Row] = []
    for key, since in dirty.items():
        history = histories[key]
        out.extend(rows_of(key, history, since))
        history.prune(keep_after(history))
    dirty.clear()
    return out
