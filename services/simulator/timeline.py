"""All transactions of a run in time order: habitual purchases plus fraud, with the mix changing at drift."""

from __future__ import annotations

import numpy as np
from numpy.random import Generator

from services.simulator.clock import FRAUD_HOURLY, LEGIT_HOURLY, MINUTES_PER_DAY, DailyClock, span_minutes
from services.simulator.columns import TransactionColumns
from services.simulator.config import SimulatorConfig
from services.simulator.fraud import MIX_AFTER, MIX_BEFORE, DeviceBook, fraud_transactions
from services.simulator.habits import habitual_purchases, round_amounts
from services.simulator.world import World

# A few purchases per card per day keeps 10 min / 1 h / 24 h user windows meaningful:
# 10,000 transactions from 2,000 users span about a day and a half.
USER_DAILY_TRANSACTIONS = 3.5


def simulate_transactions(
    config: SimulatorConfig, rng: Generator, world: World, devices: DeviceBook
) -> TransactionColumns:
    """``config.events`` transactions; the first ``drift_at`` use the old fraud mix, the rest the new."""
    per_weight_minute = config.users * USER_DAILY_TRANSACTIONS / MINUTES_PER_DAY
    span = span_minutes(config.events / per_weight_minute)
    legit_clock, fraud_clock = DailyClock(LEGIT_HOURLY, span), DailyClock(FRAUD_HOURLY, span)
    cuts = [0, config.drift_at, config.events] if config.drift_at else [0, config.events]
    edges = legit_clock.minute_at(np.array(cuts, dtype=np.float64) / per_weight_minute)

    phases = []
    for phase, mix in enumerate((MIX_BEFORE, MIX_AFTER)[: len(cuts) - 1]):
        count = cuts[phase + 1] - cuts[phase]
        start, end = float(edges[phase]), float(edges[phase + 1])
        frauds = min(count, int(rng.binomial(count, config.fraud_rate)))
        fraud = fraud_transactions(rng, world, devices, mix, frauds, fraud_clock, start, end)
        legit = habitual_purchases(rng, world, rng.choice(len(world.users.ids), count - frauds, p=world.users.activity))
        legit.time_ms = np.floor(legit_clock.arrivals(rng, count - frauds, start, end) * 60_000).astype(np.int64)
        both = TransactionColumns.concat([legit, fraud])
        # Bursts must not spill past the phase end, or drift would not start exactly at drift_at.
        both.time_ms = np.clip(both.time_ms, int(np.floor(start * 60_000)), int(np.floor(end * 60_000)) - 1)
        phases.append(both.in_time_order())
    result = TransactionColumns.concat(phases)
    result.amount = round_amounts(result.amount)
    return result
