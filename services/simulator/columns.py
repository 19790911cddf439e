"""Transactions held column-wise (numpy arrays) while they are generated, so every step is vectorised."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

NO_DEVICE = -1  # card-present purchases and some web checkouts carry no device id


@dataclass
class TransactionColumns:
    time_ms: np.ndarray  # int64 milliseconds since the simulated start
    user: np.ndarray  # index into World.users
    merchant: np.ndarray  # index into World.merchants
    channel: np.ndarray  # index into world.CHANNELS
    device: np.ndarray  # index into the device id table, or NO_DEVICE
    country: np.ndarray  # index into world.COUNTRIES
    amount: np.ndarray  # float64, 2 decimals
    pattern: np.ndarray  # index into fraud.PATTERNS; 0 is legit

    def __len__(self) -> int:
        return len(self.time_ms)

    def take(self, index: np.ndarray) -> TransactionColumns:
        return TransactionColumns(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def in_time_order(self) -> TransactionColumns:
        return self.take(np.argsort(self.time_ms, kind="stable"))

    @staticmethod
    def concat(parts: list[TransactionColumns]) -> TransactionColumns:
        return TransactionColumns(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(TransactionColumns)}
        )
