"""Simulated time with a daily rhythm: turns 'n events between a and b' into timestamps.

Arrivals follow a Poisson process whose intensity depends on the hour of day. Given
how many arrivals fall in a window, they are uniform in cumulative-intensity space,
so sampling is one vectorised draw plus an interpolation back to minutes.
"""

from __future__ import annotations

import numpy as np
from numpy.random import Generator

MINUTES_PER_DAY = 1440

# Card spending (UTC): quiet at night, a lunch bump, an evening peak.
LEGIT_HOURLY = np.array(
    [0.20, 0.12, 0.08, 0.06, 0.06, 0.10, 0.30, 0.60, 0.90, 1.00, 1.05, 1.10,
     1.25, 1.20, 1.05, 1.00, 1.05, 1.15, 1.30, 1.35, 1.20, 0.95, 0.70, 0.40]
)  # fmt: skip
# Fraudsters work when victims sleep: flatter, with a night bump.
FRAUD_HOURLY = np.array(
    [1.30, 1.45, 1.55, 1.55, 1.40, 1.20, 0.90, 0.80, 0.80, 0.80, 0.85, 0.90,
     0.95, 0.95, 0.90, 0.90, 0.90, 0.90, 0.95, 1.00, 1.00, 1.05, 1.10, 1.20]
)  # fmt: skip


class DailyClock:
    """Cumulative intensity over a minute grid covering ``span_minutes``; weights average 1 per minute."""

    def __init__(self, hourly: np.ndarray, span_minutes: int) -> None:
        per_minute = np.repeat(hourly / hourly.mean(), 60)
        days = span_minutes // MINUTES_PER_DAY + 1
        weights = np.tile(per_minute, days)[:span_minutes]
        self.minutes = np.arange(span_minutes + 1, dtype=np.float64)
        self.cumulative = np.concatenate(([0.0], np.cumsum(weights)))

    def intensity_until(self, minute: float) -> float:
        return float(np.interp(minute, self.minutes, self.cumulative))

    def minute_at(self, intensity: np.ndarray | float) -> np.ndarray:
        return np.asarray(np.interp(intensity, self.cumulative, self.minutes))

    def arrivals(self, rng: Generator, count: int, start_minute: float, end_minute: float) -> np.ndarray:
        """``count`` sorted arrival minutes in [start, end), denser at busy hours."""
        low, high = self.intensity_until(start_minute), self.intensity_until(end_minute)
        return np.asarray(self.minute_at(np.sort(rng.uniform(low, high, count))))


def span_minutes(expected_weight_minutes: float) -> int:
    """A grid long enough to hold that much intensity, with a day to spare for rounding and bursts."""
    return int(np.ceil(expected_weight_minutes)) + 2 * MINUTES_PER_DAY
