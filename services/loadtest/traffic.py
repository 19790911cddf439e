"""Request bodies for load tests: simulator transactions, re-stamped per request, and deliberately malformed ones."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import Any, Final

from services.common.events import Topics, Transaction
from services.simulator import SimulatorConfig, generate

PREDICT: Final = "/predict"
PREDICT_BATCH: Final = "/predict_batch"
# Locust request name suffix of malformed requests: their own rows in the stats, never scoring latency.
MALFORMED_SUFFIX: Final = " [malformed]"
UNKNOWN_USER_PREFIX: Final = "u-unknown-"


@dataclass(frozen=True)
class TrafficConfig:
    pool_size: int = 5_000  # distinct simulated transactions to draw requests from
    unknown_share: float = 0.1  # share of requests from users the feature store has never seen
    batch_size: int = 16  # transactions per /predict_batch call
    seed: int = 7  # the simulator seed; the default matches `rtml simulate`, so its users have features

    def __post_init__(self) -> None:
        if not 1 <= self.pool_size <= 1_000_000:
            raise ValueError(f"pool_size must be between 1 and 1000000, got {self.pool_size}")
        if not 0 <= self.unknown_share <= 1:
            raise ValueError(f"unknown_share must be between 0 and 1, got {self.unknown_share}")
        if not 1 <= self.batch_size <= 1000:
            raise ValueError(f"batch_size must be between 1 and 1000 (the API's limit), got {self.batch_size}")


def _simulated_transactions(config: TrafficConfig) -> list[dict[str, Any]]:
    """Transactions (as JSON-ready dicts) drawn from the simulator's users, merchants, amounts and habits."""
    sim = SimulatorConfig(events=config.pool_size, seed=config.seed, label_share=0.0)
    rows: list[dict[str, Any]] = []
    for event in generate(sim):
        if event.topic == Topics.TRANSACTIONS and isinstance(event.event, Transaction):
            rows.append(event.event.model_dump(mode="json", exclude_none=True))
    return rows


class TransactionPool:
    """A fixed pool of realistic transactions; each draw gets a fresh id and the current time."""

    def __init__(self, config: TrafficConfig) -> None:
        self.config = config
        rows = _simulated_transactions(config)
        rng = random.Random(config.seed)
        for i in rng.sample(range(len(rows)), round(config.unknown_share * len(rows))):
            rows[i]["user_id"] = f"{UNKNOWN_USER_PREFIX}{i:06d}"
        self.rows = rows
        self._ids = count()

    def transaction(self, rng: random.Random) -> dict[str, Any]:
        row = dict(rng.choice(self.rows))
        row["transaction_id"] = f"t-lt-{next(self._ids):010d}"
        row["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return row

    def single_body(self, rng: random.Random) -> bytes:
        return json.dumps(self.transaction(rng)).encode()

    def batch_body(self, rng: random.Random) -> bytes:
        return json.dumps({"transactions": [self.transaction(rng) for _ in range(self.config.batch_size)]}).encode()


@dataclass(frozen=True)
class MalformedRequest:
    """A request the API must refuse with a 4xx naming the problem."""

    path: str
    body: bytes
    problem: str


def malformed_requests(pool: TransactionPool, rng: random.Random) -> list[MalformedRequest]:
    """One of each kind of bad input a client gets wrong in practice."""
    good = pool.transaction(rng)
    missing_amount = {k: v for k, v in good.items() if k != "amount"}
    cases = [
        (PREDICT, missing_amount, "amount missing"),
        (PREDICT, {**good, "amount": -5}, "negative amount"),
        (PREDICT, {**good, "amount": "12.50"}, "amount as a string"),
        (PREDICT, {**good, "channel": "fax"}, "unknown channel"),
        (PREDICT, {**good, "timestamp": "yesterday"}, "unparsable timestamp"),
        (PREDICT_BATCH, {"transactions": []}, "empty batch"),
        (PREDICT_BATCH, {"transactions": [good, missing_amount]}, "one bad transaction in a batch"),
    ]
    requests = [MalformedRequest(path, json.dumps(body).encode(), problem) for path, body, problem in cases]
    requests.append(MalformedRequest(PREDICT, b'{"transaction_id": "t-1", "amount": ', "truncated JSON"))
    return requests


def is_malformed_name(name: str) -> bool:
    return name.endswith(MALFORMED_SUFFIX)
