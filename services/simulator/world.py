"""The simulated population: merchants with categories and amount scales, users with habits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.random import Generator

CHANNELS = ("pos", "app", "web")
POS, APP, WEB = 0, 1, 2

# Where cardholders live (weights) and the currency a card is charged in there.
HOME_COUNTRIES = ("DE", "FR", "ES", "IT", "NL", "GB", "PL", "AT", "BE", "SE", "PT", "IE")
HOME_WEIGHTS = np.array([25, 15, 10, 10, 8, 10, 6, 4, 4, 3, 3, 2], dtype=np.float64)
# Countries that show up almost only when a card is used by someone else.
FRAUD_COUNTRIES = ("US", "BR", "NG", "RO", "UA", "ID", "VN", "MX", "TR")
COUNTRIES = HOME_COUNTRIES + FRAUD_COUNTRIES
CURRENCY = {"GB": "GBP", "PL": "PLN", "SE": "SEK", "US": "USD", "BR": "BRL", "NG": "NGN", "RO": "RON",
            "UA": "UAH", "ID": "IDR", "VN": "VND", "MX": "MXN", "TR": "TRY"}  # fmt: skip
CURRENCIES = tuple(CURRENCY.get(code, "EUR") for code in COUNTRIES)


@dataclass(frozen=True)
class Category:
    name: str
    median_amount: float  # EUR, before the user's own scale
    share: float  # of merchants


CATEGORIES = (
    Category("grocery", 32, 0.20),
    Category("restaurant", 28, 0.15),
    Category("fuel", 55, 0.08),
    Category("retail", 60, 0.15),
    Category("pharmacy", 22, 0.06),
    Category("entertainment", 35, 0.07),
    Category("digital_goods", 15, 0.08),
    Category("electronics", 240, 0.07),
    Category("travel", 380, 0.05),
    Category("jewelry", 450, 0.03),
    Category("gift_cards", 50, 0.06),
)
CATEGORY_INDEX = {c.name: i for i, c in enumerate(CATEGORIES)}
CATEGORY_MEDIANS = np.array([c.median_amount for c in CATEGORIES])

FAVOURITES_PER_USER = 6
MAX_DEVICES_PER_USER = 3


@dataclass(frozen=True)
class Merchants:
    ids: list[str]
    category: np.ndarray  # index into CATEGORIES
    popularity: np.ndarray  # probability of being picked by a random purchase
    risky_before: np.ndarray  # merchant indices with much higher fraud before drift
    risky_after: np.ndarray  # ... and after drift (disjoint from risky_before)

    def in_categories(self, *names: str) -> np.ndarray:
        wanted = [CATEGORY_INDEX[n] for n in names]
        return np.flatnonzero(np.isin(self.category, wanted))

    @property
    def median_amount(self) -> np.ndarray:
        return CATEGORY_MEDIANS[self.category]


@dataclass(frozen=True)
class Users:
    ids: list[str]
    home: np.ndarray  # index into COUNTRIES
    activity: np.ndarray  # probability that a purchase is this user's
    amount_scale: np.ndarray  # multiplies category medians: big and small spenders
    channel_cdf: np.ndarray  # (users, 3) cumulative habit over CHANNELS
    favourites: np.ndarray  # (users, FAVOURITES_PER_USER) merchant indices
    device_count: np.ndarray  # 1..MAX_DEVICES_PER_USER
    devices: np.ndarray  # (users, MAX_DEVICES_PER_USER) index into the device id table


@dataclass(frozen=True)
class World:
    users: Users
    merchants: Merchants
    device_ids: list[str]  # every user's devices; fraudsters' devices are added per run


def hex_ids(rng: Generator, prefix: str, count: int) -> list[str]:
    return [f"{prefix}{value:012x}" for value in rng.integers(0, 16**12, count, dtype=np.int64).tolist()]


def _build_merchants(rng: Generator, count: int) -> Merchants:
    shares = np.array([c.share for c in CATEGORIES])
    per_category = np.maximum(1, np.floor(shares * count).astype(np.int64))
    per_category[0] += count - per_category.sum()  # groceries absorb rounding
    category = rng.permutation(np.repeat(np.arange(len(CATEGORIES)), per_category))
    # Long-tailed popularity: a few chains take much of the traffic.
    weight = rng.pareto(1.2, count) + 0.05
    popularity = weight / weight.sum()
    risky_count = max(3, round(0.03 * count))
    # Risky merchants are mid-sized: a chain would be noticed, a tiny shop gives no signal.
    mid = np.argsort(popularity)[count // 4 : count - count // 10]
    risky = rng.choice(mid, 2 * risky_count, replace=False)
    return Merchants(
        ids=[f"m-{i:05d}" for i in range(count)],
        category=category,
        popularity=popularity,
        risky_before=np.sort(risky[:risky_count]),
        risky_after=np.sort(risky[risky_count:]),
    )


def _build_users(rng: Generator, count: int, merchants: Merchants) -> tuple[Users, int]:
    home = rng.choice(len(HOME_COUNTRIES), count, p=HOME_WEIGHTS / HOME_WEIGHTS.sum())
    activity = rng.gamma(2.0, 0.5, count)
    primary = rng.choice(len(CHANNELS), count, p=[0.5, 0.3, 0.2])
    habit = rng.dirichlet([0.6, 0.6, 0.6], count) * 0.3
    habit[np.arange(count), primary] += 0.7
    device_count = rng.choice(np.arange(1, MAX_DEVICES_PER_USER + 1), count, p=[0.5, 0.35, 0.15])
    devices = np.arange(count * MAX_DEVICES_PER_USER).reshape(count, MAX_DEVICES_PER_USER)
    users = Users(
        ids=[f"u-{i:06d}" for i in range(count)],
        home=home,
        activity=activity / activity.sum(),
        amount_scale=rng.lognormal(0.0, 0.45, count),
        channel_cdf=np.cumsum(habit, axis=1),
        favourites=rng.choice(len(merchants.ids), (count, FAVOURITES_PER_USER), p=merchants.popularity),
        device_count=device_count,
        devices=devices,
    )
    return users, count * MAX_DEVICES_PER_USER


def build_world(rng: Generator, users: int, merchants: int) -> World:
    merchant_table = _build_merchants(rng, merchants)
    user_table, device_slots = _build_users(rng, users, merchant_table)
    return World(users=user_table, merchants=merchant_table, device_ids=hex_ids(rng, "d-", device_slots))
