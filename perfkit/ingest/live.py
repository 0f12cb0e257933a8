"""Telemetry collected while ``perfkit bench`` runs: NVML, host/process, target /metrics.

Usage (the bench engine)::

    live = LiveCollectors(run_id, target_url, target_pid=None, headers=None, metrics_urls=None)
    live.start()                 # background threads begin sampling
    ...  live.write(con)  ...    # any time: store what was gathered since the last call
    live.stop(); live.write(con) # the last of it

Each collector that cannot work here (target without /metrics, process gone)
says so in ONE line on stderr and the run goes on without it; no GPU or driver
(NVML absent, as on every CPU-only machine) is normal and only logged at debug
level (logger ``perfkit.ingest.live``).

``target_url`` is the REAL target URL, credentials included, and ``headers``
the real request headers for its ``/metrics`` (e.g. the run's
``Authorization``): both stay in this object's memory and go on the wire only.
``metrics_urls`` (real URLs too) are scraped instead of ``<target>/metrics``
when given (servers such as Triton, MLServer or KServe serve metrics on their
own port; to scrape the target as well, list its ``/metrics`` among them):
each sends its own user-info as Basic auth, or, without user-info, the run's
``headers``. Everything stored (``sources.path``) or printed names a URL by
its redacted form (:func:`perfkit.redact.redact_url`).
Rows land as ``sources`` (kind ``nvml`` | ``host`` | ``scrape``, one per
collector per run, one per scraped URL, ``run_id`` set), ``series`` (created
once, reused by later writes) and ``samples``; ``sources.row_count`` grows
with every write.
"""
from __future__ import annotations

import abc
import logging
import sys
import threading
import time
import urllib.error
from typing import Callable, Mapping, Sequence

import duckdb
import numpy as np
import polars as pl

from perfkit.ingest import promtext, scrape
from perfkit.ingest.frames import labels_json
from perfkit.redact import redact_text, redact_url, split_userinfo
from perfkit.store import write

_LONG_SCHEMA = pl.Schema({"collector": pl.String, "name": pl.String, "labels": pl.String,
                          "unit": pl.String, "type": pl.String, "ts_unix_s": pl.Float64,
                          "value": pl.Float64})


log = logging.getLogger(__name__)


def _say(message: str) -> None:
    print(f"perfkit: {message}", file=sys.stderr, flush=True)


class _Collector(abc.ABC):
    """A background thread calling ``sample()`` every ``interval_s`` seconds.

    ``kind`` is its sources' kind; ``key`` names this collector among the run's
    (several scrapes share a kind) and ``path`` is what its source row shows.
    """

    def __init__(self, kind: str, interval_s: float, sink: Callable[[pl.DataFrame], None],
                 key: str | None = None, path: str | None = None):
        self.kind = kind
        self.key = key or kind
        self.path = path or kind
        self.interval_s = max(0.05, float(interval_s))
        self._sink = sink
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> bool:
        """Prepare; False (after one line on stderr) when unavailable here."""
        return True

    @abc.abstractmethod
    def sample(self) -> None:
        """Take one reading and hand it to ``emit``/the sink."""

    def close(self) -> None:
        return None

    def emit(self, rows: list[tuple]) -> None:
        if not rows:
            return
        frame = pl.DataFrame(
            [(self.key, name, labels_json(labels), unit, typ, ts, value)
             for name, labels, unit, typ, ts, value in rows],
            schema=_LONG_SCHEMA, orient="row")
        self._sink(frame)

    def _loop(self) -> None:
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    self.sample()
                except Exception as exc:  # a collector must never take the run down
                    _say(f"{self.path} collector stopped: {type(exc).__name__}: {redact_text(str(exc))}")
                    return
                next_at += self.interval_s
                delay = next_at - time.monotonic()
                if delay < 0:  # fell behind: skip missed ticks instead of bursting
                    next_at = time.monotonic()
                    delay = 0
                self._stop.wait(delay)
        finally:
            self.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"perfkit-{self.key}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


class _NvmlCollector(_Collector):
    def open(self) -> bool:
        from perfkit.ingest import nvml

        self._nvml = nvml
        try:
            self._reader = nvml.NvmlReader()
        except nvml.NvmlUnavailable as exc:
            log.debug("no GPU telemetry for this run: NVML unavailable (%s)", exc)
            return False
        return True

    def sample(self) -> None:
        ts = time.time()
        rows = []
        for ident, raw in self._reader.read():
            rows += self._nvml.convert(ident, raw, ts)
        self.emit(rows)

    def close(self) -> None:
        self._reader.close()


class _HostCollector(_Collector):
    def __init__(self, interval_s: float, sink: Callable[[pl.DataFrame], None], target_pid: int | None):
        super().__init__("host", interval_s, sink,
                         path=f"psutil (pid {target_pid})" if target_pid is not None else "psutil")
        self._pid = target_pid

    def open(self) -> bool:
        from perfkit.ingest.hostmetrics import HostReader

        self._reader = HostReader(self._pid)
        self._told = False
        if self._reader.process_error:
            _say(f"no process telemetry: {self._reader.process_error}")
            self._told = True
        return True

    def sample(self) -> None:
        rows = self._reader.read(time.time())
        if self._reader.process_error and not self._told:
            _say(f"no more process telemetry: {self._reader.process_error}")
            self._told = True
        self.emit(rows)


class _ScrapeCollector(_Collector):
    """GETs one metrics URL with the real URL and headers; shows only its redacted form."""

    def __init__(self, interval_s: float, sink: Callable[[pl.DataFrame], None], url: str,
                 headers: Mapping[str, str] | None, key: str):
        self._url = url
        self._headers = dict(headers or {})
        self.shown = redact_url(url)
        super().__init__("scrape", interval_s, sink, key=key, path=self.shown)
        self._told = False

    def sample(self) -> None:
        try:
            text = scrape.fetch(self._url, timeout_s=max(1.0, self.interval_s),
                                headers=self._headers)
            ts = time.time()
            expo = promtext.parse(text, self.shown)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if not self._told:
                reason = getattr(exc, "reason", None) or getattr(exc, "problem", None) or exc
                if isinstance(exc, urllib.error.HTTPError):
                    reason = f"HTTP {exc.code}"
                _say(f"cannot scrape {self.shown} ({redact_text(str(reason))}); the run goes on "
                     "without target metrics (will keep trying quietly)")
                self._told = True
            return
        meta = expo.series_meta()
        frame = (
            expo.samples.join(meta, on="name", how="left")
            .select(
                collector=pl.lit(self.key),
                name="name", labels="labels", unit="unit", type="type",
                ts_unix_s=pl.col("ts_unix_s").fill_null(ts), value="value",
            )
        )
        self._sink(frame.cast(_LONG_SCHEMA))


def scrape_plan(target_url: str | None, headers: Mapping[str, str] | None,
                metrics_urls: Sequence[str] | None) -> list[tuple[str, dict[str, str]]]:
    """The real URLs to scrape and the headers each sends (in memory only).

    Given ``metrics_urls``: each of them, with the run's ``headers`` when it has
    no user-info of its own (its user-info becomes its Basic auth on the wire,
    :func:`perfkit.ingest.scrape.fetch`); else the target's ``/metrics`` with
    the run's ``headers``; else nothing.
    """
    if metrics_urls:
        return [(url, {} if split_userinfo(url)[1] else dict(headers or {})) for url in metrics_urls]
    return [(scrape.metrics_url(target_url), dict(headers or {}))] if target_url else []


class LiveCollectors:
    """Background telemetry for one run; ``write(con)`` stores what was gathered so far.

    ``target_url``: the real URL of the target (its ``/metrics`` is scraped; None:
    no scrape), credentials included, as the load generator sends them;
    ``headers``: real headers for the scrape (an ``Authorization`` among them wins
    over the URL's user-info); ``metrics_urls``: real URLs scraped instead of the
    target's ``/metrics`` (see :func:`scrape_plan`). None of them is stored or printed.
    """

    def __init__(self, run_id: str, target_url: str | None, target_pid: int | None = None, *,
                 headers: Mapping[str, str] | None = None, metrics_urls: Sequence[str] | None = None,
                 nvml_interval_s: float = 1.0, host_interval_s: float = 1.0,
                 scrape_interval_s: float = 2.0) -> None:
        self.run_id = run_id
        self.target_pid = target_pid
        plan = scrape_plan(target_url, headers, metrics_urls)
        #: the scraped URLs as stored in ``sources.path`` and printed (redacted)
        self.scrapes_shown = [redact_url(url) for url, _ in plan]
        self._lock = threading.Lock()
        self._pending: list[pl.DataFrame] = []
        self._sources: dict[str, int] = {}
        self._series: dict[str, dict[tuple[str, str], int]] = {}
        self._collectors: list[_Collector] = [
            _NvmlCollector("nvml", nvml_interval_s, self._add),
            _HostCollector(host_interval_s, self._add, target_pid),
        ]
        self._collectors += [_ScrapeCollector(scrape_interval_s, self._add, url, sent, key=f"scrape {i}")
                             for i, (url, sent) in enumerate(plan)]
        self._paths = {c.key: c.path for c in self._collectors}
        self._kinds = {c.key: c.kind for c in self._collectors}
        self._running: list[_Collector] = []

    def _add(self, frame: pl.DataFrame) -> None:
        with self._lock:
            self._pending.append(frame)

    def start(self) -> None:
        """Open every collector (one stderr line for each unavailable one) and start its thread."""
        for collector in self._collectors:
            try:
                ok = collector.open()
            except Exception as exc:
                _say(f"{collector.kind} telemetry unavailable: {type(exc).__name__}: {exc}")
                ok = False
            if ok:
                collector.start()
                self._running.append(collector)

    def stop(self) -> None:
        """Stop sampling (each thread takes a last reading no later than now)."""
        for collector in self._running:
            collector.stop()
        self._running = []

    def pending_samples(self) -> int:
        with self._lock:
            return sum(f.height for f in self._pending)

    def write(self, con: duckdb.DuckDBPyConnection) -> int:
        """Store everything gathered since the last call; return the number of samples written.

        Runs in its own transaction unless the caller already holds one. On failure the
        gathered rows are kept for the next call.
        """
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        long = pl.concat(batch, how="vertical_relaxed")
        own_txn = True
        try:
            con.execute("BEGIN TRANSACTION")
        except duckdb.TransactionException:
            own_txn = False
        new_sources: dict[str, int] = {}
        new_series: dict[str, dict[tuple[str, str], int]] = {}
        try:
            written = 0
            for key in long.get_column("collector").unique(maintain_order=True).to_list():
                part = long.filter(pl.col("collector") == key)
                written += self._write_collector(con, key, part, new_sources, new_series)
            if own_txn:
                con.execute("COMMIT")
        except BaseException:
            if own_txn:
                con.execute("ROLLBACK")
            with self._lock:
                self._pending[:0] = batch
            raise
        self._sources.update(new_sources)
        for key, mapping in new_series.items():
            self._series.setdefault(key, {}).update(mapping)
        return written

    def _write_collector(self, con: duckdb.DuckDBPyConnection, key: str, part: pl.DataFrame,
                         new_sources: dict[str, int],
                         new_series: dict[str, dict[tuple[str, str], int]]) -> int:
        """Write one collector's rows: its source once, series once, samples every time."""
        source_id = self._sources.get(key)
        if source_id is None:
            source_id = write.new_source(con, kind=self._kinds[key], path=self._paths[key], sha256=None,
                                         run_id=self.run_id, label=None, row_count=0)
            new_sources[key] = source_id
        known = dict(self._series.get(key, {}))
        distinct = part.select("name", "labels", "unit", "type").unique(
            subset=["name", "labels"], keep="first", maintain_order=True)
        fresh = [row for row in distinct.iter_rows() if (row[0], row[1]) not in known]
        if fresh:
            fresh_df = pl.DataFrame(fresh, schema={"name": pl.String, "labels": pl.String,
                                                   "unit": pl.String, "type": pl.String},
                                    orient="row").with_row_index("key").with_columns(
                                        pl.col("key").cast(pl.Int64))
            ids = write.insert_series(con, source_id, fresh_df)
            added = {(r[0], r[1]): int(i) for r, i in zip(fresh, ids)}
            known.update(added)
            new_series.setdefault(key, {}).update(added)
        # samples keyed 0..n-1 over the known series, as the writer takes them
        series_ids = np.fromiter(known.values(), dtype=np.int64, count=len(known))
        keys = pl.DataFrame(
            {"name": [k[0] for k in known], "labels": [k[1] for k in known],
             "key": np.arange(len(known), dtype=np.int64)},
            schema={"name": pl.String, "labels": pl.String, "key": pl.Int64})
        samples = part.join(keys, on=["name", "labels"], how="left").select(
            "key", "ts_unix_s", "value")
        written = write.insert_samples(con, series_ids, samples)
        write.add_source_rows(con, source_id, written)
        return written
