"""The open-loop dispatcher in-process against a real server: batched sends, pre-opened
connections, the flat row matrix (no timing assertions: only what must hold exactly)."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from perfkit.bench.client import Pool
from perfkit.bench.engine import COLUMNS, Engine, WorkerJob
from perfkit.demo.launch import free_port

C = {name: i for i, name in enumerate(COLUMNS)}


def _job(port: int, offsets_ns: np.ndarray, window_ns: int) -> WorkerJob:
    n = len(offsets_ns)
    req = (b"POST /status/200 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
           b"Content-Length: 2\r\n\r\n{}" % port)
    return WorkerJob(index=0, n_workers=1, host="127.0.0.1", port=port, use_ssl=False, stream=False,
                     requests=[req], offsets_ns=offsets_ns.astype(np.int64), seqs=np.arange(n, dtype=np.int64),
                     stages=np.zeros(n, dtype=np.int32), timeout_s=10.0, max_connections=1000,
                     duration_s=float(offsets_ns[-1]) / 1e9, flush_s=0.1, batch_window_ns=window_ns)


def _run(job: WorkerJob) -> tuple[np.ndarray, dict]:
    batches: list[np.ndarray] = []

    async def main():
        t0 = __import__("time").monotonic_ns() + 150_000_000
        engine = Engine(job, t0, lambda kind, payload: batches.append(payload) if kind == "rows" else None,
                        lambda: False)
        return t0, await engine.run()

    t0, info = asyncio.run(main())
    rows = np.concatenate(batches)
    info["t0"] = t0
    return rows, info


@pytest.mark.parametrize("window_ns", [0, 250_000, 2_000_000])
def test_every_request_once_never_before_its_instant(fake, window_ns):
    # Dense (20 us apart) then sparse (5 ms apart): batching must not send anything early,
    # lose or repeat a request, and every row is timed from its own intended instant.
    offs = np.concatenate([np.arange(300) * 20_000, 6_000_000 + np.arange(60) * 5_000_000])
    rows, info = _run(_job(fake.port, offs, window_ns))
    assert rows.shape == (len(offs), len(COLUMNS))
    rows = rows[np.argsort(rows[:, C["seq"]])]
    assert np.array_equal(rows[:, C["seq"]], np.arange(len(offs)))
    assert np.array_equal(rows[:, C["intended_ns"]], info["t0"] + offs)
    assert np.all(rows[:, C["err"]] == 0) and np.all(rows[:, C["status"]] == 200)
    assert np.all(rows[:, C["sent_ns"]] >= rows[:, C["intended_ns"]])
    assert np.all(rows[:, C["done_ns"]] > rows[:, C["sent_ns"]])


def test_prewarm_parks_live_connections(fake):
    async def main():
        pool = Pool("127.0.0.1", fake.port, [b""], timeout_s=1.0, on_done=lambda req: None)
        n = await pool.prewarm(12, 5.0)
        state = (n, pool.n_conns, pool.peak_conns, sum(not c.closed for c in pool.idle))
        pool.close()
        return state

    assert asyncio.run(main()) == (12, 12, 12, 12)


def test_prewarm_counts_only_connections_made():
    async def main(port):
        pool = Pool("127.0.0.1", port, [b""], timeout_s=1.0, on_done=lambda req: None)
        return await pool.prewarm(8, 2.0), pool.n_conns

    assert asyncio.run(main(free_port())) == (0, 0)  # nothing listens: no error, nothing parked


def test_a_new_connection_is_timed_from_before_its_connect(fake):
    # The request that opens a connection is stamped sent before the connect, whose time it
    # carries (so connect time is service time, not schedule lag); the next one reuses it.
    from time import monotonic_ns

    from perfkit.bench.client import Req

    req = (b"POST /status/200 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: 2\r\n\r\n{}")

    async def main():
        finished: list[Req] = []
        pool = Pool("127.0.0.1", fake.port, [req], timeout_s=5.0, on_done=finished.append)
        for seq in range(2):
            r = Req(seq, 0, monotonic_ns(), 0)
            r.waiter = asyncio.get_running_loop().create_future()
            pool.submit(r)
            await r.waiter
        pool.close()
        return finished

    first, second = asyncio.run(main())
    assert first.err == second.err == 0
    assert first.connect >= 0 and first.done - first.sent > first.connect
    assert second.connect == -1 and second.conn is first.conn
