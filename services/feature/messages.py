"""What one feature-service stage passes to the next over the internal topics.

Every message carries one accepted fact and a low watermark of the contract partition it came
from: no later fact from that partition has an earlier event time. The receiving stage keeps
the latest watermark per source and only forgets state (or gives up on a label) below the
slowest one, so a lagging instance upstream never makes a downstream stage drop what a fact
still to come needs.
"""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from services.common.events import Event, InternalTopics
from services.features.aggregate import LabelFact, TxnFact


class StageEvent(Event):
    """An accepted transaction (user stage → label and merchant stages) or a label attributed to
    its transaction's merchant (label stage → merchant stage)."""

    partition: int  # source: the rtml.transactions partition of a transaction, rtml.labels of a label
    low_us: int
    transaction: TxnFact | None = None
    label: LabelFact | None = None

    @model_validator(mode="after")
    def _one_fact(self) -> Self:
        if (self.transaction is None) == (self.label is None):
            raise ValueError("exactly one of transaction and label must be set")
        return self


Forward = tuple[str, bytes, bytes]  # (topic, key, value) to publish once the batch is written


def forwards_of_transaction(fact: TxnFact, partition: int, low_us: int) -> list[Forward]:
    value = StageEvent(partition=partition, low_us=low_us, transaction=fact).to_json()
    return [
        (InternalTopics.MERCHANT_EVENTS, fact.merchant_id.encode(), value),
        (InternalTopics.TRANSACTION_MERCHANTS, fact.transaction_id.encode(), value),
    ]


def forward_of_label(fact: LabelFact, partition: int, low_us: int) -> Forward:
    value = StageEvent(partition=partition, low_us=low_us, label=fact).to_json()
    return InternalTopics.MERCHANT_EVENTS, fact.merchant_id.encode(), value
