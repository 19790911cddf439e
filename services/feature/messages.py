"""What one feature-service stage passes to the next over the internal topics.

A stage forwards in batches: one record per (internal topic, target partition, source
partition) per micro-batch, holding every fact of that batch bound for that partition (the
per-fact record it replaces cost a JSON encode, a send and a decode per fact and stage).
Each record carries a low watermark of the contract partition its facts came from: no later
fact from that partition has an earlier event time. The receiving stage keeps the latest
watermark per source and only forgets state (or gives up on a label) below the slowest one,
so a lagging instance upstream never makes a downstream stage drop what a fact still to come
needs.

Records go to an explicit partition chosen with Kafka's default partitioner (murmur2 of the
fact's key), so each fact lands where a keyed record would: rtml.transaction-merchants stays
co-partitioned with rtml.labels, which outside producers key by transaction_id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Self, TypeVar

from murmurhash2 import murmurhash2
from pydantic import Field, model_validator

from services.common.events import Event, InternalTopics
from services.features.aggregate import LabelFact, TxnFact

# Facts per forwarded record: ~150 bytes of JSON each keeps a record well under the decoder's
# MAX_EVENT_BYTES (64 KiB), past which the next stage would dead-letter it.
MAX_FACTS_PER_RECORD = 200

T = TypeVar("T", TxnFact, LabelFact)


class FactBatch(Event):
    """Accepted transactions (user stage → label and merchant stages) or labels attributed to
    their transaction's merchant (label stage → merchant stage), from one source partition."""

    partition: int  # source: the rtml.transactions partition of transactions, rtml.labels of labels
    low_us: int
    transactions: list[TxnFact] = Field(default_factory=list)
    labels: list[LabelFact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if bool(self.transactions) == bool(self.labels):
            raise ValueError("exactly one of transactions and labels must be non-empty")
        return self


Forward = tuple[str, int, bytes]  # (topic, partition, value) to publish once the batch is written


# The seed of Kafka's murmur2 (Java's Utils.murmur2, kafka-python's partitioner.default.murmur2).
KAFKA_MURMUR2_SEED = 0x9747B28C


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's and kafka-python's) picks for a key.

    The same MurmurHash2 in C: kafka-python's pure-Python one cost ~3 µs a key, 6 % of the user
    stage (a transaction id is hashed for every accepted transaction); tests/feature/
    test_forward_batches.py checks both agree."""
    return (murmurhash2(key.encode(), KAFKA_MURMUR2_SEED) & 0x7FFFFFFF) % partitions


# Merchants recur, so their partitions are remembered; transaction ids never recur.
merchant_partition_of = lru_cache(maxsize=1 << 16)(partition_of)


def _grouped(
    facts: Iterable[tuple[int, T]], key: Callable[[T], str], partitions: int,
    partitioner: Callable[[str, int], int] = partition_of,
) -> dict[tuple[int, int], list[T]]:
    """Facts by (target partition, source partition), in arrival order."""
    groups: dict[tuple[int, int], list[T]] = defaultdict(list)
    for source, fact in facts:
        groups[partitioner(key(fact), partitions), source].append(fact)
    return groups


def _records(
    topic: str, groups: dict[tuple[int, int], list[T]], lows: dict[int, int], make: Callable[[int, int, list[T]], FactBatch]
) -> list[Forward]:
    out: list[Forward] = []
    for (target, source), facts in groups.items():
        for start in range(0, len(facts), MAX_FACTS_PER_RECORD):
            out.append((topic, target, make(source, lows[source], facts[start : start + MAX_FACTS_PER_RECORD]).to_json()))
    return out


def forwards_of_transactions(
    accepted: Iterable[tuple[int, TxnFact]], lows: dict[int, int], partitions: dict[str, int]
) -> list[Forward]:
    """Accepted (source partition, transaction) pairs for the merchant stage (by merchant_id) and
    the label join (by transaction_id); ``partitions`` are the internal topics' counts."""
    accepted = list(accepted)

    def make(source: int, low: int, facts: list[TxnFact]) -> FactBatch:
        return FactBatch(partition=source, low_us=low, transactions=facts)

    routes: tuple[tuple[str, Callable[[TxnFact], str], Callable[[str, int], int]], ...] = (
        (InternalTopics.MERCHANT_EVENTS, lambda f: f.merchant_id, merchant_partition_of),
        (InternalTopics.TRANSACTION_MERCHANTS, lambda f: f.transaction_id, partition_of),
    )
    return [
        forward
        for topic, key, partitioner in routes
        for forward in _records(topic, _grouped(accepted, key, partitions[topic], partitioner), lows, make)
    ]


def forwards_of_labels(
    labels: Iterable[tuple[int, LabelFact]], lows: dict[int, int], partitions: dict[str, int]
) -> list[Forward]:
    """Attributed (source partition, label) pairs for the merchant stage, by merchant_id."""

    def make(source: int, low: int, facts: list[LabelFact]) -> FactBatch:
        return FactBatch(partition=source, low_us=low, labels=facts)

    groups = _grouped(labels, lambda f: f.merchant_id, partitions[InternalTopics.MERCHANT_EVENTS], merchant_partition_of)
    return _records(InternalTopics.MERCHANT_EVENTS, groups, lows, make)
