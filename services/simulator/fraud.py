"""Fraud patterns: how stolen cards and taken-over accounts show up in a victim's transaction history.

Each pattern leaves a trace that features computed from user and merchant history can
see (velocity, new device, new country, amount against the user's usual, merchant
fraud rate, channel off-habit, hour of day). Drift swaps the mix for patterns a model
trained on the old mix mostly misses but a retrained one can learn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.random import Generator

from services.simulator.clock import DailyClock
from services.simulator.columns import NO_DEVICE, TransactionColumns
from services.simulator.habits import habitual_purchases
from services.simulator.world import APP, FRAUD_COUNTRIES, HOME_COUNTRIES, POS, WEB, World

PATTERNS = (
    "legit",
    "account_takeover",  # burst from a new device, often abroad, within minutes
    "unusual_amount",  # far above what the user usually spends
    "new_country_device",  # card used abroad and/or from an unseen device
    "risky_merchant",  # merchants with much higher fraud (before drift)
    "card_testing",  # after drift: many tiny web payments in minutes at one digital-goods merchant
    "stealth_takeover",  # after drift: usual country and device, moderate amounts online at gift-card merchants
    "merchant_ring",  # after drift: ordinary-looking purchases at a new set of risky merchants
)
PATTERN_INDEX = {name: i for i, name in enumerate(PATTERNS)}

# Per-incident mix. Bursts make account takeover and card testing a larger share of fraud transactions.
MIX_BEFORE = {"account_takeover": 0.12, "unusual_amount": 0.28, "new_country_device": 0.25, "risky_merchant": 0.35}
MIX_AFTER = {
    "card_testing": 0.08,
    "stealth_takeover": 0.35,
    "merchant_ring": 0.45,
    "account_takeover": 0.03,
    "unusual_amount": 0.09,
}


class DeviceBook:
    """Hands out fresh device indices after the users' own devices (fraudsters' devices)."""

    def __init__(self, first_free: int) -> None:
        self.first_free = first_free
        self.issued = 0

    def fresh(self, count: int) -> np.ndarray:
        start = self.first_free + self.issued
        self.issued += count
        return np.arange(start, start + count, dtype=np.int64)


@dataclass
class Incidents:
    """The fraud transactions of one pattern, grouped by incident (one victim, one fraudster)."""

    columns: TransactionColumns  # starts as the victims' habitual purchases; shapers overwrite
    incident: np.ndarray  # incident number of each transaction
    victim: np.ndarray  # user index per incident

    @property
    def count(self) -> int:
        return len(self.victim)

    def each(self, per_incident: np.ndarray) -> np.ndarray:
        """Broadcast one value per incident to its transactions."""
        return np.asarray(per_incident[self.incident])


Shaper = Callable[[Generator, World, DeviceBook, Incidents], None]


def _abroad(rng: Generator, home: np.ndarray) -> np.ndarray:
    """Mostly a country cardholders here never live in; sometimes just another home country."""
    n_home = len(HOME_COUNTRIES)
    fraud_country = n_home + rng.integers(0, len(FRAUD_COUNTRIES), len(home))
    other_home = (home + 1 + rng.integers(0, n_home - 1, len(home))) % n_home
    return np.where(rng.random(len(home)) < 0.7, fraud_country, other_home)


def _pick(rng: Generator, pool: np.ndarray, count: int) -> np.ndarray:
    return np.asarray(pool[rng.integers(0, len(pool), count)])


def _online(rng: Generator, count: int) -> np.ndarray:
    return np.where(rng.random(count) < 0.5, APP, WEB)


def _account_takeover(rng: Generator, world: World, devices: DeviceBook, inc: Incidents) -> None:
    c, k = inc.columns, inc.count
    c.device = inc.each(devices.fresh(k))
    abroad = rng.random(k) < 0.7
    c.country = np.where(inc.each(abroad), inc.each(_abroad(rng, world.users.home[inc.victim])), c.country)
    c.channel = inc.each(_online(rng, k))
    pool = world.merchants.in_categories("electronics", "digital_goods", "jewelry")
    c.merchant = _pick(rng, pool, len(c))
    c.amount = world.merchants.median_amount[c.merchant] * rng.lognormal(0.6, 0.5, len(c))


def _unusual_amount(rng: Generator, world: World, devices: DeviceBook, inc: Incidents) -> None:
    c = inc.columns
    c.merchant = _pick(rng, world.merchants.in_categories("electronics", "travel", "jewelry"), len(c))
    usual = world.users.amount_scale[c.user] * world.merchants.median_amount[c.merchant]
    c.amount = usual * rng.uniform(6.0, 25.0, len(c))


def _new_country_device(rng: Generator, world: World, devices: DeviceBook, inc: Incidents) -> None:
    c, k = inc.columns, inc.count
    c.country = inc.each(_abroad(rng, world.users.home[inc.victim]))
    c.channel = inc.each(_online(rng, k))
    new_device = rng.random(k) < 0.8
    c.device = np.where(inc.each(new_device), inc.each(devices.fresh(k)), world.users.devices[c.user, 0])
    c.amount = c.amount * rng.uniform(1.0, 2.5, len(c))


def _risky_merchant(rng: Generator, world: World, devices: DeviceBook, inc: Incidents) -> None:
    c = inc.columns
    c.merchant = _pick(rng, world.merchants.risky_before, len(c))
    new_device = (c.channel != POS) & (rng.random(len(c)) < 0.4)
    c.device = np.where(new_device, devices.fresh(len(c)), c.device)
    abroad = rng.random(len(c)) < 0.15
    c.country = np.where(abroad, _abroad(rng, world.users.home[c.user]), c.country)
    usual = world.users.amount_scale[c.user] * world.merchants.median_amount[c.merchant]
    c.amount = usual * rng.lognormal(0.0, 0.5, len(c)) * rng.uniform(1.0, 2.0, len(c))


def _card_testing(rng: Generator, world: World, devices: DeviceBook, inc: Incidents) -> None:
    c, k = inc.columns, inc.count
    c.merchant = inc.each(_pick(rng, world.merchants.in_categories("digital_goods"), k))
    c.channel = np.full(len(c), WEB)
    fingerprinted = rng.random(k) < 0.4
    c.device = np.where(inc.each(fingerprinted), inc.each(devices.fresh(k)), NO_DEVICE)
    c.country = world.users.home[c.user]
    c.amount = rng.uniform(0.5, 5.0, len(c))


def _stealth_takeover(rng: Generator, world: World, devices: DeviceBook, inc: Incidents) -> None:
    # Stolen credentials used from the victim's own (compromised) phone or browser at home:
    # only the channel, the hour, a moderate amount and gift-card merchants give it away.
    c = inc.columns
    c.merchant = _pick(rng, world.merchants.in_categories("gift_cards"), len(c))
    c.channel = np.where(rng.random(len(c)) < 0.8, WEB, APP)
    c.device = world.users.devices[c.user, 0]
    c.country = world.users.home[c.user]
    usual = world.users.amount_scale[c.user] * world.merchants.median_amount[c.merchant]
    c.amount = usual * rng.uniform(2.0, 4.0, len(c))


def _merchant_ring(rng: Generator, world: World, devices: DeviceBook, inc: Incidents) -> None:
    c = inc.columns
    c.merchant = _pick(rng, world.merchants.risky_after, len(c))
    usual = world.users.amount_scale[c.user] * world.merchants.median_amount[c.merchant]
    c.amount = usual * rng.lognormal(0.0, 0.5, len(c)) * rng.uniform(1.0, 1.5, len(c))


@dataclass(frozen=True)
class Pattern:
    name: str
    burst: tuple[int, int]  # fewest and most transactions per incident
    gap_minutes: float  # mean time between an incident's transactions
    shape: Shaper


PATTERN_SPECS = {
    p.name: p
    for p in (
        Pattern("account_takeover", (3, 7), 1.25, _account_takeover),
        Pattern("unusual_amount", (1, 1), 0.0, _unusual_amount),
        Pattern("new_country_device", (1, 2), 12.0, _new_country_device),
        Pattern("risky_merchant", (1, 1), 0.0, _risky_merchant),
        Pattern("card_testing", (4, 9), 0.5, _card_testing),
        Pattern("stealth_takeover", (1, 3), 40.0, _stealth_takeover),
        Pattern("merchant_ring", (1, 1), 0.0, _merchant_ring),
    )
}


def fraud_transactions(
    rng: Generator,
    world: World,
    devices: DeviceBook,
    mix: dict[str, float],
    count: int,
    clock: DailyClock,
    start_minute: float,
    end_minute: float,
) -> TransactionColumns:
    """Exactly ``count`` fraud transactions from incidents drawn from ``mix``, starting in [start, end)."""
    names = list(mix)
    chosen = rng.choice(len(names), count, p=np.array([mix[n] for n in names]) / sum(mix.values()))
    low = np.array([PATTERN_SPECS[n].burst[0] for n in names])
    high = np.array([PATTERN_SPECS[n].burst[1] for n in names])
    sizes = rng.integers(low[chosen], high[chosen] + 1)
    # Keep just enough incidents to reach ``count``; the last burst is cut short.
    total = np.cumsum(sizes)
    kept = int(np.searchsorted(total, count)) + 1 if count else 0
    chosen, sizes = chosen[:kept], sizes[:kept]
    if kept:
        sizes[-1] -= int(total[kept - 1]) - count
    starts = rng.permutation(clock.arrivals(rng, kept, start_minute, end_minute))
    victims = rng.choice(len(world.users.ids), kept, p=world.users.activity)

    parts = []
    for p, name in enumerate(names):
        spec = PATTERN_SPECS[name]
        mine = np.flatnonzero(chosen == p)
        incident = np.repeat(np.arange(len(mine)), sizes[mine])
        gaps = rng.exponential(spec.gap_minutes, len(incident)) if spec.gap_minutes else np.zeros(len(incident))
        first = np.concatenate(([True], incident[1:] != incident[:-1])) if len(incident) else np.zeros(0, bool)
        gaps[first] = 0.0
        # Minutes since the incident began: cumulative gaps restarted at each incident.
        elapsed = np.cumsum(gaps)
        elapsed -= np.maximum.accumulate(np.where(first, elapsed, 0.0)) if len(incident) else 0.0
        columns = habitual_purchases(rng, world, victims[mine][incident])
        inc = Incidents(columns=columns, incident=incident, victim=victims[mine])
        spec.shape(rng, world, devices, inc)
        columns.pattern = np.full(len(incident), PATTERN_INDEX[name], dtype=np.int64)
        columns.time_ms = np.floor((starts[mine][incident] + elapsed) * 60_000).astype(np.int64)
        parts.append(columns)
    return TransactionColumns.concat(parts)


def is_fraud(pattern: np.ndarray) -> np.ndarray:
    return np.asarray(pattern != PATTERN_INDEX["legit"])
