"""Replays simulated events against the running system the way a payment system would:
score each transaction over HTTP first, then record it (and, later, its label) on Kafka."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import aiohttp
from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from services.common.events import Topics, Transaction
from services.demo.readable import OnlineWrites
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
    # Waits for a user's previous payment to be readable online before scoring the next one.
    feature_waits: int = 0
    feature_wait_s: float = 0.0
    feature_wait_timeouts: int = 0  # scored anyway: the feature service did not write in time


def _chunks(events: Iterable[SimEvent], size: int) -> Iterator[list[SimEvent]]:
    """Runs of at most ``size`` events holding each user's transaction at most once: a chunk is
    scored concurrently and recorded after, so a second payment of a user in the same chunk could
    not see the first."""
    chunk: list[SimEvent] = []
    users: set[str] = set()
    for event in events:
        repeat = event.topic == Topics.TRANSACTIONS and event.key in users
        if repeat or len(chunk) >= size:
            yield chunk
            chunk, users = [], set()
        chunk.append(event)
        if event.topic == Topics.TRANSACTIONS:
            users.add(event.key)
    if chunk:
        yield chunk


class TrafficDriver:
    """Scores transactions with bounded concurrency, then publishes them; never raises on a failed request.

    With ``online_writes``, a user's transaction is scored only once the user's previous one is
    written to the online store (services/demo/readable.py): features as a real stream sees them.
    """

    def __init__(
        self,
        inference_url: str,
        producer: KafkaProducer,
        token: str = "",
        concurrency: int = 16,
        timeout_s: float = 10.0,
        online_writes: OnlineWrites | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = inference_url.rstrip("/")
        self.headers = headers
        self.producer = producer
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.online_writes = online_writes
        self.stats = TrafficStats()
        # The newest recorded, not yet known written, transaction of each user.
        self._unwritten: dict[str, FutureRecordMetadata] = {}

    def _await_predecessors(self, chunk: list[SimEvent]) -> None:
        """Block until the previous transaction of every user in ``chunk`` is readable online."""
        if self.online_writes is None:
            return
        sent = [self._unwritten[e.key] for e in chunk if e.topic == Topics.TRANSACTIONS and e.key in self._unwritten]
        if not sent:
            return
        needed: dict[int, int] = {}
        for future in sent:
            meta = future.get(timeout=self.timeout_s)  # the producer sends within its linger
            needed[meta.partition] = max(needed.get(meta.partition, -1), meta.offset)
        writes = self.online_writes
        waits, waited = writes.waits, writes.waited_s
        if not writes.wait_for(needed):
            self.stats.feature_wait_timeouts += 1
        self.stats.feature_waits += writes.waits - waits
        self.stats.feature_wait_s += writes.waited_s - waited
        # Forget what is now known written, so the map holds only the last few chunks.
        for user, future in list(self._unwritten.items()):
            if future.is_done and future.succeeded():
                meta = future.value
                if writes.covers({meta.partition: meta.offset}):
                    del self._unwritten[user]

    async def _score(self, session: aiohttp.ClientSession, txn: Transaction) -> None:
        try:
            async with session.post(f"{self.url}/predict", data=txn.to_json()) as resp:
                status, body = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.requests_failed += 1
            self.stats.failures[type(exc).__name__] += 1
            return
        if status != 200:
            self.stats.requests_failed += 1
            self.stats.failures[f"HTTP {status}"] += 1
            return
        version = str(json.loads(body).get("model_version", ""))
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
        # aiohttp, not httpx: httpx's per-request cost (its pool checks every idle connection) was a
        # third of the demo process's CPU, on the same two cores as the services it drives.
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            headers={**self.headers, "content-type": "application/json"},
        ) as session:
            sem = asyncio.Semaphore(self.concurrency)

            async def bounded(txn: Transaction) -> None:
                async with sem:
                    await self._score(session, txn)

            for chunk in _chunks(events, self.concurrency * 4):
                if should_stop():
                    break
                chunk_started = time.monotonic()
                self._await_predecessors(chunk)
                txns = [e.event for e in chunk if isinstance(e.event, Transaction)]
                await asyncio.gather(*(bounded(t) for t in txns))
                # Recorded only after scoring: online features then hold the state *before* each transaction.
                for event in chunk:
                    future = self.producer.send(event.topic, key=event.key.encode(), value=event.event.to_json())
                    if event.topic == Topics.TRANSACTIONS:
                        self.stats.transactions += 1
                        if self.online_writes is not None:
                            self._unwritten[event.key] = future
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
