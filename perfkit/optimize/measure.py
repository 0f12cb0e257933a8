"""Serve each variant with ``perfkit serve-demo --model-variant`` and benchmark it with ``perfkit bench``.

All variants' servers are started first and stay up; the benchmark runs then go
round by round, each round over every variant, the order reversed every other
round (ABBA), so that a drift of this shared machine falls on every variant
alike. Each run is labelled ``optimize=<id>,variant=<name>,repeat=<i>``. While a
server lives its RSS is sampled (psutil, every 50 ms) for its peak, and its CPU
time over its runs gives the CPU seconds per request, the basis of the
throughput capacity and the cost per query. The rest of the record (accuracy
counts, file size, timings) is written as JSON next to the database, under
``optimize/<id>.json``, read back by :mod:`perfkit.optimize.results`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from perfkit.jsonsafe import dumps
from perfkit.optimize.data import accuracy, digits_rows, digits_split
from perfkit.optimize.variants import Built, build

#: Light settings for the rest of the demo server, so its memory and CPU are the classifier's.
SERVER_OPTIONS: dict[str, Any] = {"llm_hidden": 8, "llm_max_batch": 1, "batching": "dynamic", "max_batch": 16,
                                  "batch_timeout_ms": 1.0}
#: The load: an open-loop Poisson stream of 32-image requests (2,048 pixel values each).
KERNEL_ROWS = 32
BENCH_OPTIONS = {"pattern": "poisson", "payload": "fixed", "payload_mean": 2048, "protocol": "http-json",
                 "quiet": True}


@dataclass
class VariantRecord:
    """What ``perfkit optimize`` measured of one variant (accuracy as counts: the interval is derived)."""

    name: str
    technique: str
    about: str
    hidden: list[int]
    size_bytes: int
    correct: int
    tested: int
    build_s: float
    kernel_ms: float
    run_ids: list[str] = field(default_factory=list)
    peak_rss_bytes: int = 0
    cpu_s: float = 0.0
    requests: int = 0

    @property
    def cpu_s_per_request(self) -> float:
        return self.cpu_s / self.requests if self.requests else float("nan")


class _RssPeak:
    """Peak resident memory of some processes, sampled on a thread."""

    def __init__(self, pids: dict[str, int], every_s: float = 0.05) -> None:
        import psutil

        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = {name: 0 for name in pids}
        self._stop = threading.Event()
        self._every = every_s
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, proc in self.procs.items():
                try:
                    self.peak[name] = max(self.peak[name], proc.memory_info().rss)
                except Exception:  # the process ended: keep what was seen
                    continue
            self._stop.wait(self._every)

    def __enter__(self) -> "_RssPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def new_id() -> str:
    """A UTC stamp naming one ``perfkit optimize`` run."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def results_dir(db: str | None) -> Path:
    """Where ``perfkit optimize`` writes its records: ``optimize/`` next to the database."""
    from perfkit.paths import db_path

    return db_path(db).parent / "optimize"


def kernel_ms(session: Any, rows: Any, calls: int = 200) -> float:
    """Median milliseconds of one model call on ``rows`` in-process (after 20 warm-up calls)."""
    import statistics

    times = []
    for i in range(calls + 20):
        started = time.perf_counter()
        session.run(None, {session.get_inputs()[0].name: rows})
        if i >= 20:
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def build_and_score(names: Sequence[str]) -> list[tuple[Built, VariantRecord]]:
    """Build every variant and measure its accuracy on the held-out test split, in-process."""
    from perfkit.demo.model import load_variant

    features, labels = digits_rows(digits_split().test)
    out = []
    for name in names:
        started = time.perf_counter()
        built = build(name)
        session = load_variant(name).session
        acc = accuracy(session, features, labels)
        build_s = time.perf_counter() - started
        record = VariantRecord(name, built.spec.technique, built.spec.about, list(built.hidden), built.size_bytes,
                               round(acc.value * acc.n), acc.n, build_s, kernel_ms(session, features[:KERNEL_ROWS]))
        out.append((built, record))
    return out


def benchmark(records: Sequence[VariantRecord], optimize_id: str, *, rate_rps: float, duration_s: float,
              repeats: int, db: str | None, progress: Callable[[str], None] = lambda _msg: None) -> None:
    """Serve every variant and run ``repeats`` interleaved rounds of ``perfkit bench`` against each."""
    import contextlib

    import psutil

    from perfkit.demo.charlm import load_charlm
    from perfkit.demo.launch import DemoServer
    from perfkit.pipeline.bench import run_bench

    load_charlm(int(SERVER_OPTIONS["llm_hidden"]))  # built here, not inside the first server (its RSS)
    with contextlib.ExitStack() as stack:
        servers = {}
        for rec in records:
            progress(f"starting serve-demo --model-variant {rec.name}")
            server = DemoServer(startup_timeout_s=120.0, model_variant=rec.name, **SERVER_OPTIONS)
            servers[rec.name] = stack.enter_context(server)
        with _RssPeak({name: s.pid for name, s in servers.items()}) as rss:
            for repeat in range(repeats):
                order = list(records) if repeat % 2 == 0 else list(reversed(records))
                for rec in order:
                    server = servers[rec.name]
                    cpu = psutil.Process(server.pid).cpu_times()
                    summary = run_bench(server.url, {**BENCH_OPTIONS, "rate": rate_rps, "duration": duration_s},
                                        label=f"optimize={optimize_id},variant={rec.name},repeat={repeat}",
                                        db=db, target_pid=server.pid, timeout_s=duration_s + 120)
                    after = psutil.Process(server.pid).cpu_times()
                    rec.cpu_s += (after.user - cpu.user) + (after.system - cpu.system)
                    rec.requests += int(summary["ok"])
                    rec.run_ids.append(str(summary["run_id"]))
                    progress(f"{rec.name} repeat {repeat}: run {summary['run_id']}")
        for rec in records:
            rec.peak_rss_bytes = rss.peak[rec.name]


def save(records: Sequence[VariantRecord], optimize_id: str, db: str | None, **meta: Any) -> Path:
    """Write the record of one ``perfkit optimize`` run; return its path."""
    import psutil

    folder = results_dir(db)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{optimize_id}.json"
    data = {"optimize_id": optimize_id, "machine_cores": psutil.cpu_count(logical=True), **meta,
            "variants": [asdict(r) for r in records]}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dumps(data), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(db: str | None, optimize_id: str = "") -> dict[str, Any] | None:
    """The record of ``optimize_id`` (default: the latest), or None when there is none."""
    folder = results_dir(db)
    paths = sorted(folder.glob("*.json")) if folder.exists() else []
    if optimize_id:
        paths = [p for p in paths if p.stem == optimize_id]
    if not paths:
        return None
    data: dict[str, Any] = json.loads(paths[-1].read_text(encoding="utf-8"))
    return data


def optimize(names: Sequence[str], *, rate_rps: float = 100.0, duration_s: float = 3.0, repeats: int = 2,
             db: str | None = None, edge_cap_mb: int | None = None, edge_s: float = 1.0,
             progress: Callable[[str], None] = lambda _msg: None) -> Path:
    """Build, score, serve and benchmark ``names``, then (with ``edge_cap_mb``) run the edge profile
    (:mod:`perfkit.optimize.edge`); return the path of the stored record."""
    optimize_id = new_id()
    started = time.perf_counter()
    pairs = build_and_score(names)
    built_s = time.perf_counter() - started
    progress(f"built and scored {len(pairs)} variants in {built_s:.1f} s")
    records = [rec for _built, rec in pairs]
    benchmark(records, optimize_id, rate_rps=rate_rps, duration_s=duration_s, repeats=repeats, db=db,
              progress=progress)
    bench_s = time.perf_counter() - started - built_s
    edge_rows = []
    if edge_cap_mb is not None:
        from perfkit.optimize.edge import profile

        edge_rows = [asdict(r) for r in profile(names, edge_cap_mb, edge_s)]
        progress(f"edge profile under {edge_cap_mb} MB done")
    return save(records, optimize_id, db, rate_rps=rate_rps, duration_s=duration_s, repeats=repeats,
                build_s=built_s, bench_s=bench_s, edge=edge_rows,
                edge_s=time.perf_counter() - started - built_s - bench_s)


def stored_or_measured(db: str | None, optimize_id: str = "", names: Sequence[str] = (), **load_options: Any
                       ) -> dict[str, Any]:
    """The stored record ``optimize_id`` (default: the latest); when there is none, measure ``names`` now
    (``load_options``: ``rate_rps``, ``duration_s``, ``repeats``) and return that record."""
    record = load(db, optimize_id)
    if record is None:
        if optimize_id:
            from perfkit.errors import UsageError

            raise UsageError(f"no perfkit optimize record {optimize_id!r} next to the database")
        record = load(db, optimize(names, db=db, **load_options).stem)
    assert record is not None, "just written"
    return record
