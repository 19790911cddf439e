"""Rolling restart under Locust load: two inference instances (same registry, same Feast store)
behind a round-robin balancer that, like a Kubernetes Service, sends new connections only to
ready endpoints. Each instance in turn is replaced the way a Deployment rollout with maxSurge 1
and maxUnavailable 0 does it: a replacement is started and put into the endpoints once /readyz
answers; then the old one is taken out of the endpoints while its preStop hook runs (the chart's
``python -m services.inference.drain``: answer with ``Connection: close``, then wait), gets
SIGTERM on its main process, as the kubelet sends it, and drains its in-flight requests.

`rtml loadtest` (Locust, ``FastHttpUser``, kept-alive connections) drives the load the whole time
and is stopped once the rollout is done; its verdict and CSV must show no failed request."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inference.conftest import TOKEN, make_transaction

from services.common.broker import EmbeddedBroker
from services.common.settings import REPO_ROOT, Settings, child_env
from services.loadtest.report import ReportFiles
from tests.k8s.k8s_chart import containers, find, rendered_objects
from tests.resilience.balancer import Backend, Balancer
from tests.resilience.conftest import InferenceServer, publish_figures, scale, scoring_settings

USERS = 6
GRACE_S = 30.0  # terminationGracePeriodSeconds of the chart's inference Deployment (Kubernetes' default)
PRESTOP_S = 3  # the chart waits preStopSleepSeconds (5); the local balancer's endpoint removal is instant


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


class LoadTest:
    """`rtml loadtest` running in the background until told to stop."""

    def __init__(self, url: str, report: Path) -> None:
        self.report = ReportFiles(report)
        env = child_env()
        env["RTML_API_TOKEN"] = TOKEN
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.loadtest", "--host", url, "--users", str(USERS),
             "--spawn-rate", str(USERS), "--run-time", "30m", "--scenario", "steady",
             "--slo-error-rate", "0", "--slo-p99-ms", "60000", "--report", str(report)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def answered(self) -> int:
        """Requests Locust has counted so far (its stats CSV, rewritten every second)."""
        with contextlib.suppress(OSError, ValueError, KeyError, csv.Error):
            with self.report.stats_csv.open(newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated"]
            if rows:
                return int(rows[0]["Request Count"])
        return 0

    def wait_answered(self, more: int) -> None:
        """Let the load run until ``more`` further requests were counted (progress, not a duration)."""
        target = self.answered() + more
        deadline = time.monotonic() + 180
        while self.answered() < target:
            assert self.process.poll() is None, f"rtml loadtest ended early: {self.process.communicate()[0][-3000:]}"
            assert time.monotonic() < deadline, f"load stalled at {self.answered()} requests"
            time.sleep(0.2)

    def stop(self) -> tuple[int, str]:
        """SIGTERM: Locust stops, writes its report, and the run is judged on what ran."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return self.process.returncode, output

    def verdict(self) -> dict[str, Any]:
        return dict(json.loads((self.report.directory / "verdict.json").read_text()))

    def failures(self) -> list[dict[str, str]]:
        with (self.report.directory / "locust_failures.csv").open(newline="") as fh:
            return list(csv.DictReader(fh))


def chart_pre_stop() -> list[str]:
    """The preStop command of the chart's inference container, as Helm renders it (with this
    test's shorter wait: the local balancer's endpoint removal is instant)."""
    deployment = find(rendered_objects("default"), "Deployment", "rtml-inference")
    (container,) = containers(deployment, with_init=False)
    command = [sys.executable if part == "python" else part for part in container["lifecycle"]["preStop"]["exec"]["command"]]
    assert command[1:4] == ["-m", "services.inference.drain", "--seconds"], command
    return [*command[:4], str(PRESTOP_S)]


def pre_stop(server: InferenceServer) -> subprocess.Popen[bytes]:
    """The chart's preStop hook, run with the container's environment."""
    return subprocess.Popen(chart_pre_stop(), cwd=REPO_ROOT, env=server.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def answers_with_close(server: InferenceServer) -> bool:
    with server.client() as client:
        answer = client.post("/predict", json=make_transaction(0, prefix="t-drained"))
        ready = client.get("/readyz").status_code
    return answer.status_code == 200 and answer.headers.get("connection") == "close" and ready == 503


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


def test_rolling_restart_under_locust_load_fails_no_request(
    settings: Settings, workdir: Path, instances: list[InferenceServer]
) -> None:
    rounds = scale(1, 3)  # one rollout = every instance replaced once
    between = scale(300, 3000)  # requests answered between two steps of the rollout
    for i in range(2):
        instances.append(InferenceServer(settings, workdir / f"inference-{i}.log").start(wait=False))
    for server in instances:
        server.wait_ready()
    balancer = Balancer().start()
    endpoints = {server.port: balancer.add(server.port) for server in instances}
    load = LoadTest(balancer.url, workdir / "loadtest")
    exits: list[int] = []
    drained: list[int] = []  # preStop hook exit codes: 0 = the service confirmed it drains
    closing: list[bool] = []  # a drained instance answers with Connection: close and is not ready
    open_at_sigterm: list[int] = []  # client connections still open to the instance when it got SIGTERM
    replaced = 0
    try:
        load.wait_answered(between)
        serving = list(instances)
        for _ in range(rounds):
            for slot, old in enumerate(serving):
                new = InferenceServer(settings, workdir / f"inference-{len(instances)}.log").start()  # maxSurge 1
                instances.append(new)
                endpoints[new.port] = balancer.add(new.port)
                endpoint = endpoints.pop(old.port)
                balancer.set_ready(endpoint, False)  # terminating: out of the endpoints, and preStop runs
                hook = pre_stop(old)
                wait_settled(balancer, endpoint)
                drained.append(hook.wait(PRESTOP_S + 30))
                closing.append(answers_with_close(old))
                open_at_sigterm.append(endpoint.connections)
                exits.append(terminate(old))
                balancer.remove(endpoint)
                serving[slot] = new
                replaced += 1
                load.wait_answered(between)
    finally:
        code, output = load.stop()
        served = {port: b.served for port, b in endpoints.items()}
        balancer.close()
    verdict = load.verdict()
    numbers = verdict["numbers"]
    publish_figures("rolling-restart", {
        "instances": 2, "replaced": replaced, "locust_users": USERS, "exit_codes": exits, "prestop_drain": drained,
        "balancer_refused": balancer.refused, "client_connections_open_at_sigterm": open_at_sigterm,
        "scoring_requests": numbers["scoring_requests"], "scoring_failures": numbers["scoring_failures"],
        "malformed_requests": numbers["malformed_requests"], "expected_rejections": numbers["expected_rejections"],
        "p99_ms": numbers["p99_ms"], "locust_wall_s": verdict["locust"]["wall_s"],
    })
    assert code == 0 and verdict["held"], output[-3000:]
    assert numbers["scoring_failures"] == 0 and not load.failures(), load.failures()
    assert numbers["malformed_failures"] == 0
    assert numbers["scoring_requests"] >= (1 + 2 * rounds) * between
    assert verdict["locust"]["stopped_early"]
    assert drained == [0] * replaced, "the preStop hook could not make an instance drain"
    assert closing == [True] * replaced, "a drained instance kept connections alive or stayed ready"
    assert balancer.refused == 0
    assert all(code == 0 for code in exits), f"an instance did not stop cleanly on SIGTERM: {exits}"
    assert all(count > 0 for count in served.values()), f"a replacement never got traffic: {served}"
