"""Replays simulated events against the running system the way a payment system would:
score each transaction over HTTP first, then record it (and, later, its label) on Kafka."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import httpx
from kafka import KafkaProducer

from services.common.events import Topics, Transaction
from services.simulator import SimEvent


@dataclass
class TrafficStats:
    transactions: int = 0
    labels: int = 0
    requests_ok: int = 0
    requests_failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    last_version: str = ""
    # (transaction index, version) each time the answering version changed
    version_changes: list[tuple[int, str]] = field(default_factory=list)
    held_s: float = 0.0  # time the traffic was held (rate 0) rather than sent


def _chunks(events: Iterable[SimEvent], size: int) -> Iterator[list[SimEvent]]:
    it = iter(events)
    while chunk := list(islice(it, size)):
        yield chunk


class TrafficDriver:
    """Scores transactions with bounded concurrency, then publishes them; never raises on a failed request."""

    def __init__(
        self,
        inference_url: str,
        producer: KafkaProducer,
        token: str = "",
        concurrency: int = 16,
        timeout_s: float = 10.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = inference_url.rstrip("/")
        self.headers = headers
        self.producer = producer
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.stats = TrafficStats()

    async def _score(self, client: httpx.AsyncClient, txn: Transaction) -> None:
        try:
            resp = await client.post(
                f"{self.url}/predict",
                content=txn.to_json(),
                headers={**self.headers, "content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            self.stats.requests_failed += 1
            self.stats.failures[type(exc).__name__] += 1
            return
        if resp.status_code != 200:
            self.stats.requests_failed += 1
            self.stats.failures[f"HTTP {resp.status_code}"] += 1
            return
        version = str(resp.json().get("model_version", ""))
        self.stats.requests_ok += 1
        self.stats.versions[version] += 1
        if version != self.stats.last_version:
            self.stats.version_changes.append((self.stats.transactions, version))
            self.stats.last_version = version

    async def _run(
        self,
        events: Iterable[SimEvent],
        rate: Callable[[], float | None],
        on_progress: Callable[[TrafficStats], None] | None,
        should_stop: Callable[[], bool],
    ) -> TrafficStats:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits) as client:
            sem = asyncio.Semaphore(self.concurrency)

            async def bounded(txn: Transaction) -> None:
                async with sem:
                    await self._score(client, txn)

            for chunk in _chunks(events, self.concurrency * 4):
                if should_stop():
                    break
                chunk_started = time.monotonic()
                txns = [e.event for e in chunk if isinstance(e.event, Transaction)]
                await asyncio.gather(*(bounded(t) for t in txns))
                # Recorded only after scoring: online features then hold the state *before* each transaction.
                for event in chunk:
                    self.producer.send(event.topic, key=event.key.encode(), value=event.event.to_json())
                    if event.topic == Topics.TRANSACTIONS:
                        self.stats.transactions += 1
                    else:
                        self.stats.labels += 1
                if on_progress:
                    on_progress(self.stats)
                # The rate may change while running (the demo slows down while a model retrains);
                # 0 holds the traffic until it is not 0 (the demo waits for the monitor to catch up).
                current = rate()
                while current == 0 and not should_stop():
                    await asyncio.sleep(0.2)
                    self.stats.held_s += 0.2
                    current = rate()
                if current:
                    ahead = len(chunk) / current - (time.monotonic() - chunk_started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            self.producer.flush()
        return self.stats

    def run(
        self,
        events: Iterable[SimEvent],
        rate: Callable[[], float | None] = lambda: None,
        on_progress: Callable[[TrafficStats], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> TrafficStats:
        """Score then record ``events``; ``rate()`` is read after every chunk (None = unpaced, 0 = hold)."""
        return asyncio.run(self._run(events, rate, on_progress, should_stop))
