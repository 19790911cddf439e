"""Where the user stage's time goes, in-process (``python -m benchmarks.feature_user_stage [N]``).

No broker: N simulated transactions (default 30,000) as consumer records go through the user
stage's own code in batches of the service's size (``batch_limit``), timing each step of a batch:
decode + state (``UserStage.apply``), forwards to the internal topics, feature rows, the offline
part (table build and write) and the online write (protos, then the provider's SQLite upsert) on
the local Feast store, with the service's garbage-collector settings. Prints microseconds per
transaction for each step.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from services.common.events import InternalTopics, Topics, Transaction, encode
from services.common.heap import collect_young_rarely, freeze_startup_heap
from services.common.settings import load_settings
from services.feature.messages import forwards_of_transactions, partition_of
from services.feature.service import batch_limit
from services.feature.stages import UserStage
from services.feature.state import batch_lows
from services.feature.store import apply_repo, open_store
from services.feature.writer import FeatureWriter, newest_per_key, online_rows, rows_table
from services.features import names as n
from services.simulator import SimulatorConfig, generate

PARTITIONS = 3


def records(transactions: list[Transaction]) -> list[ConsumerRecord]:
    out = []
    for offset, txn in enumerate(transactions):
        value = encode(txn)
        out.append(ConsumerRecord(Topics.TRANSACTIONS, partition_of(txn.user_id, PARTITIONS), -1, offset, 0, 0,
                                  txn.user_id.encode(), value, [], None, -1, len(value), -1))
    return out


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    txns = [s.event for s in generate(SimulatorConfig(events=count, seed=7)) if isinstance(s.event, Transaction)]
    batch_records = records(txns)
    spent: dict[str, float] = defaultdict(float)
    online_written = 0
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "data")
        apply_repo(settings)
        batch = batch_limit(settings)
        store = open_store(settings)
        writer = FeatureWriter(store)
        internal = {topic: PARTITIONS for topic in InternalTopics.ALL}
        stage = UserStage(internal)
        stage.reset({TopicPartition(Topics.TRANSACTIONS, p) for p in range(PARTITIONS)})
        # As the service does before it consumes (services/feature/service.py run).
        freeze_startup_heap()
        collect_young_rarely()

        def timed(step: str, started: float) -> float:
            now = time.perf_counter()
            spent[step] += now - started
            return now

        for start in range(0, len(batch_records), batch):
            mark = time.perf_counter()
            for record in batch_records[start : start + batch]:
                stage.apply(record)
            mark = timed("decode + state", mark)
            accepted, stage.accepted = stage.accepted, []
            lows = batch_lows(stage.state.progress, ((p, f.ts_us) for p, f in accepted))
            forwards_of_transactions(accepted, lows, internal)
            mark = timed("forwards", mark)
            rows = stage.state.take_rows()
            mark = timed("feature rows", mark)
            created = datetime.now(UTC)
            for view, view_rows in rows.items():
                table = writer.offline(view)
                part = rows_table(view, view_rows, created, table.schema)
                table.write(part)
                mark = timed("offline part", mark)
                feature_view, converters = writer.view(view)
                newest = newest_per_key(view_rows, n.VIEW_JOIN_KEY[view])
                online = online_rows(view, newest, converters, stage.revisions, created)
                mark = timed("online protos", mark)
                store.provider.online_write_batch(store.config, feature_view, online, progress=None)
                mark = timed("online SQLite upsert", mark)
                online_written += len(online)
    users = len({t.user_id for t in txns})
    print(f"{len(txns)} transactions, {users} users, batches of {batch}, {online_written} online rows written")
    for step, seconds in spent.items():
        print(f"{step:>22}: {seconds / len(txns) * 1e6:6.1f} µs per transaction")
    print(f"{'total':>22}: {sum(spent.values()) / len(txns) * 1e6:6.1f} µs per transaction")


if __name__ == "__main__":
    main()
