"""When (and whether) each transaction's label arrives: chargebacks and confirmations come late, some never."""

from __future__ import annotations

import numpy as np
from numpy.random import Generator

HOUR_MS = 3_600_000
FRAUD_MEDIAN_DELAY_H = 10.0  # disputes: hours to a few days
LEGIT_MEDIAN_DELAY_H = 20.0  # confirmations once the dispute window is quiet
MIN_DELAY_H, MAX_DELAY_H = 1.0, 240.0


def label_arrivals(
    rng: Generator, is_fraud: np.ndarray, time_ms: np.ndarray, label_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the transactions that ever get a label, and each label's arrival time (ms)."""
    n = len(time_ms)
    arrives = rng.random(n) < label_share
    delay_h = np.where(
        is_fraud,
        rng.lognormal(np.log(FRAUD_MEDIAN_DELAY_H), 0.8, n),
        rng.lognormal(np.log(LEGIT_MEDIAN_DELAY_H), 0.7, n),
    )
    delay_ms = (np.clip(delay_h, MIN_DELAY_H, MAX_DELAY_H) * HOUR_MS).astype(np.int64)
    labelled = np.flatnonzero(arrives)
    return labelled, time_ms[labelled] + delay_ms[labelled]
