"""A running tally of a simulated stream (what `rtml simulate` reports at the end)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from services.common.events import Topics
from services.simulator.config import SimEvent


@dataclass
class StreamSummary:
    transactions: int = 0
    frauds: int = 0
    labels: int = 0

    def count(self, events: Iterable[SimEvent]) -> Iterator[SimEvent]:
        """Pass events through unchanged while counting them."""
        for sim in events:
            if sim.topic == Topics.TRANSACTIONS:
                self.transactions += 1
                self.frauds += sim.is_fraud
            else:
                self.labels += 1
            yield sim

    @property
    def fraud_share(self) -> float:
        return self.frauds / self.transactions if self.transactions else 0.0

    def line(self) -> str:
        return (
            f"{self.transactions} transactions ({self.frauds} fraud, {self.fraud_share:.2%}), "
            f"{self.labels} labels ({self.transactions - self.labels} transactions never labelled)"
        )
