"""The load processes of one run, seen from the coordinator: start, wait, release, reap.

Each worker (:func:`perfkit.bench.engine.worker_main`) is forked with its share of the
schedule, says "ready" once its connections are open, waits for the shared t0 and
reports on one queue: ``("rows" | "gaps" | "bodies" | "sent" | "done" | "error", index, payload)``.
"""
from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import signal
import time
from typing import Any

from perfkit.bench.engine import STOP_SIGNALS, WorkerJob, worker_main
from perfkit.redact import redact_text


def _widen_pipe(q: Any) -> None:
    """Give the workers' queue a 1 MiB pipe (Linux; 64 KiB by default): a worker's row
    batch then goes through in one write instead of a chain of 64 KiB writes, each of which
    makes the worker's sending thread and its event loop trade the GIL."""
    try:
        import fcntl

        fcntl.fcntl(q._writer.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or a lower pipe-max-size: the default pipe still works


class Workers:
    """The load processes, the queue they report on, and the events that start and stop them."""

    def __init__(self, jobs: list[WorkerJob]):
        self.ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.queue: Any = self.ctx.Queue()
        _widen_pipe(self.queue)
        self.go, self.stop = self.ctx.Event(), self.ctx.Event()
        self.t0 = self.ctx.Value("q", 0)
        self.jobs = jobs
        self.procs: dict[int, Any] = {}

    def start(self) -> None:
        """Fork the workers with SIGINT/SIGTERM held back: a signal's handler raising inside
        fork's at-fork callbacks would be printed as an ignored exception and lost; held, it
        is delivered right after, where the coordinator handles it. Workers unblock their own."""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for job in self.jobs:
                proc = self.ctx.Process(target=worker_main, args=(job, self.t0, self.go, self.stop, self.queue),
                                        daemon=True, name=f"perfkit-bench-{job.index}")
                proc.start()
                self.procs[job.index] = proc
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def wait_ready(self, timeout_s: float = 60.0) -> str | None:
        """Wait for every worker's "ready"; the reason if one did not start, else None."""
        ready = 0
        deadline = time.monotonic() + timeout_s
        while ready < len(self.procs):
            try:
                kind, _, payload = self.queue.get(timeout=0.5)
            except queue_mod.Empty:
                if time.monotonic() > deadline or not all(p.is_alive() for p in self.procs.values()):
                    return "a worker did not start"
                continue
            if kind == "ready":
                ready += 1
            elif kind == "error":
                return redact_text(payload.strip().splitlines()[-1])
        return None

    def release(self, t0_mono_ns: int) -> None:
        """Hand every worker the run's t0 and let them go."""
        self.t0.value = t0_mono_ns
        self.go.set()

    def close(self) -> None:
        """Stop the workers (if still running) and reap them."""
        self.stop.set()
        self.go.set()
        for p in self.procs.values():
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
