"""Adaptive micro-batching: concurrent requests share one feature read and one model call.

No timer is involved. While a batch is being scored (on the scoring thread), new
requests queue up; the next batch takes everything queued, up to ``max_batch``. Under
light load a request is scored alone at once, under heavy load batches grow by
themselves, so the latency added is never more than one batch in front.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(self, process: Callable[[Sequence[In]], Sequence[Out]], max_batch: int = 64) -> None:
        self.process = process
        self.max_batch = max(1, max_batch)
        # One scoring thread: batches run one after another, never competing for the GIL.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        self._queue: asyncio.Queue[tuple[Sequence[In], asyncio.Future[Sequence[Out]]]] | None = None
        self._task: asyncio.Task[None] | None = None

    def _ensure_running(self) -> asyncio.Queue[tuple[Sequence[In], asyncio.Future[Sequence[Out]]]]:
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._loop(self._queue), name="micro-batcher")
        return self._queue

    async def submit(self, items: Sequence[In]) -> Sequence[Out]:
        """Results for ``items`` in order; raises whatever ``process`` raised for their batch."""
        future: asyncio.Future[Sequence[Out]] = asyncio.get_running_loop().create_future()
        self._ensure_running().put_nowait((items, future))
        return await future

    async def _loop(self, queue: asyncio.Queue[tuple[Sequence[In], asyncio.Future[Sequence[Out]]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await queue.get()]
            size = len(waiting[0][0])
            while size < self.max_batch and not queue.empty():
                waiting.append(queue.get_nowait())
                size += len(waiting[-1][0])
            items = [item for chunk, _ in waiting for item in chunk]
            try:
                results = await loop.run_in_executor(self._executor, self.process, items)
            except Exception as exc:
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for chunk, future in waiting:
                if not future.done():
                    future.set_result(results[start : start + len(chunk)])
                start += len(chunk)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
