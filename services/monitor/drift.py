"""Distribution drift of live inputs and scores against a model version's reference statistics.

A reference distribution is a set of quantile bins (``edges``) with the share of
training (or validation) values in each (``proportions``). Live values are binned the
same way; the Population Stability Index and a chi-square goodness-of-fit test compare
the live counts of the last N predictions with the reference shares.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

SCORE = "score"  # the name the model output goes by wherever inputs and score are listed together
# Empty bins would make PSI infinite; this floor keeps one empty bin "large" but finite.
PSI_FLOOR = 1e-4


class ReferenceStatsError(ValueError):
    """Reference statistics are malformed; the message names the offending path."""


@dataclass(frozen=True)
class BinnedReference:
    """One reference distribution: interior cut points and the share of values per bin."""

    cuts: tuple[float, ...]
    proportions: np.ndarray

    @property
    def bins(self) -> int:
        return len(self.proportions)

    @classmethod
    def parse(cls, where: str, payload: Any) -> BinnedReference:
        if not isinstance(payload, Mapping):
            raise ReferenceStatsError(f"{where}: expected an object with edges and proportions")
        edges, proportions = payload.get("edges"), payload.get("proportions")
        for key, value in (("edges", edges), ("proportions", proportions)):
            if not isinstance(value, Sequence) or isinstance(value, str) or (not value and key == "proportions"):
                raise ReferenceStatsError(f"{where}.{key}: expected a non-empty list of numbers")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
                raise ReferenceStatsError(f"{where}.{key}: every entry must be a finite number")
        assert isinstance(edges, Sequence) and isinstance(proportions, Sequence)
        shares = np.asarray(proportions, dtype=np.float64)
        if (shares < 0).any() or shares.sum() <= 0:
            raise ReferenceStatsError(f"{where}.proportions: shares must be non-negative and not all zero")
        # Both spellings occur: k+1 edges including the outer bounds (np.histogram), or k-1 interior cuts.
        if len(edges) == len(shares) + 1:
            cuts = tuple(float(e) for e in edges[1:-1])
        elif len(edges) == len(shares) - 1:
            cuts = tuple(float(e) for e in edges)
        else:
            raise ReferenceStatsError(
                f"{where}: {len(edges)} edges do not fit {len(shares)} proportions (expected {len(shares) + 1})"
            )
        if any(b < a for a, b in itertools.pairwise(cuts)):
            raise ReferenceStatsError(f"{where}.edges: must be sorted ascending")
        return cls(cuts, shares / shares.sum())

    def bin_of(self, value: float) -> int:
        """The bin ``np.histogram(values, edges)`` puts ``value`` in; values outside the edges go to the end bins."""
        return bisect_right(self.cuts, value)


@dataclass(frozen=True)
class ReferenceProfile:
    """What "normal" looks like for one model version: its inputs' and its score's distributions."""

    version: str
    features: dict[str, BinnedReference]
    score: BinnedReference | None

    @classmethod
    def from_stats(cls, version: str, payload: Any) -> ReferenceProfile:
        if not isinstance(payload, Mapping):
            raise ReferenceStatsError("reference_stats: expected an object")
        features = payload.get("features", {})
        if not isinstance(features, Mapping):
            raise ReferenceStatsError("reference_stats.features: expected an object keyed by feature name")
        parsed = {
            str(name): BinnedReference.parse(f"reference_stats.features.{name}", stats)
            for name, stats in features.items()
            if not _empty(stats)
        }
        score = payload.get("score")
        has_score = score is not None and not _empty(score)
        return cls(version, parsed, BinnedReference.parse("reference_stats.score", score) if has_score else None)


def _empty(stats: Any) -> bool:
    """A column with no finite reference values has no bins: nothing to compare, not an error."""
    return isinstance(stats, Mapping) and stats.get("edges") == [] and stats.get("proportions") == []


def psi(counts: np.ndarray, expected: np.ndarray) -> float:
    """Population Stability Index of live ``counts`` against expected shares (0 = identical)."""
    total = counts.sum()
    if total <= 0:
        return 0.0
    actual = np.maximum(counts / total, PSI_FLOOR)
    reference = np.maximum(expected, PSI_FLOOR)
    return float(np.sum((actual - reference) * np.log(actual / reference)))


def chi_square_pvalue(counts: np.ndarray, expected: np.ndarray) -> float:
    """p-value of "live counts come from the reference shares" (Pearson chi-square, df = bins - 1)."""
    total = counts.sum()
    keep = expected > 0
    if total <= 0 or keep.sum() < 2:
        return 1.0
    # Live mass in bins the reference never saw is folded into the chi-square by renormalising.
    observed = counts[keep].astype(np.float64)
    shares = expected[keep] / expected[keep].sum()
    result = stats.chisquare(observed, shares * observed.sum())
    return float(result.pvalue)


class SlidingHistogram:
    """Bin counts of the last ``size`` observations (None = a missing value, kept apart)."""

    def __init__(self, reference: BinnedReference, size: int) -> None:
        self.reference = reference
        self.recent: deque[int] = deque(maxlen=size)
        self.counts = np.zeros(reference.bins, dtype=np.int64)
        self.nulls = 0

    def add(self, value: float | None) -> None:
        if len(self.recent) == self.recent.maxlen:
            dropped = self.recent[0]
            if dropped < 0:
                self.nulls -= 1
            else:
                self.counts[dropped] -= 1
        if value is None or not math.isfinite(value):
            self.recent.append(-1)
            self.nulls += 1
            return
        index = self.reference.bin_of(value)
        self.recent.append(index)
        self.counts[index] += 1

    @property
    def observed(self) -> int:
        return int(self.counts.sum())

    def psi(self) -> float:
        return psi(self.counts, self.reference.proportions)

    def pvalue(self) -> float:
        return chi_square_pvalue(self.counts, self.reference.proportions)

    def live_shares(self) -> list[float]:
        total = self.counts.sum()
        return (self.counts / total).tolist() if total else [0.0] * self.reference.bins

    @property
    def null_rate(self) -> float:
        return self.nulls / len(self.recent) if self.recent else 0.0


@dataclass(frozen=True)
class DriftReading:
    """The drift numbers of one window at one moment."""

    window: int
    feature_psi: dict[str, float]
    feature_null_rate: dict[str, float]
    score_psi: float | None
    score_pvalue: float | None
    score_live: list[float]
    score_reference: list[float]
    score_cuts: list[float]

    def psi_of(self, name: str) -> float | None:
        return self.score_psi if name == SCORE else self.feature_psi.get(name)


class DriftWindow:
    """The last N predictions of one model version, binned against that version's reference."""

    def __init__(self, profile: ReferenceProfile, size: int) -> None:
        self.profile = profile
        self.features = {name: SlidingHistogram(ref, size) for name, ref in profile.features.items()}
        self.score = SlidingHistogram(profile.score, size) if profile.score else None
        self.seen: deque[None] = deque(maxlen=size)

    def observe(self, features: Mapping[str, float | None], score: float) -> None:
        self.seen.append(None)
        for name, histogram in self.features.items():
            histogram.add(features.get(name))
        if self.score is not None:
            self.score.add(score)

    def reading(self) -> DriftReading:
        score = self.score
        return DriftReading(
            window=len(self.seen),
            feature_psi={n: h.psi() for n, h in self.features.items() if h.observed},
            feature_null_rate={n: h.null_rate for n, h in self.features.items()},
            score_psi=score.psi() if score and score.observed else None,
            score_pvalue=score.pvalue() if score and score.observed else None,
            score_live=score.live_shares() if score else [],
            score_reference=score.reference.proportions.tolist() if score else [],
            score_cuts=list(score.reference.cuts) if score else [],
        )
