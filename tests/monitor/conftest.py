"""Monitor fixtures: a broker of its own per test (the contract's topic names are shared by every
test in the session, and the monitor reads its topics from the beginning), and a running monitor."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from services.common.broker import EmbeddedBroker, free_port
from services.common.events import Event, Topics, TrainingRequest, decode
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings, load_settings
from services.monitor import MonitorService
from services.monitor.control import ControlReader


@pytest.fixture()
def monitor_settings(tmp_path: Path) -> Iterator[Settings]:
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        settings = load_settings(
            kafka_bootstrap=broker.bootstrap,
            data_dir=tmp_path / "data",
            kafka_max_poll_interval_ms=3000,
            kafka_session_timeout_ms=6000,
            monitor_port=free_port(),
            monitor_window=1000,
            monitor_min_samples=500,
        )
        ensure_topics(settings)
        yield settings


def http_get(settings: Settings, path: str, method: str = "GET") -> tuple[int, bytes]:
    url = f"http://{settings.bind_host}:{settings.monitor_port}{path}"
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def api_state(settings: Settings) -> dict[str, Any]:
    status, body = http_get(settings, "/api/state")
    assert status == 200, body
    return dict(json.loads(body))


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(0.25)


def wait_ready(settings: Settings, timeout_s: float = 60.0) -> None:
    wait_for("monitor /readyz", lambda: http_get(settings, "/readyz")[0] == 200, timeout_s)


@contextmanager
def running_monitor(settings: Settings) -> Iterator[MonitorService]:
    """The monitor in a thread of this process (real broker, real HTTP server)."""
    service = MonitorService(settings)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_ready(settings)
        yield service
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "monitor did not stop"


def publish(settings: Settings, items: list[tuple[str, str, Event | bytes]]) -> None:
    """(topic, key, event or raw bytes) in order."""
    producer = make_producer(settings)
    try:
        for topic, key, value in items:
            raw = value if isinstance(value, bytes) else value.to_json()
            producer.send(topic, key=key.encode(), value=raw)
        producer.flush()
    finally:
        producer.close()


def training_requests(settings: Settings) -> list[TrainingRequest]:
    reader = ControlReader(settings, [Topics.TRAINING_REQUESTS])
    try:
        return [decode(TrainingRequest, r.value) for r in reader.read_to_end()]
    finally:
        reader.close()
