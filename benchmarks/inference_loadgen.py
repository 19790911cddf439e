"""A small closed-loop HTTP load generator: fixed concurrency, fixed duration, one asyncio loop.

It is deliberately lean (aiohttp, keep-alive, no per-request allocation beyond the body)
so that on a 2-core machine it leaves the server its own core.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    client_cpu_s: float

    def row(self) -> str:
        return (
            f"| {self.name} | {self.rps:,.0f} | {self.p50_ms:.2f} | {self.p99_ms:.2f} | "
            f"{self.requests} | {self.errors} | {self.client_cpu_s:.1f} |"
        )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(
    name: str, url: str, bodies: list[bytes], headers: dict[str, str], concurrency: int, duration_s: float, warmup_s: float
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    recording = False
    stop_at = 0.0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers={"Content-Type": "application/json", **headers}) as session:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < stop_at:
                body = bodies[i % len(bodies)]
                i += concurrency
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except aiohttp.ClientError:
                    ok = False
                if recording:
                    latencies.append(time.perf_counter() - started)
                    if not ok:
                        errors += 1

        stop_at = time.perf_counter() + warmup_s + duration_s
        tasks = [asyncio.create_task(worker(k)) for k in range(concurrency)]
        await asyncio.sleep(warmup_s)
        recording = True
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
    arr = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return LoadResult(
        name=name,
        requests=len(latencies),
        errors=errors,
        seconds=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=float(np.percentile(arr, 50)),
        p99_ms=float(np.percentile(arr, 99)),
        client_cpu_s=cpu,
    )


def run_load(
    name: str,
    url: str,
    payloads: list[dict[str, Any]],
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 32,
    duration_s: float = 10.0,
    warmup_s: float = 2.0,
) -> LoadResult:
    bodies = [json.dumps(p).encode() for p in payloads]
    return asyncio.run(_run(name, url, bodies, headers or {}, concurrency, duration_s, warmup_s))
