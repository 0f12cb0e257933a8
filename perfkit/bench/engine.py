"""One load-generating worker: replays its share of the schedule against the target.

A worker runs in its own process with a uvloop event loop. It receives the
whole run's t0 (a ``time.monotonic_ns`` instant, the same clock in every process
on the machine) and its slice of intended offsets: with N workers, worker k takes
every N-th send (sequence numbers k, k+N, ...), so together they replay exactly
the one schedule. Before it reports ready (so before t0 is even picked) it opens
as many keep-alive connections as the first 5 ms of its share will need
(:meth:`Engine.open`); from t0 each wake-up sends every request whose time has come (see :meth:`Engine._dispatch_open`). Finished requests are shipped to the
coordinating process as int64 batches (:data:`COLUMNS`) every ``flush_s``; the
worker keeps no history, so memory stays flat however long the run. Its first send
is reported once (``"sent"``), so the coordinator can say that the run has started.
The bodies of non-2xx answers go as ``"bodies"`` (``[(seq, bytes)]``) just before the
``"rows"`` batch that holds their requests.
"""
from __future__ import annotations

import asyncio
import gc
import os
import resource
import signal
import traceback
from dataclasses import dataclass
from time import monotonic_ns
from typing import Any, Callable

import numpy as np

from perfkit.bench import timer as timer_mod
from perfkit.bench.client import E_INTR, Pool, Req

#: The signals a run stops on; blocked in the coordinator while it forks workers.
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

COLUMNS = ("seq", "stage", "intended_ns", "sent_ns", "first_ns", "done_ns", "status", "err",
           "bytes_out", "bytes_in", "body", "prompt_tokens", "output_tokens", "itl_max_ns", "connect_ns",
           "stream_tokens")  # stream_tokens: tokens seen in a stream (0 for a plain answer: no TTFT/TPOT)
SPIN_NS = 1_500_000   # without timerfd: closer than this to a send, yield instead of sleeping (1 ms timers)
MAX_SLEEP_NS = 100_000_000  # wake at least every 100 ms to notice a stop
TIMER_MIN_NS = 20_000  # with timerfd: closer than this, just yield once (a wake-up costs about as much)
PREWARM_NS = 5_000_000      # open loop: connections opened before t0 = requests due in the first 5 ms
PREWARM_MAX = 256
PREWARM_TIMEOUT_S = 0.5     # connections not open by then are left for the requests to open
BATCH_WINDOW_NS = 250_000  # dense schedules: at most one send wake-up per 250 us (see _dispatch_open)


@dataclass
class WorkerJob:
    """A worker's share of the run (pickled to the worker process)."""

    index: int
    n_workers: int
    host: str
    port: int
    use_ssl: bool
    stream: bool                    # answers are token streams (openai, unless --no-stream)
    requests: list[bytes]
    offsets_ns: np.ndarray          # int64, intended offsets from t0, this worker's share
    seqs: np.ndarray                # int64 sequence numbers, same length
    stages: np.ndarray              # int32 stage index, same length
    timeout_s: float
    max_connections: int
    closed_concurrency: int = 0     # >0: closed loop instead of the offsets
    think_s: float = 0.0
    duration_s: float = 0.0
    flush_s: float = 0.25
    batch_window_ns: int = BATCH_WINDOW_NS  # minimum spacing of send wake-ups (0: one per request)
    grace_s: float = 1.0            # after a stop: how long in-flight requests may still finish
    answers: bool = False           # not streamed: successful answers are OpenAI JSON, read for their usage


def _raise_fd_limit() -> int:
    """Open loop may need thousands of connections: lift the soft fd limit to the hard one.

    Returns the soft limit in force afterwards (unchanged when the OS refuses)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = (1 << 20) if hard == resource.RLIM_INFINITY else hard
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            return soft
    return soft


class Engine:
    """The event-loop side of a worker (also usable in-process by tests)."""

    def __init__(self, job: WorkerJob, t0_ns: int, emit: Callable[[str, Any], None],
                 stop_flag: Callable[[], bool]):
        self.job = job
        self.t0 = t0_ns
        self.emit = emit                # (kind, payload) to the coordinator
        self.stop_flag = stop_flag
        self.rows: list[int] = []                 # finished requests, flat, len(COLUMNS) ints each
        self.packed: list[np.ndarray] = []        # rows already packed, not yet emitted
        self.gap_rows: list[tuple[int, int]] = []
        self.err_bodies: list[tuple[int, bytes]] = []  # (seq, body) of non-2xx answers
        self.stopping = False
        self.announced = False                    # the first send was reported
        self.pool: Pool | None = None             # made by open(), on the running loop

    def _announce(self) -> None:
        """Tell the coordinator, once, that a request has left."""
        if not self.announced:
            self.announced = True
            self.emit("sent", None)

    def _on_done(self, req: Req) -> None:
        out = req.usage_out if req.usage_out >= 0 else (req.tokens if self.job.stream else -1)
        # One flat list of ints (len(COLUMNS) per request): cheaper to append to and to
        # turn into an int64 matrix than a list of row tuples.
        self.rows += (req.seq, req.stage, req.intended, req.sent, req.first, req.done, req.status,
                      req.err, req.bytes_out, req.bytes_in, req.body, req.prompt_tokens, out, req.itl_max,
                      req.connect, req.tokens)
        if req.gaps:
            seq = req.seq
            self.gap_rows.extend((seq, g) for g in req.gaps)
        if req.err_body is not None:
            self.err_bodies.append((req.seq, req.err_body))

    def _pack(self) -> None:
        """Turn the rows finished so far into an int64 matrix (done every tick, so that each
        conversion is short and never holds the dispatcher up for long)."""
        if self.rows:
            rows, self.rows = self.rows, []
            self.packed.append(np.array(rows, dtype=np.int64).reshape(-1, len(COLUMNS)))

    def flush(self) -> None:
        self._pack()
        if self.err_bodies:  # before their rows: the coordinator joins them by seq
            bodies, self.err_bodies = self.err_bodies, []
            self.emit("bodies", bodies)
        if self.packed:
            packed, self.packed = self.packed, []
            self.emit("rows", packed[0] if len(packed) == 1 else np.concatenate(packed))
        if self.gap_rows:
            gaps, self.gap_rows = self.gap_rows, []
            self.emit("gaps", np.array(gaps, dtype=np.int64))

    async def _ticker(self, pool: Pool) -> None:
        last_flush = monotonic_ns()
        flush_ns = int(self.job.flush_s * 1e9)
        while True:
            await asyncio.sleep(0.05)
            pool.sweep()
            if not self.stopping and self.stop_flag():
                self.stopping = True
            now = monotonic_ns()
            if now - last_flush >= flush_ns:
                last_flush = now
                self.flush()
            else:
                self._pack()

    async def open(self) -> Pool:
        """The connection pool, made on the running loop; open loop: with as many connections
        open as the first PREWARM_NS of the schedule sends (done before t0 is known, so that
        the run does not start with a connect storm)."""
        if self.pool is None:
            job = self.job
            self.pool = Pool(job.host, job.port, job.requests, timeout_s=job.timeout_s, on_done=self._on_done,
                             stream=job.stream, use_ssl=job.use_ssl, max_connections=job.max_connections,
                             answers=job.answers)
            if job.closed_concurrency == 0:
                want = int(np.searchsorted(job.offsets_ns, PREWARM_NS))
                await self.pool.prewarm(min(want, PREWARM_MAX), PREWARM_TIMEOUT_S)
        return self.pool

    async def _open_loop(self, pool: Pool) -> None:
        job, t0 = self.job, self.t0
        timer = timer_mod.create()
        try:
            await self._dispatch_open(job, pool, t0, timer)
        finally:
            if timer is not None:
                timer.close()

    async def _dispatch_open(self, job: WorkerJob, pool: Pool, t0: int,
                             timer: timer_mod.MonotonicTimer | None) -> None:
        """Send every request at its intended instant, or as soon after it as we can.

        One wake-up sends every request whose time has come, each timed (and measured)
        from its own intended send. Consecutive wake-ups are at least ``batch_window_ns``
        apart: a sparse schedule is served to the microsecond, while a dense one is sent
        in small batches (at 40k req/s and 250 us, about 10 a wake-up) instead of arming
        a timer, waking the loop and waking the target once per request, which cost more
        CPU than the request itself. A request leaves at most about one window late; its
        lag is measured (sent - intended) and its latency still counts from intended.
        """
        nbodies = len(job.requests)
        chunk = 65536
        n = len(job.offsets_ns)
        window = job.batch_window_ns
        burst = 0
        last_wake = 0
        announced = False
        for start in range(0, n, chunk):
            offs = job.offsets_ns[start:start + chunk].tolist()
            seqs = job.seqs[start:start + chunk].tolist()
            stages = job.stages[start:start + chunk].tolist()
            for j in range(len(offs)):
                due = t0 + offs[j]
                while True:
                    if self.stopping:
                        return
                    now = monotonic_ns()
                    if due <= now:
                        break
                    burst = 0
                    # Sleeps are capped at MAX_SLEEP_NS so that a stop is seen promptly
                    # even in a sparse schedule (a replayed trace with long gaps).
                    if timer is not None:
                        wake = max(due, last_wake + window)
                        if wake - now > TIMER_MIN_NS:
                            await timer.sleep_until(min(wake, now + MAX_SLEEP_NS))
                        else:
                            await asyncio.sleep(0)
                        last_wake = monotonic_ns()
                    elif due - now > SPIN_NS:
                        await asyncio.sleep(min(due - now - 1_000_000, MAX_SLEEP_NS) / 1e9)
                    else:
                        await asyncio.sleep(0)
                seq = seqs[j]
                pool.submit(Req(seq, stages[j], due, seq % nbodies))
                if not announced:
                    announced = True
                    self._announce()
                burst += 1
                if burst >= 64:  # behind schedule: let responses in now and then
                    burst = 0
                    await asyncio.sleep(0)

    async def _closed_loop(self, pool: Pool) -> None:
        job = self.job
        end = self.t0 + int(job.duration_s * 1e9)
        nbodies = len(job.requests)
        counter = [0]
        loop = asyncio.get_running_loop()

        async def user() -> None:
            while not self.stopping:
                now = monotonic_ns()
                if now >= end:
                    return
                seq = counter[0] * job.n_workers + job.index
                counter[0] += 1
                req = Req(seq, 0, now, seq % nbodies)  # closed loop: intended = issued
                req.waiter = loop.create_future()
                pool.submit(req)
                self._announce()
                await req.waiter
                if job.think_s > 0:
                    await asyncio.sleep(job.think_s)

        delay = (self.t0 - monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        await asyncio.gather(*(user() for _ in range(job.closed_concurrency)))

    async def run(self) -> dict[str, Any]:
        """Replay the share from t0 (:meth:`open` first if not done), then let what is in
        flight finish; returns the peak connection count and whether it was stopped."""
        job = self.job
        pool = await self.open()
        ticker = asyncio.get_running_loop().create_task(self._ticker(pool))
        try:
            if job.closed_concurrency > 0:
                await self._closed_loop(pool)
            else:
                await self._open_loop(pool)
            # Requests still in flight: wait for them (the ticker times them out at their
            # deadline), or after a stop, give them grace_s and then call them interrupted.
            stop_deadline = None
            while pool.n_inflight > 0:
                if self.stopping or self.stop_flag():
                    self.stopping = True
                    if stop_deadline is None:
                        stop_deadline = monotonic_ns() + int(job.grace_s * 1e9)
                    elif monotonic_ns() >= stop_deadline:
                        pool.sweep(kind=E_INTR, force=True)
                        break
                await asyncio.sleep(0.01)
        finally:
            ticker.cancel()
            pool.close()
            self.flush()
        return {"peak_connections": pool.peak_conns, "stopped": self.stopping}


def worker_main(job: WorkerJob, t0_value: Any, go: Any, stop: Any, queue: Any) -> None:
    """Process entry point: handshake, run the engine, report. Never raises."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the coordinator decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent around fork
    try:
        _raise_fd_limit()
        loop_factory: Callable[[], asyncio.AbstractEventLoop]
        try:
            import uvloop
            loop_factory = uvloop.new_event_loop
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            loop_factory = asyncio.new_event_loop
        engine = Engine(job, 0, lambda kind, payload: queue.put((kind, job.index, payload)), stop.is_set)
        loop = loop_factory()
        try:
            loop.run_until_complete(engine.open())  # connections open before "ready"
            queue.put(("ready", job.index, os.getpid()))
            go.wait()
            engine.t0 = int(t0_value.value)
            # Everything built so far lives for the whole run: keep the collector off it,
            # and collect the young generation rarely (requests do not form cycles).
            gc.freeze()
            gc.set_threshold(50_000, 50, 1000)
            info = loop.run_until_complete(engine.run())
        finally:
            loop.close()
        queue.put(("done", job.index, info))
    except BaseException:  # report, never print a traceback into the user's terminal
        queue.put(("error", job.index, traceback.format_exc(limit=5)))
