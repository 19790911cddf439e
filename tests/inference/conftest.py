"""Fixtures for the inference tests: a real Feast store with online rows, a registry with a
real fitted model promoted to champion, and the service running as a subprocess over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from feast.data_source import PushMode
from kafka import KafkaConsumer, TopicPartition

from services.common.broker import EmbeddedBroker, free_port
from services.common.events import ModelEvent, PredictionLog, Topics, decode
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import REPO_ROOT, Settings, child_env, load_settings
from services.feature.store import apply_repo, open_store
from services.features import names as n
from services.models.artifacts import save_scorer
from services.registry import ModelRegistry, ModelVersion
from tests.model_fixtures import fit_model, model_record, register_model

__all__ = ["fit_model", "model_record", "register_model"]  # re-exported: tests import them from here

TOKEN = "test-token-not-a-secret"
KNOWN_USER = "u-known"
KNOWN_MERCHANT = "m-known"


def make_transaction(
    i: int = 0, *, user: str = KNOWN_USER, merchant: str = KNOWN_MERCHANT, amount: float = 25.0, prefix: str = "t"
) -> dict:
    return {
        "schema_version": 1,
        "transaction_id": f"{prefix}-{i}",
        "user_id": user,
        "merchant_id": merchant,
        "amount": amount,
        "currency": "EUR",
        "country": "DE",
        "channel": "web",
        "device_id": "d-1",
        "timestamp": "2026-11-22T03:00:00Z",
    }


def register_broken_model(registry: ModelRegistry, workdir: Path) -> ModelVersion:
    """An artifact whose manifest is fine but whose model file is garbage."""
    artifact = workdir / "artifact-broken"
    save_scorer(fit_model(99), artifact)
    (artifact / "model.skops").write_bytes(b"this is not a model")
    return registry.register(model_record(), artifact)


def register_silent_model(registry: ModelRegistry, workdir: Path) -> ModelVersion:
    """An artifact that loads fine but whose model answers NaN: only the warm-up request can tell."""
    scorer = fit_model(97)
    scorer.estimator[-1].coef_[:] = np.nan
    artifact = workdir / "artifact-silent"
    save_scorer(scorer, artifact)
    return registry.register(model_record(), artifact)


def publish_model_event(settings: Settings, record: ModelVersion, event: str = "promoted") -> None:
    producer = make_producer(settings)
    try:
        message = ModelEvent(
            event=event,  # type: ignore[arg-type]
            model_name=record.name,
            version=record.version,
            artifact_uri=record.artifact_uri,
            timestamp=datetime.now(UTC),
        )
        producer.send(Topics.MODEL_EVENTS, key=record.name.encode(), value=message.to_json()).get(timeout=15)
    finally:
        producer.close()


def write_online_rows(settings: Settings) -> dict[str, float]:
    """Online state for KNOWN_USER and KNOWN_MERCHANT; returns the stored numbers written."""
    store = open_store(settings)
    now = pd.Timestamp.now(tz="UTC")
    user_values = {
        n.USER_TXN_COUNT_10M: 1, n.USER_TXN_COUNT_1H: 2, n.USER_TXN_COUNT_24H: 5,
        n.USER_AMOUNT_SUM_24H: 150.0, n.USER_AMOUNT_MEAN_24H: 30.0, n.USER_AMOUNT_STD_24H: 4.5,
        n.USER_AMOUNT_MAX_24H: 40.0, n.USER_DISTINCT_MERCHANTS_24H: 3, n.USER_DISTINCT_COUNTRIES_24H: 1,
        n.USER_AMOUNT_MEAN_30D: 28.0, n.USER_LAST_TXN_EPOCH_S: 1_795_000_000.0,
    }
    user = pd.DataFrame([{
        n.USER_JOIN_KEY: KNOWN_USER, **user_values,
        n.USER_COUNTRIES_30D: ["DE"], n.USER_DEVICES_30D: ["d-1"],
        n.EVENT_TIMESTAMP: now, n.CREATED_TIMESTAMP: now,
    }])
    merchant_values = {n.MERCHANT_TXN_COUNT_24H: 42, n.MERCHANT_AMOUNT_MEAN_24H: 33.0}
    risk_values = {n.MERCHANT_FRAUD_RATE_30D: 0.02, n.MERCHANT_LABELLED_COUNT_30D: 50}
    merchant = pd.DataFrame([{n.MERCHANT_JOIN_KEY: KNOWN_MERCHANT, **merchant_values, n.EVENT_TIMESTAMP: now, n.CREATED_TIMESTAMP: now}])
    risk = pd.DataFrame([{n.MERCHANT_JOIN_KEY: KNOWN_MERCHANT, **risk_values, n.EVENT_TIMESTAMP: now, n.CREATED_TIMESTAMP: now}])
    store.push(n.USER_PUSH_SOURCE, user, to=PushMode.ONLINE)
    store.push(n.MERCHANT_PUSH_SOURCE, merchant, to=PushMode.ONLINE)
    store.push(n.MERCHANT_RISK_PUSH_SOURCE, risk, to=PushMode.ONLINE)
    return {k: float(v) for k, v in {**user_values, **merchant_values, **risk_values}.items()}


def read_topic(settings: Settings, topic: str, wanted: set[str], id_of: Callable[[bytes], str],
               timeout_s: float = 60.0) -> list[bytes]:
    """Every record value on ``topic`` whose id (``id_of(value)``) is in ``wanted``, reading from the
    start until all are seen (then one more idle poll, so duplicates would show) or the timeout passes."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[bytes] = []
        seen: set[str] = set()
        deadline = time.monotonic() + timeout_s
        idle_after_complete = 0
        while time.monotonic() < deadline and idle_after_complete < 2:
            polled = consumer.poll(timeout_ms=500)
            records = [r for recs in polled.values() for r in recs]
            for record in records:
                if (found_id := id_of(record.value)) in wanted:
                    found.append(record.value)
                    seen.add(found_id)
            if seen >= wanted and not records:
                idle_after_complete += 1
        return found
    finally:
        consumer.close()


def read_prediction_logs(settings: Settings, wanted: set[str], timeout_s: float = 60.0) -> list[PredictionLog]:
    """Every log on rtml.predictions whose transaction_id is in ``wanted`` (see ``read_topic``)."""
    values = read_topic(settings, Topics.PREDICTIONS, wanted, lambda v: decode(PredictionLog, v).transaction_id, timeout_s)
    return [decode(PredictionLog, v) for v in values]


@dataclass
class RunningService:
    url: str
    settings: Settings
    registry: ModelRegistry
    workdir: Path
    champion: ModelVersion
    stored: dict[str, float]
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _env(settings: Settings, port: int) -> dict[str, str]:
    env = child_env()
    env.update({
        "RTML_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "RTML_DATA_DIR": str(settings.data_dir),
        "RTML_MODEL_REGISTRY_URI": settings.registry_uri,
        "RTML_API_TOKEN": TOKEN,
        "RTML_INFERENCE_PORT": str(port),
        "RTML_INFERENCE_REGISTRY_POLL_S": "2",
        "RTML_KAFKA_MAX_POLL_INTERVAL_MS": "3000",
        "RTML_LOG_FORMAT": "json",
        "BENTOML_HOME": str(settings.data_dir / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
    })
    return env


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"inference service exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"inference service not ready within {timeout_s:.0f}s:\n{log_path.read_text()[-4000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def service(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One running inference service per test module, with its own data dir and registry."""
    workdir = tmp_path_factory.mktemp("inference")
    settings = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=workdir / "data", kafka_max_poll_interval_ms=3000)
    ensure_topics(settings, [Topics.PREDICTIONS, Topics.MODEL_EVENTS])
    apply_repo(settings)
    stored = write_online_rows(settings)
    registry = ModelRegistry(settings.registry_uri)
    champion = registry.promote("fraud", register_model(registry, workdir, seed=1).version)
    port = free_port()
    log_path = workdir / "inference.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.inference"],
            cwd=REPO_ROOT, env=_env(settings, port), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log_path)
        yield RunningService(url, settings, registry, workdir, champion, stored, process, log_path)
    finally:
        stop_process(process)
