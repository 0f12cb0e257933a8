"""Running a benchmark end to end: plan, workers, the row writer, signals, the run row.

The coordinating process (this module) never sends a request. :func:`run` goes

1. :func:`plan_run`: the schedule and the request bytes, built before any process starts;
2. :class:`~perfkit.bench.workers.Workers`: forks ``workers`` load processes
   (:mod:`perfkit.bench.engine`), which open their connections and wait for the one t0;
3. :func:`_open_session`, meanwhile: the store, the row writer and the machine's
   description: the coordinator's slow starts overlap the workers' and are done before t0;
4. :func:`_record`: the ``runs`` row (status ``running``) and t0, a short lead from now;
5. :class:`_Drain`: receives the workers' batches and writes them as the run goes, feeds
   the progress bar and the live telemetry collectors (started just after t0, handed the
   real target URL in memory only), and says when the first request has left;
6. :func:`finalize`: the summary (checked against :mod:`perfkit.summary`) and the
   final status, from the stored rows.

The modules for 3, 4 and 6 (DuckDB, Arrow, polars; scipy for the summary) are
imported where they are used, so that the first request leaves as early as it can.

SIGINT/SIGTERM (:mod:`perfkit.bench.signals`): before the ``runs`` row exists a signal
ends the run with nothing recorded; afterwards the workers are told to stop and the
run is still finalized (status ``interrupted``, rows kept, summary written).
"""
from __future__ import annotations

import importlib
import os
import queue as queue_mod
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from perfkit import __version__, jsonsafe
from perfkit.bench import errorbodies
from perfkit.bench import payload as payload_mod
from perfkit.bench import schedule as schedule_mod
from perfkit.bench import segments
from perfkit.bench.config import BenchConfig, Target
from perfkit.bench.engine import WorkerJob
from perfkit.bench.progress import Progress, announce_start
from perfkit.bench.signals import StopSignals
from perfkit.bench.wire import encode_requests
from perfkit.bench.workers import Workers
from perfkit.errors import UsageError
from perfkit.redact import redact_text, secret_name
from perfkit.summary import RunSummary, validate

if TYPE_CHECKING:
    import duckdb

    from perfkit.bench.recorder import RowWriter

# t0 is this far after the run row: the workers, connections already open, only have to wake.
START_LEAD_NS = 50_000_000


def new_run_id() -> str:
    """``20261125T101500Z-3f2a1c``: sortable UTC time plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _clock_pair() -> tuple[int, float]:
    """(monotonic_ns, unix_s) read as close together as we can (best of 5)."""
    best = (1 << 62, 0, 0.0)
    for _ in range(5):
        a = time.monotonic_ns()
        w = time.time_ns()
        b = time.monotonic_ns()
        if b - a < best[0]:
            best = (b - a, (a + b) // 2, w / 1e9)
    return best[1], best[2]


def _say(message: str) -> None:
    print(f"perfkit bench: {redact_text(message)}", file=sys.stderr, flush=True)


@dataclass
class Plan:
    """Everything a run sends, decided before any process starts."""

    config: BenchConfig
    target: Target
    run_id: str
    requests: list[bytes]             # encoded requests, one per body
    classes: list[str]                # payload class of each body
    payload_bytes: np.ndarray         # body sizes
    offsets_ns: np.ndarray            # intended send offsets from t0 (open loop)
    stage_idx: np.ndarray
    total_s: float
    intended_rate_rps: float | None
    public: dict[str, Any] = field(default_factory=dict)  # the secret-free scenario (runs.scenario)
    intended_tokens: tuple[np.ndarray, np.ndarray] | None = None  # token-true workloads: per body
    seqs: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # global seq of each send
    start_unix: float | None = None   # --start-at: the shared wall-clock t0

    @property
    def stream(self) -> bool:
        """Requests ask for a token stream (openai, unless --no-stream)."""
        return self.config.streams

    @property
    def llm(self) -> bool:
        """Rows carry token columns (openai, streamed or not)."""
        return self.config.protocol == "openai"

    @property
    def scheduled(self) -> int | None:
        """Sends in the schedule (None: closed loop, where users decide)."""
        return None if self.config.closed else len(self.offsets_ns)


def plan_run(config: BenchConfig, run_id: str | None = None) -> Plan:
    """Validate ``config`` and build the schedule and the request bytes.

    Raises :class:`perfkit.errors.UsageError` on bad input, before anything is written.
    """
    target = config.validate()
    assert config.model is not None  # validate() filled in the protocol's default
    offsets, stage_idx, total_s = schedule_mod.build(config.stages, config.seed)
    n_sched = len(offsets)
    if not config.closed and n_sched == 0:
        raise UsageError("the schedule holds no requests (rate x duration < 1)")
    n_bodies = config.payload.pool if config.closed else n_sched
    intended = None
    if config.workload.active:  # token-true LLM workload (perfkit.bench.workload)
        from perfkit.bench.workload import build_for

        built = build_for(config.workload, config.payload, config.protocol, config.model, target.path,
                          config.body_overrides(), n_bodies)
        bodies, classes, intended = built.bodies, built.classes, (built.prompt_tokens, built.output_tokens)
    else:
        bodies, classes = payload_mod.generate(config.payload, n_bodies, config.protocol, config.model,
                                               config.max_tokens, path=target.path,
                                               overrides=config.body_overrides())
    reqs = encode_requests(config.method, target, bodies, config.request_headers(), config.streams)
    rate = None
    if not config.closed and total_s > 0:
        rate = sum((st.mean_rate_rps() or 0.0) * st.length_s() for st in config.stages) / total_s
    seqs = np.arange(n_sched, dtype=np.int64)
    segment = None if config.segment is None else segments.Segment.parse(config.segment)
    if segment is not None:  # this instance's share of the one schedule, global seq kept
        seqs = schedule_mod.share(seqs, segment.index, segment.count)
        rate = None if rate is None else rate * len(seqs) / n_sched
    p = Plan(config, target, run_id or new_run_id(), reqs, classes,
             np.array([len(b) for b in bodies], dtype=np.int64), np.rint(offsets[seqs] * 1e9).astype(np.int64),
             stage_idx[seqs], total_s, rate, intended_tokens=intended, seqs=seqs)
    p.public = {**config.public(), "scheduled": p.scheduled, "schedule_s": total_s, "payload_pool": len(bodies)}
    if segment is not None:
        p.public["segment"] = {"index": segment.index, "count": segment.count, "scheduled_total": n_sched,
                               "schedule_id": segments.schedule_id(config.stages, config.seed, n_sched)}
    if config.start_at is not None:
        p.start_unix = segments.parse_start(config.start_at)
        p.public["start_at_unix_s"] = p.start_unix
    return p


def _jobs(p: Plan) -> list[WorkerJob]:
    """Each worker's share: every n-th send of the one schedule (closed loop: of the users)."""
    cfg, t = p.config, p.target
    nw, st, closed = cfg.workers, cfg.stages[0], cfg.closed
    jobs = []
    for k in range(nw):
        users = (st.concurrency // nw + (1 if k < st.concurrency % nw else 0)) if closed else 0
        if closed and users == 0:
            continue
        jobs.append(WorkerJob(
            index=k, n_workers=nw, host=t.host, port=t.port, use_ssl=t.scheme == "https", stream=p.stream,
            answers=p.llm and not p.stream,
            requests=p.requests, offsets_ns=schedule_mod.share(p.offsets_ns, k, nw),
            seqs=schedule_mod.share(p.seqs, k, nw), stages=schedule_mod.share(p.stage_idx, k, nw),
            timeout_s=cfg.timeout_s, max_connections=cfg.max_connections, closed_concurrency=users,
            think_s=st.think_s, duration_s=st.duration_s if closed else p.total_s))
    return jobs


def _start_collectors(p: Plan) -> Any:
    """perfkit.ingest.live.LiveCollectors when collection is on and that module loads.

    They are handed the real target URL, the real ``--metrics-url`` URLs (scraped instead
    of ``<target>/metrics`` when given) and the run's credential headers (in memory only);
    what they store or print is redacted by them."""
    if not p.config.collect:
        return None
    try:
        from perfkit.ingest.live import LiveCollectors
    except ImportError:
        return None
    secrets_only = {k: v for k, v in p.config.request_headers() if secret_name(k)}
    try:
        col = LiveCollectors(p.run_id, p.target.url, target_pid=p.config.target_pid, headers=secrets_only,
                             metrics_urls=p.config.metrics_urls or None)
        col.start()
        return col
    except Exception as exc:  # telemetry must never sink the benchmark
        _say(f"live telemetry disabled: {exc}")
        return None


@dataclass
class _Session:
    """The coordinator's side of a run between its start-up and its summary."""

    con: duckdb.DuckDBPyConnection
    writer: RowWriter
    progress: Progress
    machine: dict[str, Any] = field(default_factory=dict)
    collectors: Any = None
    t0_mono: int = 0
    t0_unix: float = 0.0
    recorded: bool = False            # the runs row exists: the run will be finalized
    crashed: str | None = None


def _open_session(p: Plan) -> _Session:
    """The coordinator's slow starts (imports, the store, the row writer, the machine's
    description), done while the workers open their connections, and before t0."""
    from perfkit import machine, store
    from perfkit.bench.recorder import RowWriter

    con = store.connect(p.config.db, quiet=p.config.quiet)
    # While requests fly, DuckDB inserts on one thread: its default (one per core) would
    # take the worker's core for the length of a checkpoint.
    con.execute("SET threads = 1")
    session = _Session(con, RowWriter(con, p.run_id), Progress(p.scheduled, p.config.quiet))
    session.machine = machine.describe()
    return session


def _record(p: Plan, session: _Session) -> None:
    """Pick t0 (a short lead from now) and write the run's row (status ``running``)."""
    from perfkit import store
    from perfkit.store import write

    t0_mono, t0_unix = _clock_pair()
    lead_ns = START_LEAD_NS if p.start_unix is None else round((p.start_unix - t0_unix) * 1e9)
    if lead_ns < -segments.PAST_START_S * 1e9:
        raise UsageError(f"--start-at passed {-lead_ns / 1e9:.1f} s ago while the run started: give a later time")
    session.t0_mono = t0_mono + lead_ns
    # a shared start is taken as given, so that every segment stamps the same intended times
    session.t0_unix = t0_unix + lead_ns / 1e9 if p.start_unix is None else p.start_unix
    cfg = p.config
    row = {"run_id": p.run_id, "label": cfg.label, "labels": {**store.parse_label(cfg.label), **cfg.tags},
           "target": p.target.public_url, "protocol": cfg.protocol, "pattern": cfg.pattern,
           "scenario": p.public, "started_at": datetime.fromtimestamp(session.t0_unix, tz=timezone.utc),
           "t0_unix_s": session.t0_unix, "status": "running", "intended_rate_rps": p.intended_rate_rps,
           "duration_s": p.total_s, "tool": "perfkit", "tool_version": __version__, "machine": session.machine}
    with store.transaction(session.con):
        write.insert_run(session.con, row)
    session.recorded = True


class _Drain:
    """Receives the workers' batches and writes them until every worker is done."""

    def __init__(self, p: Plan, workers: Workers, session: _Session):
        self.p, self.workers, self.s = p, workers, session
        self.writer = session.writer
        self.finished: set[int] = set()
        self.started = False
        self.bodies: dict[int, list[tuple[int, bytes]]] = {}  # worker -> error bodies of its next rows
        self.clean = errorbodies.Cleaner()
        self.phases = schedule_mod.Phases(p.config.warmup_s, p.config.cooldown_s, p.total_s)
        self.last_collect = time.monotonic()

    def _receive(self, kind: str | None, k: int, payload: Any) -> None:
        from perfkit.bench.recorder import gaps_table, to_table

        s, p = self.s, self.p
        if kind == "rows":
            self.writer.add(to_table(payload, k, s.t0_mono, s.t0_unix, p.classes, p.payload_bytes, p.llm,
                                     self.bodies.pop(k, None), self.clean, self.phases,
                                     p.intended_tokens))
            s.progress.update(payload)
        elif kind == "bodies":
            self.bodies.setdefault(k, []).extend(payload)
        elif kind == "gaps":
            self.writer.add_gaps(gaps_table(payload))
        elif kind == "sent" and not self.started:
            self.started = True
            announce_start(p.run_id, p.target.public_url)
        elif kind == "done":
            self.finished.add(k)
        elif kind == "error":
            self.finished.add(k)
            s.crashed = s.crashed or redact_text(payload.strip().splitlines()[-1])
            self.workers.stop.set()

    def _reap(self) -> None:
        """Workers that exited without saying so (killed) count as finished, and crashed."""
        for i, proc in self.workers.procs.items():
            if not proc.is_alive() and i not in self.finished and self.workers.queue.empty():
                self.finished.add(i)
                self.s.crashed = self.s.crashed or f"worker {i} exited with code {proc.exitcode}"

    def _collect(self) -> None:
        if self.s.collectors is None or time.monotonic() - self.last_collect < 1.0:
            return
        self.last_collect = time.monotonic()
        try:
            self.s.collectors.write(self.s.con)
        except Exception as exc:  # telemetry must never sink the benchmark
            _say(f"live telemetry stopped: {exc}")
            self.s.collectors = None

    def loop(self) -> None:
        _lower_priority()
        while len(self.finished) < len(self.workers.procs):
            try:
                kind, k, payload = self.workers.queue.get(timeout=0.2)
            except queue_mod.Empty:
                kind, k, payload = None, -1, None
                self._reap()
            self._receive(kind, k, payload)
            self.writer.maybe_flush()
            self._collect()
        self.writer.flush()

    def start(self) -> None:
        """Drain on a thread of lower priority (Linux: nice is per thread): when it shares a
        core with a worker, the worker's sends come first."""
        self.failure: list[BaseException] = []

        def guarded() -> None:
            try:
                self.loop()
            except BaseException as exc:
                self.failure.append(exc)
                self.workers.stop.set()

        self.thread = threading.Thread(target=guarded, name="perfkit-bench-writer", daemon=True)
        self.thread.start()

    def wait(self) -> None:
        """Wait for the drain to end. The calling thread only waits, so that SIGINT/SIGTERM
        are still handled on it; a failure in the drain is raised here."""
        while self.thread.is_alive():
            self.thread.join(0.2)
        if self.failure:
            raise self.failure[0]


def _lower_priority(nice: int = 10) -> None:
    """Raise the calling thread's nice value (Linux threads have their own); elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except OSError:
            pass


def _preload_finalize() -> None:
    """Import what :func:`finalize` needs (scipy and pandas for the statistics: seconds of
    CPU) on an idle-priority thread while the run goes, so that
    the summary follows the last response closely without delaying the first request."""
    def load() -> None:
        _lower_priority(19)
        try:
            for name in ("perfkit.bench.queries", "perfkit.bench.summary"):
                importlib.import_module(name)
        except Exception:  # finalize imports them again and reports what fails
            return

    threading.Thread(target=load, name="perfkit-bench-preload", daemon=True).start()


def _close(session: _Session | None) -> None:
    """Stop the collectors (their last rows are kept when the run is recorded) and the bar."""
    if session is None:
        return
    session.progress.close()
    if session.collectors is not None:
        try:
            session.collectors.stop()
            if session.recorded:
                session.collectors.write(session.con)
        except Exception as exc:
            _say(f"live telemetry: {exc}")


def finalize(con: duckdb.DuckDBPyConnection, run_id: str, *, crashed: str | None, signal_name: str | None,
             ended_at: datetime | None = None) -> RunSummary:
    """Summary and final status of a run from its stored rows; stored, checked against the
    contract (also how :mod:`perfkit.bench.merge` finishes a merged run)."""
    from perfkit import store
    from perfkit.bench.queries import load_columns
    from perfkit.bench.summary import decide_status, summary_from_frame
    from perfkit.store import write

    cols = load_columns(con, run_id)
    status, reason = decide_status(cols["ok"], cols["conn_err"], cols["seq"], signal_name is not None,
                                   crashed, cols["errors"])
    ended_at = ended_at or datetime.now(timezone.utc)
    run_row = store.get_run(con, run_id)
    run_row.update(status=status, status_reason=reason)
    summary: dict[str, Any] = jsonsafe.json_safe(summary_from_frame(cols, run_row))
    summary["started_at"] = run_row["started_at"].isoformat() if run_row.get("started_at") else None
    summary["ended_at"] = ended_at.isoformat()
    if signal_name is not None:
        summary["signal"] = signal_name
    checked = validate(summary)
    with store.transaction(con):
        write.finalize_run(con, run_id, status=status, status_reason=reason, ended_at=ended_at,
                           summary=jsonsafe.dumps(checked))
    return checked


def _write_summary_json(path: str | None, summary: RunSummary) -> None:
    if path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(jsonsafe.dumps(summary, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out)


def run(config: BenchConfig, run_id: str | None = None, stop: StopSignals | None = None) -> RunSummary:
    """Run one benchmark and return its summary (also stored and, if asked, written).

    Raises :class:`perfkit.errors.UsageError` on bad input before anything is written,
    and :class:`perfkit.bench.signals.Interrupted` when a signal arrives before the run
    is recorded. ``stop``: signal handling already installed by the caller (the CLI
    installs it first thing); otherwise it is installed here for the run.
    """
    if stop is None:
        with StopSignals() as own:
            return run(config, run_id, own)
    p = plan_run(config, run_id)
    if config.segment is not None or config.clock_ref:
        p.public["clock"] = segments.check_clock(config.clock_ref, config.late_threshold_ms)
    workers = Workers(_jobs(p))
    stop.on_stop(workers.stop)
    session = None
    drained = False
    try:
        workers.start()  # first: the coordinator's slow starts below overlap the workers' own
        session = _open_session(p)
        session.crashed = workers.wait_ready()
        stop.hold()  # from here on a signal stops the run instead of abandoning it
        _record(p, session)
        if session.crashed:
            workers.stop.set()
        workers.release(session.t0_mono)
        _preload_finalize()
        drain = _Drain(p, workers, session)
        drain.start()
        # Collectors start once the run has: their imports (~0.6 s) do not delay its first request.
        session.collectors = _start_collectors(p)
        drain.wait()
        session.con.execute("RESET threads")
        drained = True
    finally:
        workers.close()
        _close(session)
        if session is not None and not drained:
            session.con.close()
    assert session is not None  # drained
    summary = finalize(session.con, p.run_id, crashed=session.crashed, signal_name=stop.name)
    session.con.close()
    _write_summary_json(config.summary_json, summary)
    return summary
