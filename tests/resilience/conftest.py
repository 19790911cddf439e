"""Fixtures of the resilience suite: a broker per module (scenarios stop and restart it), real
inference servers over a real Feast store and registry, throwaway Redis servers, and a place
to publish the counts each scenario observed (RTML_RESILIENCE_LONG=1 runs bigger numbers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from inference.conftest import TOKEN, _env, register_model, stop_process, wait_ready, write_online_rows

from services.common.broker import EmbeddedBroker, free_port, wait_for_port
from services.common.events import Topics
from services.common.kafka import ensure_topics
from services.common.settings import REPO_ROOT, Settings, child_env, load_settings
from services.feature.store import apply_repo
from services.registry import ModelRegistry

LONG = os.environ.get("RTML_RESILIENCE_LONG", "") == "1"
FIGURES_FILE = os.environ.get("RTML_RESILIENCE_FIGURES", "")


def scale(default: int, long: int) -> int:
    """A count for the default (short) mode or the long mode."""
    return long if LONG else default


def publish_figures(scenario: str, figures: dict[str, object]) -> None:
    """Print what a scenario observed (and append it to $RTML_RESILIENCE_FIGURES if set)."""
    line = json.dumps({"scenario": scenario, "long": LONG, **figures}, sort_keys=True)
    print(f"\nRESILIENCE {line}")
    if FIGURES_FILE:
        with open(FIGURES_FILE, "a") as out:
            out.write(line + "\n")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A Tansu broker of this module's own: scenarios stop it, and topics are read from the start."""
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log") as running:
        yield running


@dataclass
class RedisServer:
    """A throwaway redis-server without persistence, stoppable and restartable on its port."""

    workdir: Path
    persist: bool = False  # append-only file fsynced per write, so data survives a SIGKILL
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always", "--dir", str(self.workdir)],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=True).start()
    yield server
    server.stop()


def scoring_settings(broker: EmbeddedBroker, workdir: Path, **overrides: object) -> Settings:
    """Settings of a scoring stack: Feast applied with online rows, a fitted model promoted."""
    settings = load_settings(
        kafka_bootstrap=broker.bootstrap, data_dir=workdir / "data", kafka_max_poll_interval_ms=3000, **overrides
    )
    ensure_topics(settings, [Topics.PREDICTIONS, Topics.MODEL_EVENTS])
    apply_repo(settings)
    write_online_rows(settings)
    registry = ModelRegistry(settings.registry_uri)
    registry.promote("fraud", register_model(registry, workdir, seed=1).version)
    return settings


@dataclass
class InferenceServer:
    """``python -m services.inference`` as its container runs it, with its output captured."""

    settings: Settings
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = _env(self.settings, self.port)
        env.update(self.extra_env)
        return env

    def start(self, wait: bool = True) -> InferenceServer:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.inference"], cwd=REPO_ROOT, env=self.env(),
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        assert self.process is not None
        wait_ready(self.url, self.process, self.log_path, timeout_s)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def scoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceServer]:
    """One inference server (on its own broker, the local SQLite store, auth on) shared by the
    fuzzing and auth scenarios, which never disturb it."""
    workdir = tmp_path_factory.mktemp("scoring")
    with EmbeddedBroker(log_path=workdir / "tansu.log") as own_broker:
        server = InferenceServer(scoring_settings(own_broker, workdir), workdir / "inference.log")
        try:
            yield server.start()
        finally:
            server.stop()


@dataclass
class ServiceProcess:
    """``python -m services.<name>`` (feature, monitor) as its container runs it, output captured."""

    module: str
    settings: Settings
    port_env: str
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout_s: float = 120.0) -> ServiceProcess:
        env = child_env()
        env.update({
            "RTML_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "RTML_DATA_DIR": str(self.settings.data_dir),
            "RTML_MODEL_REGISTRY_URI": self.settings.registry_uri,
            "RTML_KAFKA_MAX_POLL_INTERVAL_MS": str(self.settings.kafka_max_poll_interval_ms),
            "RTML_KAFKA_SESSION_TIMEOUT_MS": str(self.settings.kafka_session_timeout_ms),
            self.port_env: str(self.port),
            **self.extra_env,
        })
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen([sys.executable, "-m", self.module], cwd=REPO_ROOT, env=env,
                                            stdout=log_file, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready(timeout_s)
        return self

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            assert self.alive(), f"{self.module} exited with {self.exit_code()}:\n{self.log_text()[-3000:]}"
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.module} not ready within {timeout_s:.0f}s:\n{self.log_text()[-3000:]}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, grace_s: float = 30.0) -> int | None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.exit_code()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
