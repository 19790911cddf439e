"""Consumer crashes: the feature service and the monitor, each SIGKILLed at random points while
events stream in (from a thread, whatever the service is doing) and restarted each time, at least
10 times each.

Half the kills land anywhere between a start and its first batch (imports, Feast apply or the
control-topic read, group join, state rebuild, the backlog of the restart arriving), half shortly
after the first batch arrived (the backlog being handled, the stream after it); where each landed
is read from the service's own log. Events in and effects out are counted:

- both: the group committed to the end of the topic and the handler finished every event at least
  once (counted from the consumer's per-batch DEBUG lines, which also count redeliveries);
- feature: every transaction has its row in the offline table with the right 24 h count, and every
  user's online count equals the transactions sent for it (none lost; replays and redeliveries
  absorbed: rows written again carry the same values, never a double count);
- monitor: the one drift episode gives exactly one retraining request, although restarted monitors
  see the drift again (the ledger is rebuilt from rtml.training-requests).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from services.common.broker import EmbeddedBroker
from services.common.events import Topics, TrainingRequest, decode
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings, load_settings
from services.feature.stages import UserStage
from services.feature.store import open_store
from services.features import names as n
from services.inference.online_features import OnlineFeatureReader
from services.monitor.control import ControlReader
from services.monitor.service import GROUP_ID as MONITOR_GROUP
from tests.monitor.traffic import payments, prediction, reference_for, register_version
from tests.resilience.conftest import ServiceProcess, publish_figures, scale

ROUNDS = scale(10, 30)
# Where a kill landed, from the life's log: before readiness (imports, Feast apply or the control-topic
# read; for the feature service also its group join and state rebuild) / ready, no batch received yet
# (the monitor's group join) / after a batch was received (handling the backlog of the restart, or the
# stream after it).
STARTING, READY, CONSUMING = "starting", "ready", "consuming"
BATCH_LINE = "batch received"  # services/common/kafka.py logs it (DEBUG) with each batch, before handling it


def crash_settings(broker: EmbeddedBroker, data_dir: Path) -> Settings:
    # A SIGKILLed member keeps its partitions until its session expires; 2 s (heartbeat every 0.5 s)
    # has it gone by the time its successor, ~3 s of imports later, joins: a join then takes ~1 s
    # instead of ~3 s with a 6 s session (measured on Tansu), which is most of what a round waits.
    settings = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=data_dir,
                             kafka_max_poll_interval_ms=3000, kafka_session_timeout_ms=2000)
    ensure_topics(settings)
    return settings


def log_lines(path: Path, start: int = 0) -> list[dict[str, Any]]:
    """The JSON log lines of ``path`` from byte ``start`` (a SIGKILL can cut the last one short)."""
    if not path.exists():
        return []
    with path.open("rb") as log_file:
        log_file.seek(start)
        raw = log_file.read().decode(errors="replace")
    lines = []
    for line in raw.splitlines():
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            lines.append(parsed)
    return lines


def batch_records(path: Path, message: str, topic: str) -> int:
    """Records of ``topic`` in the service's "batch received" or "batch handled" lines over all its
    lives (services/common/kafka.py, DEBUG). Received: each record once plus once per redelivery.
    Handled: logged after the handler, before the commit, so each record at least once if none was lost."""
    lines = log_lines(path)
    return sum(int(line.get("by_topic", {}).get(topic, 0)) for line in lines if line.get("message") == message)


def kill_plan(rounds: int, rng: random.Random) -> list[str]:
    """Where to aim each kill: the first at consumption (its life measures how long a start takes to
    its first batch, the span start-up kills are spread over), then start-up and consumption in equal
    numbers, in random order."""
    rest = [STARTING if k % 2 == 0 else CONSUMING for k in range(rounds - 1)]
    rng.shuffle(rest)
    return [CONSUMING, *rest]


@dataclass
class Crasher:
    """Starts one service without waiting for it, SIGKILLs it at a random point, notes where it landed."""

    service: ServiceProcess
    ready_line: str  # the log message of a finished start
    rng: random.Random
    consuming_s: float  # a kill aimed at consumption lands up to this long after the life's first batch arrived
    to_first_batch_s: float = 0.0  # start to the first batch received, last measured
    landed: Counter[str] = field(default_factory=Counter)
    life_started: datetime = field(default_factory=lambda: datetime.now(UTC))
    _started_at: float = 0.0
    _log_from: int = 0

    @property
    def kills(self) -> int:
        return sum(self.landed.values())

    def start(self) -> None:
        path = self.service.log_path
        self._log_from = path.stat().st_size if path.exists() else 0
        self._started_at = time.monotonic()
        self.life_started = datetime.now(UTC)
        self.service.start(wait=False)

    def life_messages(self) -> set[str]:
        return {str(line.get("message")) for line in log_lines(self.service.log_path, self._log_from)}

    def wait_first_batch(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while BATCH_LINE not in self.life_messages():
            assert self.service.alive(), f"{self.service.module} died by itself:\n{self.service.log_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no batch received within {timeout_s:.0f}s"
            time.sleep(0.05)
        self.to_first_batch_s = time.monotonic() - self._started_at

    def kill(self, aim: str) -> str:
        """SIGKILL this life at a random point between its start and its first batch (``STARTING``),
        or up to ``consuming_s`` after its first batch arrived (``CONSUMING``); returns where it landed."""
        if aim == STARTING:
            time.sleep(max(0.0, self._started_at + self.rng.uniform(0.0, self.to_first_batch_s) - time.monotonic()))
        else:
            self.wait_first_batch()
            time.sleep(self.rng.uniform(0.0, self.consuming_s))
        assert self.service.alive(), f"{self.service.module} died by itself:\n{self.service.log_text()[-3000:]}"
        self.service.kill()
        messages = self.life_messages()
        where = CONSUMING if BATCH_LINE in messages else READY if self.ready_line in messages else STARTING
        self.landed[where] += 1
        return where


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(0.25)


class EventStream:
    """Events produced from a thread at a steady rate, whatever state the consumer is in, until the
    ``with`` block ends (or ``limit`` is reached); ``event(i)`` gives the i-th (key, value)."""

    def __init__(self, settings: Settings, topic: str, event: Callable[[int], tuple[bytes, bytes]], rate: float,
                 limit: int | None = None) -> None:
        self.settings, self.topic, self.event, self.rate, self.limit = settings, topic, event, rate, limit
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{topic}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        producer = make_producer(self.settings)
        try:
            started = time.monotonic()
            while not self._stop.wait(0.02):
                due = int((time.monotonic() - started) * self.rate)
                while self.sent < (due if self.limit is None else min(due, self.limit)):
                    key, value = self.event(self.sent)
                    producer.send(self.topic, key=key, value=value)
                    self.sent += 1
            producer.flush(timeout=30)
        except BaseException as exc:  # re-raised in the test's thread
            self._error = exc
        finally:
            producer.close()

    def __enter__(self) -> EventStream:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), f"the {self.topic} stream did not stop"
        if self._error is not None:
            raise self._error


@dataclass
class GroupProgress:
    """A consumer group's committed offsets against the end of one topic. The end is found by reading
    the topic: the embedded Tansu broker answers ListOffsets(latest) with the last batch's base offset
    + 1, short of the rest of a multi-record batch until another batch lands (measured: two single
    records then a batch of 3, end 3 instead of 5)."""

    settings: Settings
    group: str
    topic: str

    def __post_init__(self) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers)
        self.consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, group_id=None,
                                      enable_auto_commit=False)
        found = self.consumer.partitions_for_topic(self.topic) or set()
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
        assert self.partitions, f"{self.topic} has no partitions"
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.records = 0  # on the topic, read so far
        self._ends = dict.fromkeys(self.partitions, 0)

    def ends(self) -> dict[TopicPartition, int]:
        while polled := self.consumer.poll(timeout_ms=300):
            for tp, records in polled.items():
                self.records += len(records)
                self._ends[tp] = max(self._ends[tp], *(r.offset + 1 for r in records))
        return dict(self._ends)

    def committed(self) -> dict[TopicPartition, int]:
        offsets = self.admin.list_group_offsets({self.group: self.partitions}).get(self.group, {})
        return {tp: max(0, offsets[tp].offset) if tp in offsets else 0 for tp in self.partitions}

    def behind(self) -> int:
        """Records on the topic past the group's commits: not (yet) handled for good."""
        ends, committed = self.ends(), self.committed()
        return sum(max(0, ends[tp] - committed[tp]) for tp in self.partitions)

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


# ---- feature service ---------------------------------------------------------------------------

FEATURE_RATE = scale(50, 100)  # transactions per second, sent throughout, whatever the service is doing
USERS = 20


@pytest.fixture(scope="module")
def feature_settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return crash_settings(broker, tmp_path_factory.mktemp("crash") / "data")


@pytest.fixture()
def feature(feature_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = ServiceProcess("services.feature", feature_settings, "RTML_FEATURE_PORT",
                             tmp_path_factory.mktemp("crash-log") / "feature.log",
                             {"RTML_LOG_FORMAT": "json", "RTML_LOG_LEVEL": "DEBUG"})
    yield service
    service.kill()


def micros(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def offline_rows(settings: Settings) -> pd.DataFrame:
    """Every row of the user view's offline table written for this scenario's users, rewrites included."""
    path = settings.data_dir / "feast" / "offline" / f"{n.USER_VIEW}.parquet"
    columns = [n.USER_JOIN_KEY, n.EVENT_TIMESTAMP, n.CREATED_TIMESTAMP, n.USER_TXN_COUNT_24H]
    frame = pd.read_parquet(path, columns=columns)
    frame = frame[frame[n.USER_JOIN_KEY].str.startswith("u-crash-")].copy()
    frame["at_us"] = frame[n.EVENT_TIMESTAMP].map(lambda at: at.value // 1000)
    return frame


def transaction(i: int, user: str, at: datetime) -> dict[str, Any]:
    return {"schema_version": 1, "transaction_id": f"t-crash-{i}", "user_id": user, "merchant_id": "m-crash",
            "amount": 10.0 + i % 7, "currency": "EUR", "country": "DE", "channel": "pos",
            "timestamp": at.isoformat().replace("+00:00", "Z")}


@pytest.mark.timeout(scale(300, 900))
def test_feature_service_sigkill_rounds(feature: ServiceProcess, feature_settings: Settings) -> None:
    rng = random.Random(7)
    # The first batch of a life (the restart's backlog) takes 0.2-0.6 s to write; the stream keeps it busy after.
    crasher = Crasher(feature, "window state rebuilt", rng, consuming_s=1.0)
    start = datetime.now(UTC) - timedelta(minutes=5)

    def event(i: int) -> tuple[bytes, bytes]:
        user = f"u-crash-{i % USERS}"
        return user.encode(), json.dumps(transaction(i, user, start + timedelta(milliseconds=i))).encode()

    with EventStream(feature_settings, Topics.TRANSACTIONS, event, FEATURE_RATE) as stream:
        for aim in kill_plan(ROUNDS, rng):
            crasher.start()
            crasher.kill(aim)
        # The last life: replays what was committed, handles the rest (redeliveries included).
        crasher.start()
        crasher.service.wait_ready()
    total = stream.sent
    sent = Counter(f"u-crash-{i % USERS}" for i in range(total))
    reader = OnlineFeatureReader(open_store(feature_settings))
    keys = [(user, "m-crash") for user in sorted(sent)]
    progress = GroupProgress(feature_settings, UserStage.group, Topics.TRANSACTIONS)

    def counts() -> dict[str, int]:
        return {user: int(row.get(n.USER_TXN_COUNT_24H) or 0) for (user, _), row in zip(keys, reader.read_entities(keys), strict=True)}

    try:
        deadline = time.monotonic() + 120
        while (counts() != sent or progress.behind() > 0) and time.monotonic() < deadline:
            time.sleep(0.5)
        stored, behind, on_topic = counts(), progress.behind(), progress.records
    finally:
        progress.close()
    # Per event: its row in the offline table (the training history), as point-in-time reads see it
    # (the newest write of a (user, event time) wins). The k-th transaction of a user counts k in 24 h.
    # Online counts alone would not show a lost batch: the next write of the user carries the full
    # count again, as the state is rebuilt from the topic.
    expected = {(f"u-crash-{i % USERS}", micros(start + timedelta(milliseconds=i))): i // USERS + 1
                for i in range(total)}
    rows = offline_rows(feature_settings)
    latest = rows.sort_values(n.CREATED_TIMESTAMP).drop_duplicates([n.USER_JOIN_KEY, "at_us"], keep="last")
    written = {(u, int(at)): int(c) for u, at, c in zip(latest[n.USER_JOIN_KEY], latest["at_us"], latest[n.USER_TXN_COUNT_24H], strict=True)}
    lost = sum(1 for key in expected if key not in written)
    miscounted = sum(1 for key, count in written.items() if expected.get(key) != count)
    processed = batch_records(feature.log_path, "batch handled", Topics.TRANSACTIONS)
    deliveries = batch_records(feature.log_path, BATCH_LINE, Topics.TRANSACTIONS)
    publish_figures("feature-sigkill", {
        "rounds": ROUNDS, "kills": crasher.kills, "kills_landed": dict(crasher.landed), "events_sent": total,
        "processed": processed, "redelivered": deliveries - total, "online_count": sum(stored.values()),
        "offline_rows": len(rows), "offline_rows_rewritten": len(rows) - len(latest),
        "lost": lost, "duplicated": miscounted, "uncommitted": behind,
    })
    assert crasher.kills >= ROUNDS and total > 0
    assert on_topic == total, f"{on_topic} transactions on the topic, {total} sent"
    assert stored == dict(sent), "online counts differ from the transactions sent"
    assert lost == 0 and miscounted == 0, f"{lost} transactions without their offline row, {miscounted} rows miscounted"
    assert behind == 0, f"{behind} transactions never committed by the group"
    assert processed >= total, f"the handler finished only {processed} of {total} transactions"


# ---- monitor -----------------------------------------------------------------------------------

MONITOR_RATE = scale(100, 200)  # prediction logs per second
WINDOW, MIN_SAMPLES = 400, 200  # small windows: a life crosses the drift threshold after ~200 drifted predictions
DRIFTED = "txn_amount_log"


@pytest.fixture()
def monitor(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[ServiceProcess]:
    settings = crash_settings(broker, tmp_path / "data")
    service = ServiceProcess("services.monitor", settings, "RTML_MONITOR_PORT", tmp_path / "monitor.log", {
        "RTML_LOG_FORMAT": "json", "RTML_LOG_LEVEL": "DEBUG",
        "RTML_MONITOR_WINDOW": str(WINDOW), "RTML_MONITOR_MIN_SAMPLES": str(MIN_SAMPLES),
    })
    yield service
    service.kill()


def monitor_requests(settings: Settings) -> list[TrainingRequest]:
    reader = ControlReader(settings, [Topics.TRAINING_REQUESTS])
    try:
        requests = [decode(TrainingRequest, r.value) for r in reader.read_to_end()]
    finally:
        reader.close()
    return [r for r in requests if r.requested_by == "monitor"]


def monitor_state(service: ServiceProcess) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{service.url}/api/state", timeout=5)
    except httpx.HTTPError:
        return None
    return dict(response.json()) if response.status_code == 200 else None


def drift_crossed(state: dict[str, Any] | None) -> bool:
    drift = state["drift"] if state else {"window": 0, "psi": {}, "psi_threshold": 1.0}
    return bool(drift["window"] >= MIN_SAMPLES and drift["psi"].get(DRIFTED, 0.0) >= drift["psi_threshold"])


def sees_drift_again(state: dict[str, Any] | None, life_started: datetime) -> bool:
    """The drift crossed while the ledger holds a request made before this life: without the ledger
    rebuilt from rtml.training-requests, this life would ask again."""
    earlier = [r for r in (state or {}).get("requests", []) if datetime.fromisoformat(r["at"]) < life_started]
    return drift_crossed(state) and bool(earlier)


class DriftWatcher:
    """Reads the monitor's /api/state from a thread (never delaying a kill) and notes each life, by its
    start, that saw the drift again with an earlier request in its ledger."""

    def __init__(self, crasher: Crasher) -> None:
        self.crasher = crasher
        self.lives: set[datetime] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift-watcher", daemon=True)

    def check(self) -> bool:
        life = self.crasher.life_started  # before the read: a late answer still belongs to the life asked
        if sees_drift_again(monitor_state(self.crasher.service), life):
            self.lives.add(life)
            return True
        return False

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.check()

    def __enter__(self) -> DriftWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.mark.timeout(scale(300, 900))
def test_monitor_sigkill_rounds(monitor: ServiceProcess, tmp_path: Path) -> None:
    settings = monitor.settings
    budget = int(MONITOR_RATE * ROUNDS * 8)  # more than the rounds take to send; the stream stops there
    stream = payments(2000 + budget + 3 * WINDOW)
    v1 = register_version(settings.registry_uri, reference_for([p.transaction for p in stream[:2000]]), tmp_path)
    # Stable predictions, then the amounts tripled from there on: one drift episode of v1.
    logs = [(p.transaction.transaction_id.encode(),
             prediction(p.transaction, v1, 1.0 if k < MIN_SAMPLES else 3.0).to_json())
            for k, p in enumerate(stream[2000:])]
    rng = random.Random(11)
    # The monitor reads its backlog in ~0.1 s and is idle between the stream's small batches after
    # that: its consumption kills are aimed at the backlog, where a kill leaves a batch to redeliver.
    crasher = Crasher(monitor, "monitor started", rng, consuming_s=0.3)
    with DriftWatcher(crasher) as watcher:
        with EventStream(settings, Topics.PREDICTIONS, logs.__getitem__, MONITOR_RATE, limit=budget) as flow:
            for aim in kill_plan(ROUNDS, rng):
                crasher.start()
                crasher.kill(aim)
        sent = flow.sent
        progress = GroupProgress(settings, MONITOR_GROUP, Topics.PREDICTIONS)
        producer = make_producer(settings)
        try:
            # The last lives: each reads a full window of drifted predictions, so it crosses the
            # threshold again. Until one has done so with the request already in its rebuilt ledger
            # (when no earlier life got to ask, this one asks first), it is killed and another started.
            for _ in range(3):
                crasher.start()
                for key, value in logs[sent:sent + WINDOW]:
                    producer.send(Topics.PREDICTIONS, key=key, value=value)
                producer.flush(timeout=30)
                sent += WINDOW
                crasher.service.wait_ready()
                wait_until("the drift crossed again and every prediction committed",
                           lambda: progress.behind() == 0 and drift_crossed(monitor_state(monitor)))
                if watcher.check():
                    break
                monitor.kill()
                crasher.landed[CONSUMING] += 1
            ends, committed, on_topic = progress.ends(), progress.committed(), progress.records
        finally:
            producer.close()
            progress.close()
    redetected = len(watcher.lives)
    processed = batch_records(monitor.log_path, "batch handled", Topics.PREDICTIONS)
    deliveries = batch_records(monitor.log_path, BATCH_LINE, Topics.PREDICTIONS)
    requests = monitor_requests(settings)
    lost = sum(max(0, ends[tp] - committed[tp]) for tp in ends)
    publish_figures("monitor-sigkill", {
        "rounds": ROUNDS, "kills": crasher.kills, "kills_landed": dict(crasher.landed), "predictions_sent": sent,
        "processed": processed, "redelivered": deliveries - sent, "lost": lost,
        "drift_seen_again_after_restart": redetected, "retraining_requests": len(requests),
    })
    assert crasher.kills >= ROUNDS
    assert on_topic == sent, f"{on_topic} predictions on the topic, {sent} sent"
    assert lost == 0, f"committed {committed}, end {ends}"
    assert processed >= sent, f"the handler finished only {processed} of {sent} predictions"
    assert len(requests) == 1, [r.request_id for r in requests]
    assert redetected >= 1, "no restarted monitor saw the drift again: the ledger was not put to the test"
    request = requests[0]
    assert request.reason == "drift" and request.request_id == f"monitor-{v1}-1"
    assert request.evidence["model_version"] == v1 and DRIFTED in request.evidence["drift"]["crossed"]
