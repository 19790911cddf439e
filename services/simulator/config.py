"""What a simulation run is asked for, and the unit it hands out: one event bound for a topic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.common.events import Label, Transaction

# Below these the fixed structures (risky merchant sets, every merchant category,
# a population with history) cannot be laid out.
MIN_USERS = 10
MIN_MERCHANTS = 30
MAX_EVENTS = 50_000_000


@dataclass(frozen=True)
class SimulatorConfig:
    events: int = 10_000  # number of transactions to generate
    seed: int = 7
    drift_at: int | None = None  # after this many transactions the fraud patterns change
    users: int = 2_000
    merchants: int = 300
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)  # simulated clock start (deterministic)
    fraud_rate: float = 0.015  # target share of fraudulent transactions
    label_share: float = 0.9  # share of transactions that ever receive a label

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.events <= MAX_EVENTS:
            problems.append(f"events must be between 1 and {MAX_EVENTS}, got {self.events}")
        if self.drift_at is not None and not 0 < self.drift_at < self.events:
            problems.append(f"drift_at must be between 1 and events-1 ({self.events - 1}), got {self.drift_at}")
        if self.users < MIN_USERS:
            problems.append(f"users must be at least {MIN_USERS}, got {self.users}")
        if self.merchants < MIN_MERCHANTS:
            problems.append(f"merchants must be at least {MIN_MERCHANTS}, got {self.merchants}")
        if self.seed < 0:
            problems.append(f"seed must be 0 or more, got {self.seed}")
        if self.start.tzinfo is None:
            problems.append("start must be timezone-aware (e.g. 2026-11-01T00:00:00Z)")
        if not 0 <= self.fraud_rate <= 0.5:
            problems.append(f"fraud_rate must be between 0 and 0.5, got {self.fraud_rate}")
        if not 0 <= self.label_share <= 1:
            problems.append(f"label_share must be between 0 and 1, got {self.label_share}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class SimEvent:
    topic: str  # Topics.TRANSACTIONS or Topics.LABELS
    key: str  # user_id for transactions, transaction_id for labels (the contract's keys)
    event: Transaction | Label
    is_fraud: bool  # ground truth
    pattern: str  # "legit" or the fraud pattern's name (ground truth, for tests and analysis)
