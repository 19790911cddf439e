"""Fixtures of the feature tests: a real Tansu broker per module, the feature service as a real
process (one or several instances), and helpers comparing the Feast store with the backfill of
the same events."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pandas as pd
import pytest
from kafka import KafkaConsumer, TopicPartition

from services.common.broker import EmbeddedBroker, free_port
from services.common.events import InternalTopics, Topics
from services.common.kafka import ensure_topics
from services.common.settings import REPO_ROOT, Settings, load_settings
from services.feature.service import GROUPS
from services.feature.store import open_store
from services.features import names as n
from services.features.backfill import Backfill, compute
from services.simulator import SimEvent, to_frames


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="module")
def settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("feature-data")
    s = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=data, feature_port=free_port())
    ensure_topics(s)
    return s


class ServiceProcess:
    """``python -m services.feature`` as its container runs it."""

    def __init__(self, settings: Settings, log: Path, port: int | None = None, stages: str | None = None) -> None:
        self.settings = settings
        self.log = log
        self.port = port or settings.feature_port
        self.stages = stages  # RTML_FEATURE_STAGES; None runs every stage
        self.extra_env: dict[str, str] = {}  # further RTML_* settings for this service only
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        env = {
            **os.environ,
            "RTML_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "RTML_DATA_DIR": str(self.settings.data_dir),
            "RTML_FEATURE_PORT": str(self.port),
            "RTML_LOG_FORMAT": "console",
            **({"RTML_FEATURE_STAGES": self.stages} if self.stages else {}),
            **self.extra_env,
        }
        out = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "services.feature"], cwd=REPO_ROOT, env=env,
                                     stdout=out, stderr=subprocess.STDOUT)
        return self.wait_ready()

    def wait_ready(self) -> ServiceProcess:
        """Until /readyz answers 200: every stage of the process assigned and its state rebuilt."""
        assert self.proc is not None
        url = f"{self.url}/readyz"
        detail = "no answer"
        for _ in range(600):
            assert self.proc.poll() is None, f"feature service exited; log: {self.log.read_text()[-3000:]}"
            try:
                answer = httpx.get(url, timeout=1)
                if answer.status_code == 200:
                    return self
                detail = answer.text
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        # The readiness detail names the stage still waiting; the log's "partitions revoked /
        # assigned" lines say whether it waits on its group's rebalance or on its state rebuild.
        raise AssertionError(
            f"feature service never became ready ({detail}); log: {self.log.read_text()[-6000:]}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(settings, tmp_path / "feature-service.log")
    yield proc
    if proc.alive():
        proc.kill()


def committed(settings: Settings, stage: str, tps: Sequence[TopicPartition]) -> int:
    """Total committed offsets of a stage's group on ``tps``."""
    # A group member that never subscribes only reads the group's offsets; it does not join.
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=GROUPS[stage],
                           enable_auto_commit=False)
    try:
        return sum(reader.committed(tp) or 0 for tp in tps)
    finally:
        reader.close(autocommit=False)


def partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        return [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
    finally:
        reader.close()


def committed_and_end(settings: Settings) -> tuple[int, int]:
    """Committed offsets of the contract topics (the user stage's on rtml.transactions, the label
    stage's on rtml.labels) and the total of their end offsets as the broker reports them."""
    txns, labels = partitions(settings, Topics.TRANSACTIONS), partitions(settings, Topics.LABELS)
    done = committed(settings, "user", txns) + committed(settings, "label", labels)
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        return done, sum(reader.end_offsets([*txns, *labels]).values())
    finally:
        reader.close()


def topic_end(settings: Settings, topic: str) -> tuple[list[TopicPartition], int]:
    """A topic's partitions and its total end offset, read from the log's tail: the embedded
    broker's ListOffsets may report less than what is there."""
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        reader.assign(tps)
        ends = reader.end_offsets(tps)
        for tp in tps:
            reader.seek(tp, max(0, ends[tp] - 1))
        idle = 0
        while idle < 2:
            polled = reader.poll(timeout_ms=300)
            for tp, records in polled.items():
                ends[tp] = max(ends[tp], records[-1].offset + 1)
            idle = 0 if polled else idle + 1
        return tps, sum(ends.values())
    finally:
        reader.close()


def wait_caught_up(
    settings: Settings, services: ServiceProcess | Sequence[ServiceProcess], published: int, limit_s: float = 200
) -> None:
    """Wait until every stage committed everything (a bound, not a speed check): the contract
    topics' ``published`` records, then each internal topic as it stands once its producing
    stages are done (they forward before they commit).

    Counts what the test published rather than trusting ListOffsets end offsets, which the
    embedded broker reports behind the committed positions."""
    # Not isinstance(ServiceProcess): pytest imports this conftest under a second module name too.
    running = list(services) if isinstance(services, list | tuple) else [services]
    deadline = time.monotonic() + limit_s

    def wait(done: Callable[[], int], target: int, what: str) -> None:
        while True:
            for service in running:
                assert service.alive(), f"feature service died; log: {service.log.read_text()[-3000:]}"
            got = done()
            if got >= target:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: committed {got} of {target} records")
            time.sleep(0.5)

    wait(lambda: committed_and_end(settings)[0], published, "contract topics")
    for stage, topic in (("label", InternalTopics.TRANSACTION_MERCHANTS), ("merchant", InternalTopics.MERCHANT_EVENTS)):
        tps, end = topic_end(settings, topic)
        wait(functools.partial(committed, settings, stage, tps), end, f"{stage} stage on {topic}")


def online_frame(settings: Settings, view: str, keys: list[str]) -> pd.DataFrame:
    store = open_store(settings)
    key = n.VIEW_JOIN_KEY[view]
    refs = [f"{view}:{name}" for name in n.VIEW_FEATURES[view]]
    got = store.get_online_features(features=refs, entity_rows=[{key: k} for k in keys]).to_df()
    return got[[key, *n.VIEW_FEATURES[view]]].sort_values(key).reset_index(drop=True)


def offline_frame(settings: Settings, view: str) -> pd.DataFrame:
    """The offline table with revisions collapsed the way point-in-time joins read it."""
    path = settings.data_dir / "feast" / "offline" / f"{view}.parquet"
    frame = pd.read_parquet(path)
    key = n.VIEW_JOIN_KEY[view]
    frame = frame.sort_values([key, n.EVENT_TIMESTAMP, n.CREATED_TIMESTAMP])
    frame = frame.drop_duplicates([key, n.EVENT_TIMESTAMP], keep="last")
    return frame[[key, n.EVENT_TIMESTAMP, *n.VIEW_FEATURES[view]]].reset_index(drop=True)


def normalise(frame: pd.DataFrame) -> list[dict[str, object]]:
    rows = []
    for rec in frame.to_dict("records"):
        rows.append({k: (list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v) for k, v in rec.items()})
    return rows


def assert_online_equals_backfill(settings: Settings, backfill: Backfill) -> None:
    for view in n.VIEW_FEATURES:
        key = n.VIEW_JOIN_KEY[view]
        # What the online store should hold: each key's newest backfill row.
        expected = backfill.rows[view].sort_values([key, n.EVENT_TIMESTAMP]).drop_duplicates(key, keep="last")
        expected = expected[[key, *n.VIEW_FEATURES[view]]].sort_values(key).reset_index(drop=True)
        got = online_frame(settings, view, expected[key].tolist())
        assert len(got) == len(expected) > 0
        mismatched = [
            (e, g) for e, g in zip(normalise(expected), normalise(got), strict=True) if e != g
        ]
        assert not mismatched, f"{view}: {len(mismatched)} keys differ, first: {mismatched[0]}"


def assert_store_equals_backfill_of(settings: Settings, events: Sequence[SimEvent], min_labels: int) -> Backfill:
    """The backfill of a simulator stream (none of it late, at least ``min_labels`` labels joined)
    equals the store, online and offline, exactly; returns it."""
    transactions, labels = to_frames(events)
    backfill = compute(transactions, labels)
    assert backfill.dropped_late == 0 and len(backfill.labels) > min_labels
    assert_online_equals_backfill(settings, backfill)
    assert_offline_equals_backfill(settings, backfill)
    return backfill


def assert_offline_equals_backfill(settings: Settings, backfill: Backfill) -> None:
    for view in n.VIEW_FEATURES:
        key = n.VIEW_JOIN_KEY[view]
        expected = backfill.rows[view].sort_values([key, n.EVENT_TIMESTAMP]).reset_index(drop=True)
        got = offline_frame(settings, view)
        expected[n.EVENT_TIMESTAMP] = expected[n.EVENT_TIMESTAMP].astype(got[n.EVENT_TIMESTAMP].dtype)
        assert len(got) == len(expected), f"{view}: {len(got)} offline rows, backfill has {len(expected)}"
        mismatched = [(e, g) for e, g in zip(normalise(expected), normalise(got), strict=True) if e != g]
        assert not mismatched, f"{view}: {len(mismatched)} rows differ, first: {mismatched[0]}"
