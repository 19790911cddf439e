"""Rolling restart under load: two inference instances (same registry, same Feast store) behind a
round-robin balancer that, like a Kubernetes Service, sends new connections only to ready
endpoints. Each instance in turn is replaced the way a Deployment rollout does it: taken out of
the endpoints, sent SIGTERM (to its main process, as the kubelet does), left to drain its
in-flight requests, and replaced by a new instance that is put back once /readyz answers.
Meanwhile a bounded client keeps ``concurrency`` requests in flight. No request may fail."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inference.conftest import TOKEN, make_transaction

from services.common.broker import EmbeddedBroker
from services.common.settings import Settings
from tests.resilience.balancer import Backend, Balancer, LoadDriver
from tests.resilience.conftest import InferenceServer, publish_figures, scale, scoring_settings

CONCURRENCY = 6
GRACE_S = 30.0
DISCONNECTS = {"RemoteProtocolError", "ReadError"}  # the server closed the connection without answering  # terminationGracePeriodSeconds of the chart's inference Deployment (Kubernetes' default)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rolling")


@pytest.fixture(scope="module")
def settings(broker: EmbeddedBroker, workdir: Path) -> Settings:
    return scoring_settings(broker, workdir)


@pytest.fixture()
def instances(settings: Settings, workdir: Path) -> Iterator[list[InferenceServer]]:
    """Every instance started here (the replacements too); whatever still runs is stopped at the end."""
    started: list[InferenceServer] = []
    yield started
    for server in started:
        server.stop()


def terminate(server: InferenceServer) -> int:
    """SIGTERM to the main process only, wait for it to exit (SIGKILL after the grace period, as
    the kubelet does); anything left in its process group is then killed like a container's rest."""
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        return -int(signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    return code


def wait_settled(balancer: Balancer, endpoint: Backend) -> None:
    deadline = time.monotonic() + 60
    while not balancer.settled(endpoint):
        assert time.monotonic() < deadline, "a connection to a removed endpoint never completed"
        time.sleep(0.01)


def body(i: int) -> dict[str, Any]:
    return make_transaction(i, prefix="t-roll")


def wait_requests(load: LoadDriver, more: int) -> None:
    """Let the load run until ``more`` further requests were answered (progress, not a duration)."""
    target = load.sent + more
    deadline = time.monotonic() + 120
    while load.sent < target:
        assert time.monotonic() < deadline, f"load stalled: {load.keepalive} {load.per_request}"
        time.sleep(0.05)


def test_rolling_restart_under_load_fails_no_request(
    settings: Settings, workdir: Path, instances: list[InferenceServer]
) -> None:
    rounds = scale(1, 3)  # one rollout = every instance replaced once
    between = scale(100, 1000)  # requests answered between two steps of the rollout
    for i in range(2):
        instances.append(InferenceServer(settings, workdir / f"inference-{i}.log").start(wait=False))
    for server in instances:
        server.wait_ready()
    balancer = Balancer().start()
    endpoints = {server.port: balancer.add(server.port) for server in instances}
    load = LoadDriver(balancer.url, TOKEN, body, concurrency=CONCURRENCY).start()
    exits: list[int] = []
    keepalive_at_sigterm: list[int] = []  # connections still open to the instance when it got SIGTERM
    replaced = 0
    try:
        wait_requests(load, between)
        serving = list(instances)
        for _ in range(rounds):
            for slot, old in enumerate(serving):
                endpoint = endpoints.pop(old.port)
                balancer.set_ready(endpoint, False)  # endpoint removed: no new connections
                wait_settled(balancer, endpoint)
                keepalive_at_sigterm.append(endpoint.connections)
                new = InferenceServer(settings, workdir / f"inference-{len(instances)}.log").start(wait=False)
                instances.append(new)
                exits.append(terminate(old))  # drains while the replacement starts (maxSurge 1)
                balancer.remove(endpoint)
                new.wait_ready()
                endpoints[new.port] = balancer.add(new.port)
                serving[slot] = new
                replaced += 1
                wait_requests(load, between)
    finally:
        keepalive, per_request = load.stop()
        served = {port: b.served for port, b in endpoints.items()}
        balancer.close()
    publish_figures("rolling-restart", {
        "instances": 2, "replaced": replaced, "concurrency": CONCURRENCY, "exit_codes": exits,
        "balancer_refused": balancer.refused, "keepalive_connections_at_sigterm": keepalive_at_sigterm,
        "per_request_connections": {"sent": per_request.sent, "failed": per_request.failed,
                                    "outcomes": dict(per_request.outcomes)},
        "keepalive_connections": {"sent": keepalive.sent, "failed": keepalive.failed,
                                  "outcomes": dict(keepalive.outcomes)},
    })
    assert per_request.failed == 0, f"{per_request.failed} of {per_request.sent} failed: {per_request.errors}"
    # The keep-alive race (docs/reliability.md): a request written on a kept-alive connection
    # at the instant the stopping server closes it as idle gets no answer. Bound: one per
    # connection open at SIGTERM, and only ever a disconnect, never an HTTP error status.
    assert keepalive.failed <= sum(keepalive_at_sigterm), f"{keepalive.failed} failed: {keepalive.errors}"
    assert all(o == "200" or o in DISCONNECTS for o in keepalive.outcomes), keepalive.errors
    assert balancer.refused == 0
    assert all(code == 0 for code in exits), f"an instance did not stop cleanly on SIGTERM: {exits}"
    assert all(count > 0 for count in served.values()), f"a replacement never got traffic: {served}"
