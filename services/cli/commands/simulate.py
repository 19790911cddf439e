"""`rtml simulate`: produce simulated transactions and late labels to Kafka and/or Parquet."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.cli.args import fraction, non_negative_int, positive_float, positive_int, utc_datetime_or_now
from services.cli.main import UsageError
from services.common.events import Topics
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import get_settings
from services.simulator import SimulatorConfig, StreamSummary, generate, publish, write_parquet
from services.simulator.publish import PublishError

PLAIN_PROGRESS_STEPS = 10  # lines printed over a run when the output is not a terminal


def register(sub: Any) -> None:
    defaults = SimulatorConfig()
    parser = sub.add_parser("simulate", help="produce simulated transactions and delayed labels")
    parser.add_argument("--events", type=positive_int, default=defaults.events, help="transactions to generate")
    parser.add_argument(
        "--rate", type=positive_float, default=None, help="events per second (default: as fast as possible)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="same seed, same stream")
    parser.add_argument(
        "--drift-at", type=positive_int, default=None, help="change the fraud patterns after N transactions"
    )
    parser.add_argument("--users", type=positive_int, default=defaults.users)
    parser.add_argument("--merchants", type=positive_int, default=defaults.merchants)
    parser.add_argument(
        "--start", type=utc_datetime_or_now, default=defaults.start, help="simulated start, ISO 8601 or 'now'"
    )
    parser.add_argument("--fraud-rate", type=fraction, default=defaults.fraud_rate)
    parser.add_argument("--label-share", type=fraction, default=defaults.label_share, help="share ever labelled")
    parser.add_argument("--parquet", type=Path, default=None, metavar="DIR", help="also write the stream as Parquet")
    parser.add_argument("--no-kafka", action="store_true", help="do not publish (use with --parquet)")
    parser.set_defaults(handler=run)


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    try:
        return SimulatorConfig(
            events=args.events,
            seed=args.seed,
            drift_at=args.drift_at,
            users=args.users,
            merchants=args.merchants,
            start=args.start,
            fraud_rate=args.fraud_rate,
            label_share=args.label_share,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _parquet_summary(transactions: Path, labels: Path) -> StreamSummary:
    is_fraud = pd.read_parquet(transactions, columns=["is_fraud"])["is_fraud"]
    return StreamSummary(
        transactions=len(is_fraud), frauds=int(is_fraud.sum()), labels=len(pd.read_parquet(labels, columns=[]))
    )


def _publish(config: SimulatorConfig, rate: float | None) -> StreamSummary:
    settings = get_settings()
    ensure_topics(settings, [Topics.TRANSACTIONS, Topics.LABELS], timeout_s=15)
    summary = StreamSummary()
    expected = round(config.events * (1 + config.label_share))
    producer = make_producer(settings)
    try:
        if sys.stdout.isatty():
            columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns) as bar:
                task = bar.add_task("publish", total=expected)
                publish(summary.count(generate(config)), producer, rate, lambda n: bar.update(task, completed=n))
                bar.update(task, total=summary.transactions + summary.labels)
        else:
            publish(summary.count(generate(config)), producer, rate, _plain_progress(expected))
    finally:
        producer.close()
    print(f"published to {Topics.TRANSACTIONS} and {Topics.LABELS} at {settings.kafka_bootstrap}")
    return summary


def _plain_progress(expected: int) -> Callable[[int], None]:
    step = max(1, expected // PLAIN_PROGRESS_STEPS)
    next_report = [step]

    def report(sent: int) -> None:
        if sent >= next_report[0]:
            print(f"published {sent} events", flush=True)
            next_report[0] = sent + step

    return report


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if args.no_kafka and args.parquet is None:
        raise UsageError("--no-kafka needs --parquet DIR, otherwise nothing would be written")
    summary = None
    if args.parquet is not None:
        if args.parquet.exists() and not args.parquet.is_dir():
            raise UsageError(f"--parquet: {args.parquet} exists and is not a directory")
        transactions, labels = write_parquet(config, args.parquet)
        print(f"wrote {transactions} and {labels}")
        summary = _parquet_summary(transactions, labels)
    if not args.no_kafka:
        try:
            summary = _publish(config, args.rate)
        except (RuntimeError, PublishError) as exc:
            print(f"rtml simulate: {exc}", file=sys.stderr)
            return 1
    assert summary is not None
    print(f"simulated {summary.line()}")
    return 0
