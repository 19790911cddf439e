"""Simulator throughput: generating 300,000 transactions, and publishing to a local Tansu broker.

Run: python -m benchmarks.simulator_throughput [--events N] [--publish-events N]
"""

from __future__ import annotations

import argparse
import resource
import time

from services.common.broker import EmbeddedBroker
from services.common.events import Topics
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import load_settings
from services.simulator import SimulatorConfig, StreamSummary, generate, publish


def bench_generate(events: int) -> None:
    summary = StreamSummary()
    started = time.perf_counter()
    for _ in summary.count(generate(SimulatorConfig(events=events, drift_at=events // 2))):
        pass
    elapsed = time.perf_counter() - started
    total = summary.transactions + summary.labels
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"generate: {summary.transactions} transactions + {summary.labels} labels in {elapsed:.2f} s "
          f"({total / elapsed:,.0f} events/s), peak RSS {peak_mib:.0f} MiB, {summary.line()}")  # fmt: skip


def bench_publish(events: int) -> None:
    with EmbeddedBroker() as broker:
        settings = load_settings(kafka_bootstrap=broker.bootstrap)
        ensure_topics(settings, [Topics.TRANSACTIONS, Topics.LABELS])
        producer = make_producer(settings)
        started = time.perf_counter()
        sent = publish(generate(SimulatorConfig(events=events)), producer)
        elapsed = time.perf_counter() - started
        producer.close()
    print(f"publish (generate + send + flush, acks=all) to Tansu: {sent} events in {elapsed:.2f} s "
          f"({sent / elapsed:,.0f} events/s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--publish-events", type=int, default=50_000)
    args = parser.parse_args()
    bench_generate(args.events)
    bench_publish(args.publish_events)


if __name__ == "__main__":
    main()
