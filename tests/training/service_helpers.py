"""Start ``python -m services.training`` as a real subprocess and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from services.common.settings import REPO_ROOT, Settings, child_env

TOKEN = "training-test-token"


class ServiceProcess:
    """The training service in its own process group, with its log in a file."""

    def __init__(self, settings: Settings, port: int, log_path: Path, **env: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        environment = child_env()
        environment.update(
            RTML_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
            RTML_DATA_DIR=str(settings.data_dir),
            RTML_TRAINING_PORT=str(port),
            RTML_API_TOKEN=TOKEN,
            RTML_KAFKA_MAX_POLL_INTERVAL_MS="3000",
            RTML_KAFKA_SESSION_TIMEOUT_MS="6000",
            RTML_LOG_FORMAT="console",
            **env,
        )
        self.log_path = log_path
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.training"],
                cwd=REPO_ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)

    def post(self, path: str, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(self.url + path, headers=headers, timeout=30, **kwargs)

    def wait_until(self, check: Any, what: str, limit_s: float = 120.0) -> Any:
        """Poll ``check()`` until it returns something truthy; the limit only guards against a hang."""
        deadline = time.monotonic() + limit_s
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited with {self.proc.returncode} while waiting for {what}:\n{self.tail()}")
            try:
                found = check()
            except httpx.HTTPError:
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}:\n{self.tail()}")
            time.sleep(0.5)

    def wait_ready(self) -> None:
        self.wait_until(lambda: self.get("/readyz").status_code == 200, "readiness")

    def metric(self, name: str, **labels: str) -> float:
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self, limit_s: float = 60.0) -> int:
        """SIGTERM and wait for the exit code; SIGKILL the group only if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=limit_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(f"service ignored SIGTERM:\n{self.tail()}") from None
        return self.proc.returncode
