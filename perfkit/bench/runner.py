"""Running a benchmark end to end: workers, the row writer, progress, signals, the run row.

The coordinating process (this module) never sends a request. It builds the
schedule and the request bytes, forks ``workers`` load processes
(:mod:`perfkit.bench.engine`), gives them one t0, and then only receives their
batches: it writes rows to DuckDB as the run goes, feeds a live HdrHistogram
for the progress bar, drives the live telemetry collectors when available, and
on SIGINT/SIGTERM tells the workers to stop and still finalizes the run
(status ``interrupted``, rows kept, summary written).
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import queue as queue_mod
import secrets
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from perfkit import __version__, machine, store
from perfkit.bench import payload as payload_mod
from perfkit.bench import schedule as schedule_mod
from perfkit.bench.config import BenchConfig
from perfkit.bench.engine import COLUMNS, WorkerJob, worker_main
from perfkit.bench.recorder import RowWriter, gaps_table, to_table
from perfkit.bench.summary import decide_status, dumps, load_columns, summary_from_frame
from perfkit.bench.wire import encode_requests
from perfkit.errors import UsageError
from perfkit.summary import validate

_LAT = COLUMNS.index("done_ns"), COLUMNS.index("intended_ns"), COLUMNS.index("err")


def new_run_id() -> str:
    """``20261125T101500Z-3f2a1c``: sortable UTC time plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _clock_pair() -> tuple[int, float]:
    """(monotonic_ns, unix_s) read as close together as we can (best of 5)."""
    best = None
    for _ in range(5):
        a = time.monotonic_ns()
        w = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) // 2, w / 1e9)
    return best[1], best[2]


class _Progress:
    """tqdm bar on stderr with live P50/P99 from an HdrHistogram (3 significant digits)."""

    def __init__(self, total: int | None, quiet: bool):
        self.bar = None
        self.hist = None
        if quiet or not sys.stderr.isatty():
            return
        from hdrh.histogram import HdrHistogram
        from tqdm import tqdm

        self.hist = HdrHistogram(1, 3_600_000_000, 3)  # microseconds, 1 us .. 1 h
        self.bar = tqdm(total=total, unit="req", file=sys.stderr, leave=False)
        self.last = 0.0

    def update(self, batch: np.ndarray) -> None:
        if self.bar is None:
            return
        done_i, int_i, err_i = _LAT
        lat_us = (batch[:, done_i] - batch[:, int_i]) // 1000
        record = self.hist.record_value
        for v in lat_us[batch[:, err_i] == 0].tolist():
            record(max(1, v))
        self.bar.update(len(batch))
        now = time.monotonic()
        if now - self.last > 0.5 and self.hist.get_total_count():
            self.last = now
            self.bar.set_postfix_str(f"p50 {self.hist.get_value_at_percentile(50) / 1000:.1f} ms "
                                     f"p99 {self.hist.get_value_at_percentile(99) / 1000:.1f} ms")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _live_collectors(config: BenchConfig, run_id: str, target_public: str):
    """perfkit.ingest.live.LiveCollectors when that module exists and collection is on."""
    if not config.collect:
        return None
    try:
        from perfkit.ingest.live import LiveCollectors  # written by the ingest stage
    except ImportError:
        return None
    try:
        col = LiveCollectors(run_id, target_public, target_pid=config.target_pid)
        col.start()
        return col
    except Exception as exc:  # telemetry must never sink the benchmark
        print(f"perfkit bench: live telemetry disabled: {exc}", file=sys.stderr)
        return None


def _lower_priority(nice: int = 10) -> None:
    """Raise the calling thread's nice value (Linux threads have their own); elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except OSError:
            pass


def _widen_pipe(q: Any) -> None:
    """Give the workers' queue a 1 MiB pipe (Linux; 64 KiB by default): a worker's row
    batch then goes through in one write instead of a chain of 64 KiB writes, each of which
    makes the worker's sending thread and its event loop trade the GIL."""
    try:
        import fcntl

        fcntl.fcntl(q._writer.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or a lower pipe-max-size: the default pipe still works


def _write_summary_json(path: str | None, summary: dict[str, Any]) -> None:
    if path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(dumps(summary), encoding="utf-8")
        os.replace(tmp, p)


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def run(config: BenchConfig, run_id: str | None = None) -> dict[str, Any]:
    """Run one benchmark and return its summary dict (also stored and, if asked, written).

    Raises :class:`perfkit.errors.UsageError` on bad input before anything is written.
    The summary carries ``status`` and, where asked, ``slo``; the CLI maps them to
    exit codes.
    """
    target = config.validate()
    assert config.model is not None  # validate() filled in the protocol's default
    stream = config.protocol == "openai"
    closed = config.closed
    offsets, stage_idx, total_s = schedule_mod.build(config.stages, config.seed)
    n_sched = len(offsets)
    if not closed and n_sched == 0:
        raise UsageError("the schedule holds no requests (rate x duration < 1)")
    bodies, classes = payload_mod.generate(config.payload, n_sched if not closed else config.payload.pool,
                                           config.protocol, config.model, config.max_tokens)
    reqs = encode_requests(config.method, target, bodies, config.request_headers(), stream)
    payload_bytes = np.array([len(b) for b in bodies], dtype=np.int64)
    offsets_ns = np.rint(offsets * 1e9).astype(np.int64)
    seqs = np.arange(n_sched, dtype=np.int64)

    run_id = run_id or new_run_id()
    intended_rate = None
    if not closed and total_s > 0:
        intended_rate = sum((st.mean_rate_rps() or 0.0) * st.length_s() for st in config.stages) / total_s
    public = config.public()
    public["scheduled"] = None if closed else int(n_sched)
    public["schedule_s"] = total_s
    public["payload_pool"] = len(bodies)

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
    q = ctx.Queue()
    _widen_pipe(q)
    go, stop = ctx.Event(), ctx.Event()
    t0_value = ctx.Value("q", 0)
    procs = []
    nw = config.workers
    for k in range(nw):
        st = config.stages[0]
        job = WorkerJob(
            index=k, n_workers=nw, host=target.host, port=target.port, use_ssl=target.scheme == "https",
            stream=stream, requests=reqs, offsets_ns=offsets_ns[k::nw], seqs=seqs[k::nw],
            stages=stage_idx[k::nw], timeout_s=config.timeout_s, max_connections=config.max_connections,
            closed_concurrency=(st.concurrency // nw + (1 if k < st.concurrency % nw else 0)) if closed else 0,
            think_s=st.think_s, duration_s=st.duration_s if closed else total_s)
        if closed and job.closed_concurrency == 0:
            continue
        p = ctx.Process(target=worker_main, args=(job, t0_value, go, stop, q), daemon=True,
                        name=f"perfkit-bench-{k}")
        p.start()
        procs.append(p)

    interrupted = {"sig": None}

    def on_signal(signum, _frame):
        interrupted["sig"] = signum
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    con = None
    collectors = None
    progress = None
    crashed = None
    try:
        ready = 0
        deadline = time.monotonic() + 60
        while ready < len(procs):
            try:
                kind, k, payload = q.get(timeout=0.5)
            except queue_mod.Empty:
                if time.monotonic() > deadline or not all(p.is_alive() for p in procs):
                    crashed = "a worker did not start"
                    break
                continue
            if kind == "ready":
                ready += 1
            elif kind == "error":
                crashed = payload.strip().splitlines()[-1]
                break

        con = store.connect(config.db, quiet=config.quiet)
        # While requests fly, DuckDB inserts on one thread: its default (one per core) would
        # take the worker's core for the length of a checkpoint.
        con.execute("SET threads = 1")
        # Slow starts happen before t0 is picked, so that the workers get their full lead:
        # telemetry collectors, and the first row conversion (pyarrow imports pandas on its
        # first use: ~0.5 s of CPU that would otherwise land in the run's first second).
        collectors = _live_collectors(config, run_id, target.public_url)
        progress = _Progress(None if closed else n_sched, config.quiet)
        to_table(np.zeros((0, len(COLUMNS)), dtype=np.int64), 0, 0, 0.0, classes, payload_bytes, stream)
        machine_json = json.dumps(machine.describe(), default=str)
        t0_mono, t0_unix = _clock_pair()
        t0_mono += 200_000_000   # start 200 ms from now, so every worker is waiting at t0
        t0_unix += 0.2
        started_at = datetime.fromtimestamp(t0_unix, tz=timezone.utc)
        with store.transaction(con):
            con.execute(
                "INSERT INTO runs (run_id, label, labels, target, protocol, pattern, scenario, started_at,"
                " t0_unix_s, status, status_reason, intended_rate_rps, duration_s, tool, tool_version, machine)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', NULL, ?, ?, 'perfkit', ?, ?)",
                [run_id, config.label, json.dumps({**store.parse_label(config.label), **config.tags}),
                 target.public_url, config.protocol, config.pattern, json.dumps(public, default=str),
                 started_at, t0_unix, intended_rate, total_s, __version__, machine_json])
        writer = RowWriter(con, run_id)

        t0_value.value = t0_mono
        if crashed:
            stop.set()
        go.set()
        finished: set[int] = set()
        llm = stream

        def drain() -> None:
            """Receive the workers' batches and write them until every worker is done."""
            nonlocal crashed, collectors
            _lower_priority()
            last_collect = time.monotonic()
            while len(finished) < len(procs):
                try:
                    kind, k, payload = q.get(timeout=0.2)
                except queue_mod.Empty:
                    kind = None
                if kind == "rows":
                    writer.add(to_table(payload, k, t0_mono, t0_unix, classes, payload_bytes, llm))
                    progress.update(payload)
                elif kind == "gaps":
                    writer.add_gaps(gaps_table(payload))
                elif kind == "done":
                    finished.add(k)
                elif kind == "error":
                    finished.add(k)
                    crashed = crashed or payload.strip().splitlines()[-1]
                    stop.set()
                elif kind is None:
                    for i, p in enumerate(procs):
                        if not p.is_alive() and i not in finished and q.empty():
                            finished.add(i)
                            crashed = crashed or f"worker {i} exited with code {p.exitcode}"
                writer.maybe_flush()
                if collectors is not None and time.monotonic() - last_collect >= 1.0:
                    last_collect = time.monotonic()
                    try:
                        collectors.write(con)
                    except Exception as exc:  # telemetry must never sink the benchmark
                        print(f"perfkit bench: live telemetry stopped: {exc}", file=sys.stderr)
                        collectors = None

        # The batches are drained on a thread of lower priority (Linux: nice is per thread):
        # when it shares a core with a worker, the worker's sends come first. This thread
        # only waits, so that SIGINT/SIGTERM are still handled here.
        failure: list[BaseException] = []

        def guarded() -> None:
            try:
                drain()
            except BaseException as exc:  # re-raised below, on the caller's thread
                failure.append(exc)
                stop.set()

        drainer = threading.Thread(target=guarded, name="perfkit-bench-writer", daemon=True)
        drainer.start()
        while drainer.is_alive():
            drainer.join(0.2)
        if failure:
            raise failure[0]
        writer.flush()
        con.execute("RESET threads")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if progress is not None:
            progress.close()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        if collectors is not None:
            try:
                collectors.stop()
                collectors.write(con)
            except Exception as exc:
                print(f"perfkit bench: live telemetry: {exc}", file=sys.stderr)

    cols = load_columns(con, run_id)
    status, reason = decide_status(cols["ok"], cols["conn_err"], cols["seq"], interrupted["sig"] is not None,
                                   crashed, cols["errors"])
    ended_at = datetime.now(timezone.utc)
    run_row = store.get_run(con, run_id)
    run_row.update(status=status, status_reason=reason)
    summary = _clean(summary_from_frame(cols, run_row))
    summary["started_at"] = run_row["started_at"].isoformat() if run_row.get("started_at") else None
    summary["ended_at"] = ended_at.isoformat()
    if interrupted["sig"] is not None:
        summary["signal"] = signal.Signals(interrupted["sig"]).name
    validate(summary)
    with store.transaction(con):
        con.execute("UPDATE runs SET status = ?, status_reason = ?, ended_at = ?, summary = ? WHERE run_id = ?",
                    [status, reason, ended_at, json.dumps(summary), run_id])
    con.close()
    _write_summary_json(config.summary_json, summary)
    return summary
