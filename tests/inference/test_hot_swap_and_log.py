"""Model changes under load and the prediction log, against a running service and a real broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from services.features.request import FEATURE_DEFAULTS, missing_stored
from services.registry import ModelVersion

from .conftest import (
    TOKEN,
    RunningService,
    make_transaction,
    publish_model_event,
    read_prediction_logs,
    register_broken_model,
    register_model,
    register_silent_model,
)


@dataclass
class SteadyLoad:
    """A few client threads posting /predict back to back, recording every answer."""

    url: str
    clients: int = 4
    prefix: str = field(default_factory=lambda: f"load-{uuid.uuid4().hex[:8]}")
    answers: list[tuple[int, str, str]] = field(default_factory=list)  # (status, transaction_id, version)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self, k: int) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                txn = make_transaction(i, prefix=f"{self.prefix}-{k}")
                i += 1
                try:
                    resp = client.post("/predict", json=txn)
                    status, version = resp.status_code, resp.json().get("model_version", "") if resp.status_code == 200 else ""
                except httpx.HTTPError:
                    status, version = -1, ""
                with self._lock:
                    self.answers.append((status, txn["transaction_id"], version))

    def __enter__(self) -> SteadyLoad:
        self._threads = [threading.Thread(target=self._client, args=(k,), daemon=True) for k in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def versions(self) -> list[str]:
        with self._lock:
            return [v for _, _, v in self.answers]

    def wait_for(self, predicate: object, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise AssertionError(f"condition not met within {timeout_s}s; versions seen: {Counter(self.versions())}")


def _metrics(service: RunningService) -> str:
    return httpx.get(service.url + "/metrics", timeout=10).text


def test_logged_features_are_the_ones_used(service: RunningService) -> None:
    prefix = f"log-{uuid.uuid4().hex[:8]}"
    known = make_transaction(1, prefix=prefix)
    unknown = make_transaction(2, prefix=prefix, user="u-stranger", merchant="m-stranger")
    with service.client() as client:
        answers = {t["transaction_id"]: client.post("/predict", json=t).json() for t in (known, unknown)}
    logs = {log.transaction_id: log for log in read_prediction_logs(service.settings, set(answers))}
    assert set(logs) == set(answers)
    for tid, answer in answers.items():
        log = logs[tid]
        assert log.fraud_probability == answer["fraud_probability"]
        assert log.decision == answer["decision"]
        assert log.model_version == answer["model_version"]
        assert log.features_missing == answer["features_missing"]
        assert list(log.features) == service.champion.features
        assert log.latency_ms > 0
    known_log, unknown_log = logs[known["transaction_id"]], logs[unknown["transaction_id"]]
    assert known_log.request.amount == known["amount"]
    for name, value in service.stored.items():
        if name in known_log.features:
            assert known_log.features[name] == value, name
    assert unknown_log.features_missing == missing_stored({})
    for name, default in FEATURE_DEFAULTS.items():
        assert unknown_log.features[name] == default


def test_promotion_under_load_switches_with_no_failed_request(service: RunningService) -> None:
    old = service.champion.version
    candidate = register_model(service.registry, service.workdir, seed=2)
    with SteadyLoad(service.url) as load:
        load.wait_for(lambda: len(load.versions()) >= 50)
        service.registry.promote("fraud", candidate.version)
        publish_model_event(service.settings, candidate)
        load.wait_for(lambda: load.versions()[-20:].count(candidate.version) == 20 and len(load.versions()) > 20)
    statuses = Counter(status for status, _, _ in load.answers)
    assert statuses == Counter({200: len(load.answers)}), statuses
    versions = load.versions()
    assert versions[0] == old
    assert versions[-1] == candidate.version
    # Once the new model answered, no later-started request got the old one back.
    first_new = versions.index(candidate.version)
    assert versions[first_new:].count(old) <= load.clients  # only requests already in flight at the switch
    assert f'rtml_inference_model_info{{model_version="{candidate.version}"}} 1.0' in _metrics(service)
    assert f'model_version="{old}"}} 1.0' not in _metrics(service).split("rtml_inference_model_info")[-1]

    # Every answered request of the load was logged exactly once, with the version that answered it.
    answered = {tid: version for _, tid, version in load.answers}
    logs = read_prediction_logs(service.settings, set(answered))
    counts = Counter(log.transaction_id for log in logs)
    assert set(counts) == set(answered)
    assert set(counts.values()) == {1}
    assert all(log.model_version == answered[log.transaction_id] for log in logs)
    service.champion = service.registry.get("fraud", candidate.version)


def test_rollback_event_switches_back_with_no_failed_request(service: RunningService) -> None:
    """`rtml models rollback` publishes ``rolled_back``: inference returns to the earlier champion under load."""
    previous = service.champion.version
    newer = register_model(service.registry, service.workdir, seed=3)
    with SteadyLoad(service.url, clients=2) as load:
        load.wait_for(lambda: len(load.versions()) >= 20)
        service.registry.promote("fraud", newer.version)
        publish_model_event(service.settings, newer)
        load.wait_for(lambda: load.versions()[-10:].count(newer.version) == 10)
        restored = service.registry.rollback("fraud")
        assert restored.version == previous
        publish_model_event(service.settings, restored, event="rolled_back")
        load.wait_for(lambda: load.versions()[-10:].count(previous) == 10)
    assert {status for status, _, _ in load.answers} == {200}
    versions = load.versions()
    assert versions[-1] == previous and newer.version in versions
    assert "rolled_back" in service.log_text()
    service.champion = restored


def _refused_under_load(service: RunningService, refused: ModelVersion) -> str:
    """Promote ``refused`` under load; every answer must still come from the serving model. Returns the log."""
    serving = service.champion.version
    with SteadyLoad(service.url, clients=2) as load:
        load.wait_for(lambda: len(load.versions()) >= 20)
        service.registry.promote("fraud", refused.version)
        publish_model_event(service.settings, refused)
        load.wait_for(lambda: f'rtml_inference_model_rejections_total{{model_version="{refused.version}"}}' in _metrics(service))
        seen = len(load.versions())
        load.wait_for(lambda: len(load.versions()) >= seen + 20)
    assert {status for status, _, _ in load.answers} == {200}
    assert set(load.versions()) == {serving}
    with service.client() as client:
        assert client.post("/predict", json=make_transaction(5)).json()["model_version"] == serving
    return service.log_text()


def test_broken_model_is_refused_and_the_old_keeps_answering(service: RunningService) -> None:
    log = _refused_under_load(service, register_broken_model(service.registry, service.workdir))
    assert "model refused" in log


def test_model_failing_its_warm_up_is_refused_and_the_old_keeps_answering(service: RunningService) -> None:
    """The artifact loads; its warm-up answer (NaN) is what refuses it."""
    silent = register_silent_model(service.registry, service.workdir)
    log = _refused_under_load(service, silent)
    refusals = [line for line in log.splitlines() if "model refused" in line and silent.version in line]
    assert refusals and "answered nan for 1 of 1 rows, not a probability" in refusals[-1], refusals
