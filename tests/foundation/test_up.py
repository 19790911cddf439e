"""`rtml up`: the embedded stack starts, refuses a second copy clearly, and SIGTERM leaves no process behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from services.common.broker import free_port, port_open
from services.common.settings import child_env


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
