"""What the classifier batcher and the LLM engine share: one loop task, one compute thread.

The loop runs on the event loop (forming batches, admitting sequences); the
compute it hands off runs in a single worker thread, so the event loop keeps
serving meanwhile and the model is never called from two threads at once.
"""
from __future__ import annotations

import abc
import asyncio
from concurrent.futures import ThreadPoolExecutor


class LoopWorker(abc.ABC):
    """Starts ``_run`` as a task on the running loop; ``stop`` cancels it and the thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._task: asyncio.Task | None = None

    @abc.abstractmethod
    async def _run(self) -> None:
        """The loop: runs until cancelled."""

    def start(self) -> None:
        """Start the loop on the running event loop (call from a coroutine or startup hook)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Cancel the loop, wait for it to end, drop queued compute."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)
