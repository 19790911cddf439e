"""Live model quality: predictions joined with their late labels, scored over a sliding window."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

# Decisions that stop or hold a payment count as "flagged as fraud" for precision and recall.
FLAGGING_DECISIONS = frozenset({"review", "decline"})


@dataclass(frozen=True)
class Scored:
    """What the label join keeps of one prediction."""

    transaction_id: str
    model_version: str
    score: float
    flagged: bool
    event_time: datetime  # the transaction's own time: labels are stamped on the same clock


@dataclass(frozen=True)
class Outcome:
    """A prediction whose truth is now known."""

    scored: Scored
    is_fraud: bool


@dataclass(frozen=True)
class _EarlyLabel:
    is_fraud: bool
    event_time: datetime


class LabelJoin:
    """Predictions waiting for their label, and labels that arrived before their prediction.

    Bounded two ways: entries older than ``ttl`` behind the newest event time seen are
    dropped (most labels never come), and each side holds at most ``capacity`` entries.
    Transaction ids already joined are remembered (bounded too), so a redelivered
    prediction or label after a restart is not counted twice.
    """

    def __init__(self, ttl: timedelta, capacity: int) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.pending: OrderedDict[str, Scored] = OrderedDict()
        self.early: OrderedDict[str, _EarlyLabel] = OrderedDict()
        self.joined_ids: OrderedDict[str, None] = OrderedDict()
        self.watermark: datetime | None = None
        self.expired_predictions = 0
        self.expired_labels = 0
        self.duplicates = 0

    def add_prediction(self, scored: Scored) -> Outcome | None:
        self._advance(scored.event_time)
        if scored.transaction_id in self.joined_ids:
            self.duplicates += 1
            return None
        label = self.early.pop(scored.transaction_id, None)
        if label is not None:
            return self._joined(scored, label.is_fraud)
        if scored.transaction_id in self.pending:
            self.duplicates += 1  # redelivered before its label came: keep one
        self.pending[scored.transaction_id] = scored
        self.pending.move_to_end(scored.transaction_id)
        self._expire()
        return None

    def add_label(self, transaction_id: str, is_fraud: bool, event_time: datetime) -> Outcome | None:
        self._advance(event_time)
        if transaction_id in self.joined_ids:
            self.duplicates += 1
            return None
        scored = self.pending.pop(transaction_id, None)
        if scored is not None:
            return self._joined(scored, is_fraud)
        if transaction_id in self.early:
            self.duplicates += 1  # redelivered (or corrected) before its prediction came: the newest wins
        self.early[transaction_id] = _EarlyLabel(is_fraud, event_time)
        self._expire()
        return None

    def _joined(self, scored: Scored, is_fraud: bool) -> Outcome:
        self.joined_ids[scored.transaction_id] = None
        while len(self.joined_ids) > self.capacity:
            self.joined_ids.popitem(last=False)
        return Outcome(scored, is_fraud)

    def _advance(self, moment: datetime) -> None:
        if self.watermark is None or moment > self.watermark:
            self.watermark = moment

    def _expire(self) -> None:
        assert self.watermark is not None
        horizon = self.watermark - self.ttl
        # Insertion order is close to event-time order, so the oldest sit at the front.
        while self.pending and (
            len(self.pending) > self.capacity or next(iter(self.pending.values())).event_time < horizon
        ):
            self.pending.popitem(last=False)
            self.expired_predictions += 1
        while self.early and (len(self.early) > self.capacity or next(iter(self.early.values())).event_time < horizon):
            self.early.popitem(last=False)
            self.expired_labels += 1


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """Area under the precision-recall curve as average precision (step-wise, ties grouped)."""
    positives = int(truth.sum())
    if positives == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    ranked_scores, ranked_truth = scores[order], truth[order].astype(np.float64)
    # One operating point per distinct score: tied scores are flagged together or not at all.
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked_scores)), len(ranked_scores) - 1]
    true_pos = np.cumsum(ranked_truth)[last_of_tie]
    flagged = last_of_tie + 1
    precision = true_pos / flagged
    recall = true_pos / positives
    gains = np.diff(np.r_[0.0, recall])
    return float(np.sum(gains * precision))


@dataclass(frozen=True)
class QualityReading:
    labelled: int
    positives: int
    precision: float | None  # None: nothing flagged in the window
    recall: float | None  # None: no fraud in the window
    pr_auc: float | None


class QualityWindow:
    """The last N labelled predictions of one model version."""

    def __init__(self, size: int) -> None:
        self.outcomes: deque[tuple[float, bool, bool]] = deque(maxlen=size)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append((outcome.scored.score, outcome.scored.flagged, outcome.is_fraud))

    def reading(self) -> QualityReading:
        if not self.outcomes:
            return QualityReading(0, 0, None, None, None)
        data = np.array(self.outcomes, dtype=np.float64)
        scores, flagged, truth = data[:, 0], data[:, 1] > 0, data[:, 2] > 0
        true_pos = int((flagged & truth).sum())
        positives = int(truth.sum())
        return QualityReading(
            labelled=len(self.outcomes),
            positives=positives,
            precision=true_pos / int(flagged.sum()) if flagged.any() else None,
            recall=true_pos / positives if positives else None,
            pr_auc=average_precision(scores, truth),
        )
