"""Test helper for the rolling restart: a round-robin TCP balancer in front of inference instances.

The balancer behaves like a Kubernetes Service (kube-proxy): it balances *connections*, a
backend taken out of the endpoints (not ready / terminating) gets no new connections, and
connections already open to it stay open until one side closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from services.common.broker import free_port


@dataclass
class Backend:
    host: str
    port: int
    ready: bool = True
    connections: int = 0  # open now
    opening: int = 0  # picked, but its first request bytes not yet handed to the backend
    served: int = 0  # connections handed to it so far


class LoopThread:
    """An asyncio loop on a daemon thread of its own; ``run`` submits a coroutine and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Balancer:
    """Round-robin over ready backends, one pick per client connection."""

    def __init__(self) -> None:
        self.port = free_port()
        self.backends: list[Backend] = []
        self.refused = 0  # client connections closed because no backend was ready or reachable
        self._next = 0
        self._lock = threading.Lock()
        self._runner = LoopThread("balancer")
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Balancer:
        async def listen() -> asyncio.Server:
            return await asyncio.start_server(self._serve, "127.0.0.1", self.port)

        self._server = self._runner.run(listen())
        return self

    def close(self) -> None:
        if self._server is not None:
            server = self._server

            async def shut() -> None:
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 5)

            with contextlib.suppress(Exception):
                self._runner.run(shut())
        self._runner.close()

    # ---- endpoints, as the control plane changes them ----------------------------------
    def add(self, port: int) -> Backend:
        backend = Backend("127.0.0.1", port)
        with self._lock:
            self.backends.append(backend)
        return backend

    def set_ready(self, backend: Backend, ready: bool) -> None:
        with self._lock:
            backend.ready = ready

    def remove(self, backend: Backend) -> None:
        with self._lock:
            self.backends.remove(backend)

    def _pick(self) -> Backend | None:
        with self._lock:
            ready = [b for b in self.backends if b.ready]
            if not ready:
                return None
            self._next += 1
            chosen = ready[self._next % len(ready)]
            chosen.opening += 1
            return chosen

    def settled(self, backend: Backend) -> bool:
        """Every connection routed to ``backend`` before its removal has delivered its first
        request: the removal has propagated (in a cluster the chart's preStop sleep waits this out)."""
        with self._lock:
            return backend.opening == 0

    def _opened(self, backend: Backend) -> None:
        with self._lock:
            backend.opening -= 1

    # ---- data path -------------------------------------------------------------------------
    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend = self._pick()
        if backend is None:
            self.refused += 1
            client_writer.close()
            return
        opened = False

        def first_bytes_sent() -> None:
            nonlocal opened
            if not opened:
                opened = True
                self._opened(backend)

        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(backend.host, backend.port)
        except OSError:
            first_bytes_sent()
            self.refused += 1
            client_writer.close()
            return
        backend.connections += 1
        backend.served += 1
        try:
            await asyncio.gather(
                _pipe(client_reader, upstream_writer, first_bytes_sent),
                _pipe(upstream_reader, client_writer),
                return_exceptions=True,
            )
        finally:
            first_bytes_sent()
            backend.connections -= 1
            for writer in (client_writer, upstream_writer):
                writer.close()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_first: Callable[[], None] | None = None
) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
            if on_first is not None:
                on_first()
                on_first = None
    finally:
        # Half-close: the other direction may still be carrying a response.
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
