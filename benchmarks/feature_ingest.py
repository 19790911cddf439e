"""Feature ingestion throughput and freshness (``python -m benchmarks.feature_ingest``).

One run, one Tansu broker, the real feature service as subprocesses (local Feast store): one
process running every stage, or with ``--split-stages`` one per stage (RTML_FEATURE_STAGES), times
``--instances``. They start on empty topics, become ready and are then stopped (SIGSTOP) while the
backlog is published, so none drains part of it before the others run.

1. ceiling (measured once the service has drained): a bare kafka-python consumer reading the
   whole backlog (no decoding), and beside it the validation floor: the same consumer validating
   every event against the contract (what any conforming service must do at least, before state,
   writes or commits);
2. sustained ingestion: the resumed service draining the same backlog, rate taken between 10 % and
   90 % of the contract topics' committed offsets (the tail excluded), with the CPU time of every
   service process per event over the same stretch, and when the merchant stage, which works
   behind the other two, has caught up;
3. freshness at a paced rate: live transactions at ``--rate`` events/s while a probe publishes a
   transaction for a fresh user every 100 ms and polls the online store until it is readable;
   freshness = read time - event time (the probe stamps the event just before sending).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from services.common.broker import EmbeddedBroker, free_port
from services.common.events import InternalTopics, Label, Topics, Transaction, decode, encode
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import FEATURE_STAGES, REPO_ROOT, Settings, load_settings
from services.common.topology import feature_layout
from services.demo.probes import is_live, is_ready
from services.feature.store import apply_repo, open_store
from services.features import names as n
from services.simulator import SimulatorConfig, generate, publish
from tests.feature.conftest import committed, committed_and_end, topic_end


def _validate(records: list[ConsumerRecord]) -> None:
    for record in records:
        decode(Transaction if record.topic == Topics.TRANSACTIONS else Label, record.value)


def raw_consume_rate(settings: Settings, total: int, validate: bool = False) -> tuple[float, float]:
    """The backlog's consume rate with a bare consumer (``validate`` decodes each event too),
    and its CPU time per event (this process, all threads: nothing else runs in it meanwhile)."""
    reader = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                           max_poll_records=5000)
    tps = [TopicPartition(t, p) for t in (Topics.TRANSACTIONS, Topics.LABELS)
           for p in reader.partitions_for_topic(t) or ()]
    reader.assign(tps)
    reader.seek_to_beginning(*tps)
    started = time.perf_counter()
    cpu_started = time.process_time()
    seen = 0
    while seen < total:
        for records in reader.poll(timeout_ms=500).values():
            seen += len(records)
            if validate:
                _validate(records)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    reader.close()
    return total / elapsed, cpu / total * 1e6


# The processes are stopped (SIGSTOP) while the backlog is published (a few seconds), so their
# heartbeats pause: a session and poll interval longer than that keep them in their groups (no
# rebalance, no replay when they resume). Also the rebalance timeout every group join waits for on
# Tansu, once, at start.
PAUSE_PROOF_MS = "20000"


def start_service(settings: Settings, log: Path, port: int, stages: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RTML_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "RTML_DATA_DIR": str(settings.data_dir),
           "RTML_FEATURE_PORT": str(port), "RTML_FEATURE_STAGES": stages, "RTML_LOG_FORMAT": "console",
           "RTML_LOG_LEVEL": "WARNING", "RTML_KAFKA_SESSION_TIMEOUT_MS": PAUSE_PROOF_MS,
           "RTML_KAFKA_MAX_POLL_INTERVAL_MS": PAUSE_PROOF_MS, "RTML_TOPIC_PARTITIONS": str(settings.topic_partitions)}
    return subprocess.Popen([sys.executable, "-m", "services.feature"], cwd=REPO_ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


@dataclass
class Drain:
    """How the service drained the backlog."""

    rate: float  # contract events/s committed (user and label stages) between 10 % and 90 %
    drained_s: float  # resume to every contract event committed
    all_stages_s: float  # resume to the merchant stage's group caught up too
    cpu_us_per_event: list[float]  # CPU per contract event of each service process, between the marks
    broker_cpu_us_per_event: float  # the broker's, over the same stretch


def cpu_seconds(procs: list[psutil.Process]) -> list[float]:
    return [t.user + t.system for t in (p.cpu_times() for p in procs)]


def wait_live(port: int, service: subprocess.Popen[bytes]) -> None:
    while not is_live(f"http://127.0.0.1:{port}"):
        if service.poll() is not None:
            raise RuntimeError(f"feature service on port {port} exited with {service.returncode}")
        time.sleep(0.1)


def wait_ready(ports: list[int], services: list[subprocess.Popen[bytes]]) -> None:
    """Until every process answers /readyz (a newcomer rebalances the groups it shares)."""
    while not all(is_ready(f"http://127.0.0.1:{port}") for port in ports):
        for port, service in zip(ports, services, strict=True):
            if service.poll() is not None:
                raise RuntimeError(f"feature service on port {port} exited with {service.returncode}")
        time.sleep(0.1)


def drain(settings: Settings, total: int, services: list[subprocess.Popen[bytes]], broker_pid: int) -> Drain:
    """Poll the groups' committed offsets while the service drains the backlog."""
    procs = [psutil.Process(s.pid) for s in services] + [psutil.Process(broker_pid)]
    started = time.perf_counter()
    marks: dict[str, tuple[float, int, list[float]]] = {}
    while True:
        done, _ = committed_and_end(settings)
        now = time.perf_counter()
        if done >= total * 0.1 and "lo" not in marks:
            marks["lo"] = (now, done, cpu_seconds(procs))
        if done >= total * 0.9 and "hi" not in marks:
            marks["hi"] = (now, done, cpu_seconds(procs))
        if done >= total:
            break
        time.sleep(0.25)
    drained_s = time.perf_counter() - started
    # The merchant stage works behind the other two: ingestion is over when it has caught up. Its
    # topic's end is final by now (the stages upstream forward before they commit), so it is read
    # once, as wait_caught_up in the feature tests does; each read polls the log's tail for ~0.6 s.
    tps, end = topic_end(settings, InternalTopics.MERCHANT_EVENTS)
    while committed(settings, "merchant", tps) < end:
        time.sleep(0.25)
    (t_lo, d_lo, c_lo), (t_hi, d_hi, c_hi) = marks["lo"], marks["hi"]
    cpu = [(hi - lo) / (d_hi - d_lo) * 1e6 for lo, hi in zip(c_lo, c_hi, strict=True)]
    return Drain(rate=(d_hi - d_lo) / max(t_hi - t_lo, 1e-9), drained_s=drained_s,
                 all_stages_s=time.perf_counter() - started, cpu_us_per_event=cpu[:-1], broker_cpu_us_per_event=cpu[-1])


def live_traffic(producer: KafkaProducer, rate: float, seconds: float, stop: threading.Event) -> int:
    """Simulated transactions re-stamped 'now' under fresh user ids, paced to ``rate``."""
    source = (s.event for s in generate(SimulatorConfig(events=int(rate * seconds) + 100, seed=99))
              if isinstance(s.event, Transaction))
    started = time.monotonic()
    sent = 0
    while not stop.is_set() and time.monotonic() - started < seconds:
        ahead = started + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        txn = next(source)
        live = txn.model_copy(update={"user_id": f"live-{txn.user_id}", "transaction_id": f"live-{txn.transaction_id}",
                                      "timestamp": datetime.now(UTC)})
        producer.send(Topics.TRANSACTIONS, key=live.user_id.encode(), value=encode(live))
        sent += 1
    producer.flush()
    return sent


def probe_freshness(settings: Settings, seconds: float) -> list[float]:
    store = open_store(settings)
    producer = make_producer(settings, linger_ms=0)
    ref = f"{n.USER_VIEW}:{n.USER_LAST_TXN_EPOCH_S}"
    samples: list[float] = []
    started = time.monotonic()
    k = 0
    while time.monotonic() - started < seconds:
        k += 1
        user = f"probe-{k}"
        stamp = datetime.now(UTC)
        txn = Transaction(transaction_id=f"probe-t-{k}", user_id=user, merchant_id="m-probe", amount=9.5,
                          currency="EUR", country="DE", channel="web", timestamp=stamp)
        producer.send(Topics.TRANSACTIONS, key=user.encode(), value=encode(txn))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = store.get_online_features([ref], [{n.USER_JOIN_KEY: user}]).to_dict()[n.USER_LAST_TXN_EPOCH_S][0]
            if got is not None:
                samples.append(time.time() - stamp.timestamp())
                break
            time.sleep(0.005)
        time.sleep(max(0.0, 0.1 - (time.monotonic() - started) % 0.1))
    producer.close()
    return samples


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=12_000, help="simulated transactions in the backlog")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced events/s for the freshness phase")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the freshness phase")
    parser.add_argument("--instances", type=int, default=1, help="feature service instances sharing the partitions")
    parser.add_argument("--split-stages", action="store_true",
                        help="run each instance as one process per stage (RTML_FEATURE_STAGES) instead of one for all")
    parser.add_argument("--layout", default="",
                        help="processes separated by '/', each a comma-separated RTML_FEATURE_STAGES value (e.g. "
                             "'user/user/label,merchant'); replaces --split-stages and --instances")
    parser.add_argument("--partitions", type=int, default=None,
                        help="partitions per topic (RTML_TOPIC_PARTITIONS, default 3): a stage's processes beyond "
                             "its partitions idle, so two user-stage processes want 4")
    args = parser.parse_args()
    if args.partitions is not None and args.partitions < 1:
        parser.error(f"--partitions must be at least 1, got {args.partitions}")
    if args.instances < 1:
        parser.error(f"--instances must be at least 1, got {args.instances}")
    layout_processes: list[str] = []
    if args.layout:
        try:
            partitions = args.partitions or load_settings().topic_partitions
            layout_processes = [",".join(stages) for stages in feature_layout(args.layout, partitions)]
        except ValueError as exc:
            parser.error(f"--layout: {exc}")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        overrides = {} if args.partitions is None else {"topic_partitions": args.partitions}
        settings = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=Path(tmp) / "data",
                                 feature_port=free_port(), **overrides)
        ensure_topics(settings)
        apply_repo(settings)
        layout = list(FEATURE_STAGES) if args.split_stages else [",".join(FEATURE_STAGES)]
        processes = layout_processes or [stages for _ in range(args.instances) for stages in layout]
        ports = [settings.feature_port, *(free_port() for _ in range(len(processes) - 1))]
        services: list[subprocess.Popen[bytes]] = []
        for i, (port, stages) in enumerate(zip(ports, processes, strict=True)):
            services.append(start_service(settings, Path(tmp) / f"feature-{i}.log", port, stages))
            # The next starts once this one answers (it has applied the Feast repo by then): the
            # local file registry is rewritten in place, so concurrent applies could tear it.
            wait_live(port, services[-1])
        # Group joins overlap: on Tansu each one waits for the rebalance timeout.
        wait_ready(ports, services)
        backlog = list(generate(SimulatorConfig(events=args.transactions, seed=7)))
        producer = make_producer(settings)
        # Every process is ready and idle; stopped, none takes a head start on the backlog while it
        # is published.
        for service in services:
            service.send_signal(signal.SIGSTOP)
        total = publish(backlog, producer)
        for service in services:
            service.send_signal(signal.SIGCONT)
        try:
            assert broker.process is not None
            drained = drain(settings, total, services, broker.process.pid)
            for port in ports:
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            # The same backlog from the beginning, while the drained service idles.
            ceiling, raw_cpu = max(raw_consume_rate(settings, total) for _ in range(2))
            floor, _ = max(raw_consume_rate(settings, total, validate=True) for _ in range(2))
            stop = threading.Event()
            sent: list[int] = []
            pacer = threading.Thread(target=lambda: sent.append(live_traffic(producer, args.rate, args.seconds, stop)))
            pacer.start()
            fresh = probe_freshness(settings, args.seconds - 1)
            stop.set()
            pacer.join()
        finally:
            for service in services:
                service.terminate()
            for service in services:
                try:
                    service.wait(30)
                except subprocess.TimeoutExpired:
                    service.kill()
                    service.wait()
            producer.close()
    load = os.getloadavg()[0]
    print(f"backlog: {total} events ({args.transactions} transactions + labels), {settings.topic_partitions} "
          f"partitions per topic; load average {load:.1f}")
    print(f"raw kafka-python consume (ceiling): {ceiling:,.0f} events/s, {raw_cpu:.0f} µs CPU per event")
    print(f"validation floor (same consumer, every event decoded and validated): {floor:,.0f} events/s "
          f"({floor / ceiling:.0%} of raw)")
    shape = f"layout {args.layout}" if layout_processes else f"{args.instances} instance(s), {len(processes)} process(es)"
    print(f"feature service ({shape}) sustained ingestion: {drained.rate:,.0f} events/s "
          f"({drained.rate / ceiling:.0%} of raw); contract events committed {drained.drained_s:.1f} s after the "
          f"idle, ready processes resumed, merchant stage caught up at {drained.all_stages_s:.1f} s; service CPU "
          f"{sum(drained.cpu_us_per_event):.0f} µs per event, broker CPU {drained.broker_cpu_us_per_event:.0f} µs per event")
    if len(processes) > 1:
        print("  CPU per event by process: " + ", ".join(
            f"{stages} {cpu:.0f} µs" for stages, cpu in zip(processes, drained.cpu_us_per_event, strict=True)))
    print(f"freshness at {sent[0] / args.seconds:,.0f} events/s paced ({len(fresh)} probes): "
          f"p50 {pct(fresh, 50) * 1000:.0f} ms, p99 {pct(fresh, 99) * 1000:.0f} ms, max {max(fresh) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
