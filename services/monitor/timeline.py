"""What the monitor saw over time: one point per evaluation, thinned as it grows: the data behind the plots."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MIN_SPACING = timedelta(seconds=1)
MAX_POINTS = 2000  # when full, neighbours are merged and the spacing doubles: bounded for ever


@dataclass
class Point:
    """The predictions read in (since, at], and the readings at ``at`` (the newest prediction's time)."""

    since: datetime
    at: datetime
    model_version: str
    predictions: int = 0
    psi: dict[str, float] = field(default_factory=dict)
    score_psi: float | None = None
    precision: float | None = None
    recall: float | None = None
    pr_auc: float | None = None
    labelled: int = 0

    @property
    def rate(self) -> float:
        """Predictions per second over the point's interval."""
        return self.predictions / max((self.at - self.since).total_seconds(), MIN_SPACING.total_seconds())


@dataclass(frozen=True)
class Promotion:
    event: str  # promoted | rolled_back
    version: str
    previous_version: str | None
    at: datetime


class Timeline:
    def __init__(self) -> None:
        self.points: deque[Point] = deque()
        self.promotions: list[Promotion] = []
        self.spacing = MIN_SPACING

    def add(self, point: Point) -> Point:
        """Append ``point``, or fold it into the last one when they are closer than the spacing."""
        last = self.points[-1] if self.points else None
        if last is not None and point.since < last.at:
            point.since = last.at  # late events: keep intervals ordered and disjoint
            point.at = max(point.at, point.since)
        if last is not None and last.model_version == point.model_version and point.at - last.since < self.spacing:
            point.since, point.predictions = last.since, last.predictions + point.predictions
            self.points[-1] = point
            return point
        self.points.append(point)
        if len(self.points) >= MAX_POINTS:
            self._thin()
        return point

    def _thin(self) -> None:
        merged: deque[Point] = deque()
        items = list(self.points)
        for older, newer in zip(items[::2], items[1::2], strict=False):
            newer.since, newer.predictions = older.since, older.predictions + newer.predictions
            merged.append(newer)
        if len(items) % 2:
            merged.append(items[-1])
        self.points = merged
        self.spacing *= 2

    def add_promotion(self, promotion: Promotion) -> bool:
        if promotion in self.promotions:
            return False
        self.promotions.append(promotion)
        self.promotions.sort(key=lambda p: p.at)
        return True
