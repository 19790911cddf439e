"""Online store outage: the inference service on the cluster store (Redis), Redis killed under
traffic and brought back. The documented degraded path is 503 + Retry-After naming the
feature store (never a score on silently defaulted features), /readyz turns 503 while the
store is away, and the same process recovers by itself once Redis is back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from inference.conftest import TOKEN, make_transaction

from services.common.broker import EmbeddedBroker
from tests.resilience.conftest import InferenceServer, RedisServer, publish_figures, scale, scoring_settings


@dataclass
class Answer:
    phase: str
    status: int  # 0 = no HTTP answer at all
    body: dict[str, object]
    retry_after: str | None


@dataclass
class Traffic:
    """Sequential /predict calls from a few threads, each answer tagged with the phase it was sent in."""

    url: str
    phase: str = "healthy"
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                phase = self.phase
                try:
                    response = client.post("/predict", json=make_transaction(i, prefix=f"out{worker}"))
                    body = response.json()
                    answer = Answer(phase, response.status_code, body, response.headers.get("retry-after"))
                except httpx.HTTPError as exc:
                    answer = Answer(phase, 0, {"error": repr(exc)}, None)
                if self.phase != phase:  # the phase changed while this request was in flight
                    answer.phase = f"{phase}->{self.phase}"
                self.answers.append(answer)
                i += 1
                time.sleep(0.02)


def readyz(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def wait_for_readyz(url: str, status: int, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while readyz(url) != status:
        assert time.monotonic() < deadline, f"/readyz never answered {status}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def redis_scoring(broker: EmbeddedBroker, redis_server: RedisServer,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceServer]:
    workdir = tmp_path_factory.mktemp("redis-scoring")
    overrides = {"feast_store_yaml": "feature_store.cluster.yaml", "redis_url": redis_server.url,
                 "feast_data_uri": str(workdir / "feast")}
    settings = scoring_settings(broker, workdir, **overrides)
    env = {"RTML_FEAST_STORE_YAML": "feature_store.cluster.yaml", "RTML_REDIS_URL": redis_server.url,
           "RTML_FEAST_DATA_URI": str(workdir / "feast")}
    server = InferenceServer(settings, workdir / "inference.log", env)
    try:
        yield server.start()
    finally:
        server.stop()


def test_redis_outage_degrades_to_503_and_recovers(redis_scoring: InferenceServer, redis_server: RedisServer) -> None:
    server = redis_scoring
    assert server.process is not None
    pid = server.process.pid
    traffic = Traffic(server.url)
    workers = [threading.Thread(target=traffic.run, args=(w,), daemon=True) for w in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        traffic.phase = "stopping"
        redis_server.stop()
        wait_for_readyz(server.url, 503)
        traffic.phase = "down"
        time.sleep(scale(3, 30))
        traffic.phase = "restarting"
        redis_server.start()
        wait_for_readyz(server.url, 200)
        traffic.phase = "recovered"
        time.sleep(2.0)
    finally:
        traffic.stop.set()
        for worker in workers:
            worker.join(timeout=35)

    by_phase: dict[str, dict[int, int]] = {}
    for a in traffic.answers:
        by_phase.setdefault(a.phase, {}).setdefault(a.status, 0)
        by_phase[a.phase][a.status] += 1
    publish_figures("online-store-outage", {
        "requests": len(traffic.answers),
        "by_phase": {p: {str(k): v for k, v in sorted(c.items())} for p, c in by_phase.items()},
        "unexpected": sum(1 for a in traffic.answers if a.status not in (200, 503)),
    })
    assert server.process.poll() is None and server.process.pid == pid, "recovery must not need a restart"
    assert all(a.status in (200, 503) for a in traffic.answers), [a for a in traffic.answers if a.status not in (200, 503)][:3]
    for a in traffic.answers:
        if a.status == 200:
            # A score is only ever given on the features actually stored, never on silent defaults.
            assert a.body["features_missing"] == [], a
        else:
            assert a.retry_after, a
            assert "feature" in str(a.body["error"]), a
    healthy = [a for a in traffic.answers if a.phase == "healthy"]
    down = [a for a in traffic.answers if a.phase == "down"]
    recovered = [a for a in traffic.answers if a.phase == "recovered"]
    assert healthy and all(a.status == 200 for a in healthy)
    assert down and all(a.status == 503 for a in down)
    assert recovered and all(a.status == 200 for a in recovered)
