"""Code tests of the demo's old-vs-new comparison statistics (no stack needed)."""

from __future__ import annotations

import numpy as np

from services.demo.quality import paired_gain_interval


def test_paired_bootstrap_separates_a_real_gain_from_noise() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random(3000) < 0.02  # ~60 frauds, as after the demo's swap
    signal = truth * 0.5 + rng.random(3000) * 0.6
    weaker = truth * 0.15 + rng.random(3000) * 0.6
    low, high = paired_gain_interval(truth, signal, weaker)
    assert 0 < low < high
    # Two models of the same skill: the interval straddles zero.
    twin = truth * 0.15 + rng.random(3000) * 0.6
    low, high = paired_gain_interval(truth, twin, weaker)
    assert low < 0 < high
    assert paired_gain_interval(truth, weaker, weaker) == (0.0, 0.0)  # paired: identical scores, no spread
    assert paired_gain_interval(np.zeros(10, bool), weaker[:10], weaker[:10]) is None
