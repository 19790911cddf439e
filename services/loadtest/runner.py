"""Running Locust headless as a subprocess while measuring the CPU it uses itself."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from services.common.settings import REPO_ROOT
from services.loadtest.report import ReportFiles
from services.loadtest.scenarios import SCENARIOS

DEFAULT_LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"
CPU_SAMPLE_S = 0.5
# Locust stops users within this after --run-time; then it writes the final CSV and HTML.
STOP_TIMEOUT_S = 10


@dataclass(frozen=True)
class LoadTestPlan:
    host: str
    users: int
    spawn_rate: float
    run_time_s: int
    scenario: str
    unknown_share: float
    batch_size: int
    locustfile: Path
    report: ReportFiles


@dataclass(frozen=True)
class LocustRun:
    returncode: int
    wall_s: float
    cpu_s: float  # user + system seconds of the Locust process and its children
    stopped_early: bool = False  # asked to stop (SIGTERM or Ctrl-C) before --run-time was up

    @property
    def cores_used(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def locust_command(plan: LoadTestPlan) -> list[str]:
    return [
        sys.executable, "-m", "locust",
        "-f", str(plan.locustfile),
        "--headless", "--only-summary",
        "--host", plan.host,
        "--users", str(plan.users),
        "--spawn-rate", str(plan.spawn_rate),
        "--run-time", f"{plan.run_time_s}s",
        "--stop-timeout", str(STOP_TIMEOUT_S),
        "--tags", SCENARIOS[plan.scenario],
        "--scenario", plan.scenario,
        "--unknown-share", str(plan.unknown_share),
        "--batch-size", str(plan.batch_size),
        "--csv", str(plan.report.csv_prefix),
        "--html", str(plan.report.html),
        "--exit-code-on-error", "0",  # the verdict, not Locust, decides pass or fail
    ]  # fmt: skip


def _cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class _StopRequest:
    """SIGTERM (and Ctrl-C) to `rtml loadtest` become one graceful stop of Locust, which then
    writes its CSV and HTML for the time it ran, so a run can be ended early and still judged."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        # A flag, not KeyboardInterrupt: an exception could leave Locust running in its own session.
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._request) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _request(self, *_: object) -> None:
        self.requested = True


def run_locust(plan: LoadTestPlan, log_path: Path) -> LocustRun:
    """Run Locust to completion (or until asked to stop), its output going to ``log_path``;
    sample its CPU while it runs."""
    env = dict(os.environ)
    # The locustfile imports services.*; make that work from any working directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    started = time.monotonic()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = 0.0
    stopped_at: float | None = None
    with log_path.open("wb") as log, _StopRequest() as stop:
        # Its own session: a terminal's Ctrl-C reaches only us, and we pass on exactly one SIGINT
        # (a second one would cut Locust's own shutdown, and its report, short).
        process = subprocess.Popen(locust_command(plan), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            if stop.requested and stopped_at is None:
                process.send_signal(signal.SIGINT)  # Locust stops its users, writes CSV and HTML, exits
                stopped_at = time.monotonic()
            if stopped_at is not None and time.monotonic() - stopped_at > STOP_TIMEOUT_S + 20:
                process.kill()
            with contextlib.suppress(psutil.Error):
                cpu_s = max(cpu_s, _cpu_seconds(watched))
            time.sleep(CPU_SAMPLE_S)
    # psutil sees the process while it runs; the kernel's account of reaped children adds its last moments.
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped_s = (children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime)
    return LocustRun(process.returncode, time.monotonic() - started, max(cpu_s, reaped_s), stopped_early=stopped_at is not None)
