"""Request batching in front of the classifier: dynamic, fixed, or none.

One batcher task owns the model; it takes requests from a FIFO queue, forms a
batch, and runs ONE model call for it in a single worker thread (so the event loop
keeps accepting requests meanwhile):

- ``dynamic``: collect until ``max_batch`` requests or until ``batch_timeout``
  has passed since the first waiting request was queued, then run what there is.
  Rows of the batched requests are concatenated (ragged batching, no padding).
- ``fixed``: wait to FILL ``max_batch`` requests; only a long safety timeout
  (``fixed_wait``, default 10x ``batch_timeout``) releases a partial batch. The
  model input is padded to ``max_batch`` slots of the longest request's row count,
  so padding rows are real, wasted compute (the static-shape anti-pattern: at low
  load, queue wait dominates and batch size sits at the max or at the timeout).
- ``none``: one request per model call, serialized through the one worker.

The queue depth counts every request whose batch has not started yet (queued or
taken into the batch being formed); it is bounded by ``max_queue`` (``QueueFull``
-> HTTP 503).
"""
from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import numpy as np

from perfkit.demo.metrics import DemoMetrics
from perfkit.demo.worker import LoopWorker

MODES = ("dynamic", "fixed", "none")
Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class QueueFull(RuntimeError):
    """The request queue is at ``max_queue``: shed the request."""


@dataclass
class BatchResult:
    """What one request gets back from its batch."""

    labels: np.ndarray
    probabilities: np.ndarray
    batch_size: int
    batch_rows: int
    padding_rows: int
    queue_wait_s: float
    inference_s: float


@dataclass
class _Job:
    rows: np.ndarray
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


def assemble(jobs_rows: list[np.ndarray], mode: str, max_batch: int) -> tuple[np.ndarray, list[int], int]:
    """Build one model input from the requests' rows.

    Returns ``(input, offsets, padding_rows)`` where request i's rows are
    ``input[offsets[i]:offsets[i] + len(jobs_rows[i])]``. ``fixed`` pads to
    ``max_batch`` slots of the longest request's row count; others concatenate.
    """
    if mode == "fixed":
        slot = max(len(rows) for rows in jobs_rows)
        batch = np.zeros((max_batch * slot, jobs_rows[0].shape[1]), dtype=np.float32)
        offsets = []
        for i, rows in enumerate(jobs_rows):
            batch[i * slot:i * slot + len(rows)] = rows
            offsets.append(i * slot)
        real = sum(len(rows) for rows in jobs_rows)
        return batch, offsets, len(batch) - real
    offsets, total = [], 0
    for rows in jobs_rows:
        offsets.append(total)
        total += len(rows)
    return np.concatenate(jobs_rows) if len(jobs_rows) > 1 else jobs_rows[0], offsets, 0


class Batcher(LoopWorker):
    """The queue, the batch-forming loop and the one model worker thread."""

    def __init__(self, predict: Predict, *, mode: str, max_batch: int, batch_timeout_s: float,
                 fixed_wait_s: float, max_queue: int, metrics: DemoMetrics,
                 gate: Callable[[], Awaitable[None]]) -> None:
        if mode not in MODES:
            raise ValueError(f"batching mode {mode!r} not in {MODES}")
        super().__init__("model")
        self.predict = predict
        self.mode = mode
        self.max_batch = 1 if mode == "none" else max_batch
        self.wait_s = {"dynamic": batch_timeout_s, "fixed": fixed_wait_s, "none": 0.0}[mode]
        self.max_queue = max_queue
        self.metrics = metrics
        self.gate = gate
        self._queue: collections.deque[_Job] = collections.deque()
        self._forming = 0  # requests taken into the batch being formed (still waiting)
        self._arrived = asyncio.Event()

    async def stop(self) -> None:
        """Stop the loop and the model thread; requests still queued are cancelled."""
        await super().stop()
        for job in self._queue:
            if not job.future.done():
                job.future.cancel()

    @property
    def depth(self) -> int:
        """Requests waiting for their batch to start: queued plus in the forming batch."""
        return len(self._queue) + self._forming

    async def submit(self, rows: np.ndarray) -> BatchResult:
        """Queue one request's rows and wait for its share of a batch result."""
        if self.depth >= self.max_queue:
            raise QueueFull(f"queue full ({self.max_queue} requests waiting)")
        job = _Job(rows=rows, future=asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self.metrics.queue_depth.set(self.depth)
        self._arrived.set()
        return await job.future

    async def _take(self) -> list[_Job]:
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        jobs = [self._queue.popleft()]
        self._forming = 1
        deadline = jobs[0].enqueued + self.wait_s
        while len(jobs) < self.max_batch:
            if self._queue:
                jobs.append(self._queue.popleft())
                self._forming = len(jobs)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        self._forming = 0
        self.metrics.queue_depth.set(self.depth)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._take()
            await self.gate()
            jobs = [job for job in jobs if not job.future.done()]  # client went away
            if not jobs:
                continue
            started = time.monotonic()
            try:
                batch, offsets, padding = assemble([job.rows for job in jobs], self.mode,
                                                   self.max_batch)
                labels, probabilities = await loop.run_in_executor(
                    self._executor, self.predict, batch)
            except Exception as exc:  # the model failed: every request of the batch fails
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            inference_s = time.monotonic() - started
            real_rows = sum(len(job.rows) for job in jobs)
            m = self.metrics
            m.batch_size.observe(len(jobs))
            m.batch_rows.inc(real_rows)
            m.batch_padding_rows.inc(padding)
            m.inference_duration.observe(inference_s)
            for job, offset in zip(jobs, offsets):
                wait_s = started - job.enqueued
                m.queue_wait.observe(wait_s)
                if job.future.done():
                    continue
                end = offset + len(job.rows)
                job.future.set_result(BatchResult(
                    labels=labels[offset:end], probabilities=probabilities[offset:end],
                    batch_size=len(jobs), batch_rows=real_rows + padding,
                    padding_rows=padding, queue_wait_s=wait_s, inference_s=inference_s))
