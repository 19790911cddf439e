"""`rtml up`: the embedded stack starts, refuses a second copy clearly, and SIGTERM leaves no process behind."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from services.common.broker import free_port, port_open
from services.common.settings import FEATURE_STAGES, child_env
from services.demo.probes import metric_total


def _env(data_dir: Path) -> dict[str, str]:
    env = child_env()
    env.update(
        RTML_DATA_DIR=str(data_dir),
        RTML_BROKER_PORT=str(free_port()),
        RTML_FEATURE_PORT=str(free_port()),
        RTML_TRAINING_PORT=str(free_port()),
        RTML_MONITOR_PORT=str(free_port()),
        RTML_INFERENCE_PORT=str(free_port()),
        RTML_KAFKA_MAX_POLL_INTERVAL_MS="3000",
        RTML_LOG_FORMAT="console",
    )
    return env


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout_s: float) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip())
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not seen; output:\n" + "\n".join(seen[-40:]))


def test_up_runs_refuses_second_copy_and_stops_cleanly(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_line(proc, "stack is up", timeout_s=240)
        assert port_open("127.0.0.1", int(env["RTML_BROKER_PORT"]))
        family = psutil.Process(proc.pid).children(recursive=True)
        assert family, "rtml up started no child processes (at least the broker)"

        second = subprocess.run(
            [sys.executable, "-m", "services.cli", "up"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "already running" in second.stdout + second.stderr

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        _gone, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, f"orphans left running: {[p.info for p in alive]}"
        assert not port_open("127.0.0.1", int(env["RTML_BROKER_PORT"]))
    finally:
        if proc.poll() is None:
            proc.kill()


def test_up_runs_the_feature_service_in_the_given_layout(tmp_path: Path) -> None:
    """`--feature-layout`: one process per '/'-separated part, each running only its stages, the two
    user-stage processes sharing that stage's 4 partitions."""
    env = _env(tmp_path / "data")
    env["RTML_TOPIC_PARTITIONS"] = "4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--services", "feature", "--feature-layout", "user/user/label,merchant"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = _wait_for_line(proc, "stack is up", timeout_s=240)
        ports = {
            m.group(1): int(m.group(2))
            for line in seen
            if (m := re.search(r"started (feature-\S+) \(pid \d+, port (\d+)\)", line))
        }
        assert set(ports) == {"feature-user-1", "feature-user-2", "feature-label+merchant"}, seen
        assert ports["feature-user-1"] == int(env["RTML_FEATURE_PORT"])
        expected = {
            "feature-user-1": {"user": 2, "label": 0, "merchant": 0},
            "feature-user-2": {"user": 2, "label": 0, "merchant": 0},
            # The label stage reads two co-partitioned topics: its partitions count twice.
            "feature-label+merchant": {"user": 0, "label": 8, "merchant": 4},
        }
        owned: dict[str, dict[str, float]] = {}
        # A bound for a wedged rebalance, not a speed check: the loop ends at the first match.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            owned = {
                name: {
                    stage: metric_total(f"http://127.0.0.1:{port}", "rtml_feature_assigned_partitions", stage=stage)
                    for stage in FEATURE_STAGES
                }
                for name, port in ports.items()
            }
            if owned == expected:
                break
            time.sleep(0.5)
        assert owned == expected
        family = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        _gone, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, f"orphans left running: {[p.info for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("layout", "named"),
    [
        ("user/user/user/user/label/merchant", "RTML_TOPIC_PARTITIONS"),  # 4 user processes, 3 partitions
        ("user/label", "merchant missing"),
        ("user/scoring/label,merchant", "'scoring'"),
        ("/", "expected processes separated by '/'"),
    ],
)
def test_up_refuses_a_bad_feature_layout_naming_the_problem(tmp_path: Path, layout: str, named: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "up", "--feature-layout", layout],
        env=_env(tmp_path / "data"), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("rtml: error: --feature-layout:") and named in proc.stderr, proc.stderr
