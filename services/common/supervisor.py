"""Runs the embedded stack: the Tansu broker, the topics, then every service as a
supervised child process with its output prefixed by the service name."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from services.common.broker import EmbeddedBroker, port_open
from services.common.kafka import ensure_topics
from services.common.settings import Settings, child_env
from services.common.topology import ServiceSpec

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class StackAlreadyRunning(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the supervisor dies, even by SIGKILL, so nothing is orphaned."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    pump: threading.Thread | None = None


@dataclass
class Stack:
    """The embedded stack. ``start()`` returns once everything is up; ``stop()`` tears it down."""

    settings: Settings
    services: list[ServiceSpec]
    start_broker: bool = True
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    max_restarts: int = 5
    broker: EmbeddedBroker | None = field(default=None, init=False)
    children: dict[str, Child] = field(default_factory=dict, init=False)
    _lock_file: IO[str] | None = field(default=None, init=False)
    _stopping: bool = field(default=False, init=False)
    _print_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, ready_timeout_s: float = 120.0) -> Stack:
        self._acquire_lock()
        try:
            if self.start_broker:
                self._start_broker()
            ensure_topics(self.settings)
            self._emit("rtml", f"topics ready on {self.settings.kafka_bootstrap}")
            for spec in self.services:
                if spec.prepare:
                    module_name, func = spec.prepare.split(":")
                    self._emit("rtml", f"preparing {spec.name}: {spec.prepare}")
                    getattr(importlib.import_module(module_name), func)(self.settings)
            waited = set()
            for spec in self.services:
                self._spawn(spec)
                if spec.start_alone:
                    self.wait_ready(ready_timeout_s, {spec.name})
                    waited.add(spec.name)
            self.wait_ready(ready_timeout_s, set(self.children) - waited)
        except BaseException:
            self.stop()
            raise
        return self

    def _acquire_lock(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings.data_dir / ".rtml-up.lock"
        handle = open(path, "a+")  # noqa: SIM115 - held for the stack's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise StackAlreadyRunning(
                f"rtml up is already running (pid {owner}, lock {path}); stop it first or use another RTML_DATA_DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _start_broker(self) -> None:
        host, port = self.settings.bind_host, self.settings.broker_port
        if port_open(host, port):
            raise StackAlreadyRunning(f"port {host}:{port} is already taken; set RTML_BROKER_PORT to a free port")
        log_path = self.settings.data_dir / "tansu.log"
        self.broker = EmbeddedBroker(host=host, port=port, log_path=log_path).start()
        self._emit("rtml", f"Tansu broker listening on {self.broker.bootstrap} (in memory; log {log_path})")

    def _child_env(self) -> dict[str, str]:
        # Children get exactly the supervisor's settings, whatever their source (env, flags, overrides).
        env = child_env(self.settings)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _spawn(self, spec: ServiceSpec, restarts: int = 0) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", spec.module],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**self._child_env(), **dict(spec.env)},
            preexec_fn=_die_with_parent,
        )
        child = Child(spec, process, time.monotonic(), restarts)
        assert process.stdout is not None
        child.pump = threading.Thread(target=self._pump, args=(child, process.stdout), daemon=True)
        child.pump.start()
        self.children[spec.name] = child
        self._emit("rtml", f"started {spec.name} (pid {process.pid}, port {spec.port(self.settings)})")

    def _pump(self, child: Child, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self._emit(child.spec.name, raw.decode("utf-8", "replace").rstrip())

    def _emit(self, name: str, line: str) -> None:
        with self._print_lock:
            print(f"{name:>9} | {line}", file=self.out, flush=True)

    def _probe(self, spec: ServiceSpec, path: str) -> bool:
        url = f"http://{self.settings.bind_host}:{spec.port(self.settings)}{path}"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def alive(self, spec: ServiceSpec) -> bool:
        return self._probe(spec, "/livez")

    def ready(self, spec: ServiceSpec) -> bool:
        return self._probe(spec, "/readyz")

    def wait_ready(self, timeout_s: float, names: set[str] | None = None) -> None:
        """Wait until every child (or those in ``names``) is alive; report readiness without
        waiting for it, because a service can be rightly unready for long (inference has no model
        until the first promotion)."""
        deadline = time.monotonic() + timeout_s
        pending = set(self.children) if names is None else set(names)
        while pending:
            for name in sorted(pending):
                child = self.children[name]
                if child.process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {child.process.returncode} while starting")
                if self.alive(child.spec):
                    pending.discard(name)
                    state = "ready" if self.ready(child.spec) else "alive (not ready yet: see its /readyz)"
                    self._emit("rtml", f"{name} is {state}")
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not alive after {timeout_s:.0f}s: {', '.join(sorted(pending))}")
            time.sleep(0.2)

    def supervise_once(self) -> None:
        """Restart a crashed broker or child with backoff; give up on a child after max_restarts."""
        if self.broker and self.broker.process and self.broker.process.poll() is not None and not self._stopping:
            # The embedded broker keeps nothing in memory across a restart: recreate it and its topics;
            # the services reconnect on their own (tests/resilience/test_broker_outage.py).
            self._emit("rtml", f"broker exited with code {self.broker.process.returncode}; restarting it (its data is lost)")
            self.broker.process = None
            self.broker.start()
            ensure_topics(self.settings)
        for name, child in list(self.children.items()):
            code = child.process.poll()
            if code is None or self._stopping:
                continue
            if child.restarts >= self.max_restarts:
                raise RuntimeError(f"{name} keeps crashing (exit {code}); giving up after {child.restarts} restarts")
            self._emit("rtml", f"{name} exited with code {code}; restarting")
            time.sleep(min(2**child.restarts * 0.5, 10))
            self._spawn(child.spec, child.restarts + 1)

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            self.supervise_once()

    def stop(self, grace_s: float = 15.0) -> None:
        self._stopping = True
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in self.children.values():
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._emit("rtml", f"{child.spec.name} ignored SIGTERM for {grace_s:.0f}s; killing it")
                child.process.kill()
                child.process.wait()
            if child.pump:
                child.pump.join(timeout=2)
        self.children.clear()
        if self.broker:
            self.broker.stop()
            self.broker = None
            self._emit("rtml", "broker stopped")
        if self._lock_file:
            self._lock_file.close()
            self._lock_file = None


def lock_path(data_dir: Path) -> Path:
    return data_dir / ".rtml-up.lock"
