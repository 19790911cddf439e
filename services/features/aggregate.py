"""The single definition of every stored feature, computed from a key's ordered events.

The streaming feature service and the offline backfill both call these functions,
so their values agree exactly. A row at time ``t`` depends only on the *set* of
accepted events inside its windows (sums use ``math.fsum``, which is correctly
rounded and therefore independent of summation order or of how much older history a
caller happens to keep), never on arrival order.

Out-of-order events: a transaction is accepted when its timestamp is no older than
its user's watermark (latest event time seen so far) minus ``ALLOWED_LATENESS``.
Accepted late events revise the rows at and after their timestamp; callers rewrite
those rows (same event time, newer created time). Events beyond the lateness are
rejected (the feature service dead-letters them with a reason).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any, Generic, Protocol, TypeVar

from services.common.events import Label, Transaction
from services.features import names as n

ALLOWED_LATENESS = timedelta(minutes=30)

_US = 1_000_000
WINDOW_10M_US = 10 * 60 * _US
WINDOW_1H_US = 3600 * _US
WINDOW_24H_US = 24 * 3600 * _US
WINDOW_30D_US = 30 * 24 * 3600 * _US
LATENESS_US = int(ALLOWED_LATENESS.total_seconds()) * _US

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

Row = dict[str, Any]


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch: integer time so window edges compare exactly."""
    return (moment - _EPOCH) // _ONE_US  # exact: timedelta floor division is integer arithmetic


def from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def is_null(value: object) -> bool:
    """A feature value that is absent: None, or NaN as pandas and Feast reads give it."""
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, slots=True)
class TxnFact:
    """What feature computation needs from one transaction."""

    transaction_id: str
    user_id: str
    merchant_id: str
    ts_us: int
    amount: float
    country: str
    device_id: str | None

    @property
    def fact_id(self) -> str:
        return self.transaction_id

    @classmethod
    def of(cls, txn: Transaction) -> TxnFact:
        return cls(
            txn.transaction_id,
            txn.user_id,
            txn.merchant_id,
            to_us(txn.timestamp),
            txn.amount,
            txn.country,
            txn.device_id,
        )


@dataclass(frozen=True, slots=True)
class LabelFact:
    """A label attributed to the merchant of its transaction, at the label's own time."""

    transaction_id: str
    merchant_id: str
    ts_us: int
    is_fraud: bool

    @property
    def fact_id(self) -> str:
        return self.transaction_id

    @classmethod
    def of(cls, label: Label, merchant_id: str) -> LabelFact:
        return cls(label.transaction_id, merchant_id, to_us(label.timestamp), label.is_fraud)


class Fact(Protocol):
    @property
    def fact_id(self) -> str: ...

    @property
    def ts_us(self) -> int: ...


F = TypeVar("F", TxnFact, LabelFact)


# Every finite double is an integer multiple of 2**-1074, so scaled amounts add exactly;
# int / int true division then rounds correctly, giving exactly math.fsum's result.
_EXACT_SCALE = 1 << 1074


def _exact(fact: TxnFact | LabelFact) -> int:
    if isinstance(fact, LabelFact):
        return int(fact.is_fraud)
    num, den = fact.amount.as_integer_ratio()
    return num * (_EXACT_SCALE // den)


def exact_float(total: int) -> float:
    return total / _EXACT_SCALE


@dataclass
class History(Generic[F]):
    """One key's accepted events sorted by (time, id), without duplicates (replays are no-ops).

    Events that arrive out of order (merchant events interleave across source partitions) are
    appended unsorted and merged into place once, at the next read (``settle``, which every
    reader calls first): inserting each one where it belongs cost a keyed bisect and three list
    inserts per event, 31 % of the merchant stage (docs/benchmarks.md, Feature ingestion)."""

    facts: list[F] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    watermark_us: int = -(2**62)  # latest event time ever seen, kept across pruning
    # Adds that changed an already-written row; Redis keeps a row only when its time is
    # newer, so online writes are stamped event time + revisions microseconds.
    revisions: int = 0
    # prefix[i] = exact sum of _exact over facts[:i] (amounts, or fraud flags for labels), valid
    # up to index ``stale_from``: a merge of out-of-order events only marks it stale, and the
    # next window sum rebuilds it once per batch.
    prefix: list[int] = field(default_factory=lambda: [0])
    values: list[int] = field(default_factory=list)  # _exact of each fact, computed once
    stale_from: int | None = None
    # facts[unsorted_from:] were appended out of order and are not merged yet.
    unsorted_from: int | None = None

    @classmethod
    def of(cls, facts: Iterable[F]) -> History[F]:
        """A history of already-accepted facts (the backfill's bulk constructor)."""
        history: History[F] = cls()
        ordered = sorted(facts, key=lambda f: (f.ts_us, f.fact_id))
        history.facts = ordered
        history.ts = [f.ts_us for f in ordered]
        history.ids = {f.fact_id for f in ordered}
        history.values = [_exact(f) for f in ordered]
        history.stale_from = 0
        history._refresh_prefix()
        return history

    def settle(self) -> None:
        """Merge the facts appended out of order into the sorted ones (one sort of the tail
        they reach into, which timsort does in about linear time: two sorted runs)."""
        cut = self.unsorted_from
        if cut is None:
            return
        self.unsorted_from = None
        facts, ts, values = self.facts, self.ts, self.values
        start = bisect_left(ts, min(ts[cut:]), 0, cut)
        # (time, id) is unique per fact, so the sort never compares the facts themselves.
        tail = sorted(zip(ts[start:], (f.fact_id for f in facts[start:]), facts[start:], values[start:], strict=True))
        facts[start:] = [t[2] for t in tail]
        ts[start:] = [t[0] for t in tail]
        values[start:] = [t[3] for t in tail]
        self.stale_from = start if self.stale_from is None else min(self.stale_from, start)

    def _refresh_prefix(self) -> None:
        self.settle()
        if self.stale_from is None:
            return
        start, self.stale_from = self.stale_from, None
        running = self.prefix[start]
        del self.prefix[start:]
        self.prefix.extend(accumulate(self.values[start:], initial=running))  # starts with ``running``

    def window_sum(self, lo: int, hi: int) -> int:
        self._refresh_prefix()
        return self.prefix[hi] - self.prefix[lo]

    def add(self, fact: F) -> bool:
        """Insert ``fact``; False when it was already there."""
        fact_id = fact.fact_id
        if fact_id in self.ids:
            return False
        self.ids.add(fact_id)
        value = _exact(fact)
        ts_us = fact.ts_us
        facts = self.facts
        in_order = self.unsorted_from is None and (
            not facts or ts_us > self.ts[-1] or (ts_us == self.ts[-1] and fact_id >= facts[-1].fact_id)
        )
        if not in_order and self.unsorted_from is None:
            self.unsorted_from = len(facts)
        facts.append(fact)
        self.ts.append(ts_us)
        self.values.append(value)
        # Out of order, the prefix stops here; settle marks it stale from where the merge starts.
        if in_order and self.stale_from is None:
            self.prefix.append(self.prefix[-1] + value)
        if ts_us <= self.watermark_us:
            self.revisions += 1
        else:
            self.watermark_us = ts_us
        return True

    def prune(self, keep_after_us: int) -> None:
        """Forget events at or before ``keep_after_us`` (no future row can need them)."""
        self.settle()
        cut = bisect_right(self.ts, keep_after_us)
        if cut:
            self._refresh_prefix()
            for fact in self.facts[:cut]:
                self.ids.discard(fact.fact_id)
            del self.facts[:cut]
            del self.ts[:cut]
            del self.values[:cut]
            del self.prefix[:cut]

    def stamps_from(self, since_us: int) -> list[int]:
        """Distinct event times at or after ``since_us``: one stored row each."""
        self.settle()
        start = bisect_right(self.ts, since_us - 1)
        out: list[int] = []
        for stamp in self.ts[start:]:
            if not out or out[-1] != stamp:
                out.append(stamp)
        return out


def is_within_lateness(watermark_us: int, ts_us: int) -> bool:
    """True when an event at ``ts_us`` may still revise features (see ALLOWED_LATENESS)."""
    return ts_us >= watermark_us - LATENESS_US


# ---------------------------------------------------------------- user features


@dataclass(frozen=True, slots=True)
class _UserColumns:
    """A settled user history's facts as columns, built once per call so every row's windows are
    list slices and C-level set/max calls: per-row comprehensions over the facts were 18 % of the
    user stage (docs/benchmarks.md, Feature ingestion)."""

    amounts: list[float]
    merchants: list[str]
    countries: list[str]
    devices: list[str | None]

    @classmethod
    def of(cls, history: History[TxnFact]) -> _UserColumns:
        history.settle()
        facts = history.facts
        return cls(
            [f.amount for f in facts],
            [f.merchant_id for f in facts],
            [f.country for f in facts],
            [f.device_id for f in facts],
        )


def _user_row(history: History[TxnFact], columns: _UserColumns, at_us: int) -> Row:
    ts = history.ts
    hi = bisect_right(ts, at_us)
    lo30d = bisect_right(ts, at_us - WINDOW_30D_US, 0, hi)
    lo24h = bisect_right(ts, at_us - WINDOW_24H_US, lo30d, hi)
    lo1h = bisect_right(ts, at_us - WINDOW_1H_US, lo24h, hi)
    lo10m = bisect_right(ts, at_us - WINDOW_10M_US, lo1h, hi)
    if hi == lo30d:
        raise ValueError(f"no event at or before {at_us} in the user's 30-day history")
    amounts = columns.amounts[lo24h:hi]
    count = hi - lo24h
    total = exact_float(history.window_sum(lo24h, hi))
    mean = total / count
    devices = set(columns.devices[lo30d:hi])
    devices.discard(None)
    return {
        n.USER_TXN_COUNT_10M: hi - lo10m,
        n.USER_TXN_COUNT_1H: hi - lo1h,
        n.USER_TXN_COUNT_24H: count,
        n.USER_AMOUNT_SUM_24H: total,
        n.USER_AMOUNT_MEAN_24H: mean,
        # Population deviation: defined (0.0) for a single transaction.
        n.USER_AMOUNT_STD_24H: math.sqrt(math.fsum([(a - mean) ** 2 for a in amounts]) / count),
        n.USER_AMOUNT_MAX_24H: max(amounts),
        n.USER_DISTINCT_MERCHANTS_24H: len(set(columns.merchants[lo24h:hi])),
        n.USER_DISTINCT_COUNTRIES_24H: len(set(columns.countries[lo24h:hi])),
        n.USER_AMOUNT_MEAN_30D: exact_float(history.window_sum(lo30d, hi)) / (hi - lo30d),
        n.USER_LAST_TXN_EPOCH_S: ts[hi - 1] / _US,
        n.USER_COUNTRIES_30D: sorted(set(columns.countries[lo30d:hi])),
        n.USER_DEVICES_30D: sorted(devices),  # type: ignore[type-var]  # None discarded above
    }


def user_row(history: History[TxnFact], at_us: int) -> Row:
    """Stored user features at ``at_us``: every accepted event with time <= at_us counts."""
    return _user_row(history, _UserColumns.of(history), at_us)


def user_rows(user_id: str, history: History[TxnFact], since_us: int) -> list[Row]:
    """Rows (key, event time, features) for every stamp at or after ``since_us``."""
    stamps = history.stamps_from(since_us)
    columns = _UserColumns.of(history)
    return [{n.USER_JOIN_KEY: user_id, n.EVENT_TIMESTAMP: stamp, **_user_row(history, columns, stamp)} for stamp in stamps]


def user_keep_after(history: History[TxnFact]) -> int:
    """Events at or before this time can no longer fall inside any row a late event revises."""
    return history.watermark_us - LATENESS_US - WINDOW_30D_US


# ------------------------------------------------------------ merchant features


def merchant_row(history: History[TxnFact], at_us: int) -> Row:
    history.settle()
    ts = history.ts
    hi = bisect_right(ts, at_us)
    lo24h = bisect_right(ts, at_us - WINDOW_24H_US, 0, hi)
    if hi == lo24h:
        raise ValueError(f"no merchant event at or before {at_us} in its 24-hour history")
    return {
        n.MERCHANT_TXN_COUNT_24H: hi - lo24h,
        n.MERCHANT_AMOUNT_MEAN_24H: exact_float(history.window_sum(lo24h, hi)) / (hi - lo24h),
    }


def merchant_rows(merchant_id: str, history: History[TxnFact], since_us: int) -> list[Row]:
    return [
        {n.MERCHANT_JOIN_KEY: merchant_id, n.EVENT_TIMESTAMP: stamp, **merchant_row(history, stamp)}
        for stamp in history.stamps_from(since_us)
    ]


def merchant_keep_after(history: History[TxnFact]) -> int:
    # Merchant events come from every partition, so they are out of order by the skew
    # between partitions too; twice the lateness is the margin we keep for that.
    return history.watermark_us - 2 * LATENESS_US - WINDOW_24H_US


def merchant_risk_row(history: History[LabelFact], at_us: int) -> Row:
    history.settle()
    ts = history.ts
    hi = bisect_right(ts, at_us)
    lo30d = bisect_right(ts, at_us - WINDOW_30D_US, 0, hi)
    labelled = hi - lo30d
    if labelled == 0:
        raise ValueError(f"no label at or before {at_us} in the merchant's 30-day history")
    frauds = history.window_sum(lo30d, hi)
    return {n.MERCHANT_FRAUD_RATE_30D: frauds / labelled, n.MERCHANT_LABELLED_COUNT_30D: labelled}


def merchant_risk_rows(merchant_id: str, history: History[LabelFact], since_us: int) -> list[Row]:
    return [
        {n.MERCHANT_JOIN_KEY: merchant_id, n.EVENT_TIMESTAMP: stamp, **merchant_risk_row(history, stamp)}
        for stamp in history.stamps_from(since_us)
    ]


def merchant_risk_keep_after(history: History[LabelFact]) -> int:
    return history.watermark_us - 2 * LATENESS_US - WINDOW_30D_US


def latest_per_stamp(rows: Iterable[Row], key: str) -> list[Row]:
    """Collapse revisions: the last row written per (key, event time) is the valid one."""
    latest: dict[tuple[str, int], Row] = {}
    for row in rows:
        latest[(row[key], row[n.EVENT_TIMESTAMP])] = row
    return list(latest.values())


def ordered(rows: Sequence[Row], key: str) -> list[Row]:
    return sorted(rows, key=lambda r: (r[key], r[n.EVENT_TIMESTAMP]))
