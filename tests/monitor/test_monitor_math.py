"""Code tests of the monitor's statistics: binning, PSI, chi-square, PR-AUC, the label join, the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from services.common.events import TrainingRequest
from services.models.reference import histogram
from services.monitor.drift import BinnedReference, ReferenceProfile, ReferenceStatsError, SlidingHistogram
from services.monitor.ledger import RequestLedger
from services.monitor.quality import LabelJoin, Scored, average_precision

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["continuous", "discrete", "constant"])
def test_live_binning_matches_the_reference_binning(kind: str) -> None:
    rng = np.random.default_rng(3)
    values = {
        "continuous": rng.lognormal(3, 1, 5000),
        "discrete": rng.integers(0, 4, 5000).astype(float),
        "constant": np.full(5000, 2.0),
    }[kind]
    ref = histogram(values)
    binned = BinnedReference.parse("f", ref)
    counts = np.bincount([binned.bin_of(v) for v in values], minlength=binned.bins)
    # The same data binned live must reproduce the reference shares exactly: PSI 0.
    assert np.allclose(counts / counts.sum(), ref["proportions"])
    assert binned.bin_of(values.min() - 100) == 0 and binned.bin_of(values.max() + 100) == binned.bins - 1


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(5)
    ref = BinnedReference.parse("amount", histogram(rng.lognormal(3, 1, 20_000)))
    same, shifted = SlidingHistogram(ref, 2000), SlidingHistogram(ref, 2000)
    for v in rng.lognormal(3, 1, 3000):
        same.add(float(v))
    for v in rng.lognormal(4, 1, 3000):
        shifted.add(float(v))
    shifted.add(None)
    assert same.observed == 2000 and shifted.observed == 1999 and shifted.nulls == 1
    assert same.psi() < 0.03 and same.pvalue() > 1e-3
    assert shifted.psi() > 0.5 and shifted.pvalue() < 1e-12


def test_reference_errors_name_the_offending_path() -> None:
    with pytest.raises(ReferenceStatsError, match=r"features\.amount: 5 edges do not fit 2 proportions"):
        ReferenceProfile.from_stats(
            "v1", {"features": {"amount": {"edges": [1, 2, 3, 4, 5], "proportions": [0.5, 0.5]}}}
        )
    with pytest.raises(ReferenceStatsError, match=r"score\.edges: every entry must be a finite number"):
        ReferenceProfile.from_stats("v1", {"score": {"edges": [0, "x", 1], "proportions": [0.5, 0.5]}})
    empty = ReferenceProfile.from_stats("v1", {"features": {"gone": {"edges": [], "proportions": []}}})
    assert empty.features == {} and empty.score is None


def test_average_precision_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(9)
    truth = rng.random(3000) < 0.05
    scores = np.round(np.clip(rng.normal(0.3 + 0.3 * truth, 0.2), 0, 1), 2)  # rounding makes ties
    assert average_precision(scores, truth) == pytest.approx(average_precision_score(truth, scores), abs=1e-12)
    assert average_precision(scores, np.zeros(3000, bool)) is None


def _scored(tid: str, at: datetime) -> Scored:
    return Scored(tid, "v1", 0.9, True, at)


def test_label_join_handles_early_late_duplicate_and_expired() -> None:
    join = LabelJoin(ttl=timedelta(hours=10), capacity=1000)
    assert join.add_label("t-early", True, T0) is None  # label first
    joined = join.add_prediction(_scored("t-early", T0))
    assert joined is not None and joined.is_fraud
    assert join.add_prediction(_scored("t-late", T0)) is None
    late = join.add_label("t-late", False, T0 + timedelta(hours=2))
    assert late is not None and not late.is_fraud
    assert join.add_label("t-late", False, T0 + timedelta(hours=2)) is None  # redelivered: not counted twice
    assert join.duplicates == 1
    join.add_prediction(_scored("t-never", T0 + timedelta(hours=3)))
    join.add_label("t-other", True, T0 + timedelta(hours=14))  # moves event time past the TTL
    assert "t-never" not in join.pending and join.expired_predictions == 1


def _request(rid: str, version: str, at: datetime, by: str = "monitor") -> TrainingRequest:
    return TrainingRequest(
        request_id=rid, reason="drift", evidence={"model_version": version}, requested_by=by, timestamp=at
    )


def test_ledger_arms_once_per_version_and_again_after_the_cooldown() -> None:
    ledger = RequestLedger(cooldown=timedelta(minutes=30))
    assert ledger.armed("v0001", T0) and ledger.next_request_id("v0001") == "monitor-v0001-1"
    assert ledger.record(_request("monitor-v0001-1", "v0001", T0))
    assert not ledger.record(_request("monitor-v0001-1", "v0001", T0))  # seen again on the topic
    assert not ledger.record(_request("manual-1", "v0001", T0, by="operator"))
    assert not ledger.armed("v0001", T0 + timedelta(minutes=29))
    assert ledger.armed("v0002", T0 + timedelta(minutes=1))  # a new champion re-arms at once
    assert ledger.armed("v0001", T0 + timedelta(minutes=30)) and ledger.next_request_id("v0001") == "monitor-v0001-2"
