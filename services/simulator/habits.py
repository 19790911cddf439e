"""How a user normally pays: favourite merchants, usual channels and devices, home country, amount scale."""

from __future__ import annotations

import numpy as np
from numpy.random import Generator

from services.simulator.columns import NO_DEVICE, TransactionColumns
from services.simulator.world import HOME_COUNTRIES, POS, WEB, World

FAVOURITE_SHARE = 0.7  # of a user's purchases go to their favourite merchants
PRIMARY_DEVICE_SHARE = 0.8
WEB_WITHOUT_DEVICE = 0.08  # guest checkouts without a device fingerprint
TRAVEL_SHARE = 0.025  # legit purchases abroad


def other_home_country(rng: Generator, home: np.ndarray) -> np.ndarray:
    """A home-list country that differs from ``home``."""
    n = len(HOME_COUNTRIES)
    return np.asarray((home + 1 + rng.integers(0, n - 1, len(home))) % n)


def habitual_purchases(rng: Generator, world: World, user: np.ndarray) -> TransactionColumns:
    """Purchases as each given user typically makes them (time left at 0 for the caller)."""
    users, merchants = world.users, world.merchants
    n = len(user)
    favourite = users.favourites[user, rng.integers(0, users.favourites.shape[1], n)]
    anywhere = rng.choice(len(merchants.ids), n, p=merchants.popularity)
    merchant = np.where(rng.random(n) < FAVOURITE_SHARE, favourite, anywhere)

    channel = np.minimum((rng.random(n)[:, None] > users.channel_cdf[user]).sum(axis=1), WEB)
    slot = np.where(rng.random(n) < PRIMARY_DEVICE_SHARE, 0, rng.integers(0, users.device_count[user]))
    device = users.devices[user, slot]
    guest = (channel == WEB) & (rng.random(n) < WEB_WITHOUT_DEVICE)
    device = np.where((channel == POS) | guest, NO_DEVICE, device)

    country = users.home[user].copy()
    travelling = rng.random(n) < TRAVEL_SHARE
    country[travelling] = other_home_country(rng, country[travelling])

    amount = users.amount_scale[user] * merchants.median_amount[merchant] * rng.lognormal(0.0, 0.5, n)
    return TransactionColumns(
        time_ms=np.zeros(n, dtype=np.int64),
        user=user,
        merchant=merchant,
        channel=channel,
        device=device,
        country=country,
        amount=amount,
        pattern=np.zeros(n, dtype=np.int64),
    )


def round_amounts(amount: np.ndarray) -> np.ndarray:
    return np.round(np.clip(amount, 0.5, 25_000.0), 2)
