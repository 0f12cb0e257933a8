"""Gather what the root-cause rules look at, from the store (the I/O edge of root cause).

Request-side numbers come from :mod:`perfkit.store.runs` (aggregated in SQL).
Server-side numbers come from the telemetry scraped from the server during the
run (sources with ``run_id`` set), read by canonical signal through
:mod:`perfkit.analyze.vocabulary`: whatever the server (the demo, Triton, vLLM,
TGI, TorchServe, SGLang, MLServer, KServe), its queue time, compute and server
time, executions and inferences, queue depth, requests in flight, KV-cache
usage, preemptions and model loads land in the same columns, in seconds and
ratios. The server kind is detected from the run's series names unless given.
Counters and histogram parts are turned into per-scrape-interval increases
(a negative step, a restart, is dropped); levels are summed over their series
and averaged per interval (a level given as a histogram of observations, such
as MLServer's queue size, is its interval's ``Δsum / Δcount``).
GPU numbers come from NVML / dcgm-exporter / nvidia-smi series and, where a
PyTorch or vLLM server exports them, allocator figures and out-of-memory,
allocator-retry and preemption counters (:func:`gpu_frame`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import duckdb
import numpy as np
import pandas as pd

from perfkit import names
from perfkit.analyze import vocabulary
from perfkit.store import runs


@dataclass
class RunEvidence:
    """Everything the rules need about one run."""

    run_id: str
    meta: dict[str, Any]
    totals: dict[str, Any]
    breakdown: dict[str, Any]
    lag: dict[str, Any]
    windows: pd.DataFrame
    server: pd.DataFrame            # per scrape interval: increases and gauge means (may be empty)
    server_totals: dict[str, float]  # increases over the whole run
    batch_buckets: dict[float, float] = field(default_factory=dict)
    server_kind: str | None = None   # the vocabulary's kind the server series were read as
    server_metrics: dict[str, list[str]] = field(default_factory=dict)  # evidence column -> exposed names
    loads: pd.DataFrame = field(default_factory=pd.DataFrame)  # model loads seen: ts_unix_s, load_s
    telemetry: pd.DataFrame = field(default_factory=pd.DataFrame)  # window_s x series (means)

    @property
    def labels(self) -> dict[str, str]:
        return self.meta.get("labels") or {}

    @property
    def max_batch(self) -> int | None:
        scen = self.meta.get("scenario") or {}
        for key in ("max_batch", "server_max_batch"):
            if isinstance(scen, dict) and scen.get(key):
                return int(scen[key])
        if self.labels.get("max_batch"):
            try:
                return int(self.labels["max_batch"])
            except ValueError:
                return None
        if self.batch_buckets:
            finite = [le for le in self.batch_buckets if math.isfinite(le)]
            return int(max(finite)) if finite else None
        return None


def run_series(con: duckdb.DuckDBPyConnection, run_id: str, metric_names: Sequence[str] | None = None,
               like: str | None = None) -> pd.DataFrame:
    """Samples of the series that belong to a run (sources.run_id), long form."""
    sql = ("SELECT s.series_id, s.name, s.labels, s.unit, s.type, x.ts_unix_s, x.value "
           "FROM series s JOIN sources src USING (source_id) JOIN samples x USING (series_id) "
           "WHERE src.run_id = ?")
    params: list[Any] = [run_id]
    if metric_names is not None:
        sql += " AND list_contains(?::VARCHAR[], s.name)"
        params.append(list(metric_names))
    if like is not None:
        sql += " AND s.name LIKE ?"
        params.append(like)
    return con.execute(sql + " ORDER BY s.series_id, x.ts_unix_s", params).df()


def _increases(frame: pd.DataFrame) -> pd.DataFrame:
    """Per series and column, the increase between consecutive scrapes (resets dropped).

    A labelled series born after the first scrape (prometheus_client creates a
    child on its first use) counts from 0 at its first reading.
    """
    frame = frame.sort_values(["series_id", "key", "ts_unix_s"])
    frame["inc"] = frame.groupby(["series_id", "key"])["value"].diff()
    first = frame["inc"].isna() & (frame["ts_unix_s"] > frame["ts_unix_s"].min())
    frame.loc[first, "inc"] = frame.loc[first, "value"]
    return frame[frame["inc"].notna() & (frame["inc"] >= 0)]


def canonical_long(long: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The samples a server kind's terms accept, one row per (sample, term), in canonical units.

    Adds ``key`` (the evidence column), ``signal`` and ``part``; a series that
    feeds several columns (Triton's request counter) appears once per column.
    """
    by_metric: dict[str, list[vocabulary.Term]] = {}
    for term in vocabulary.terms(kind):
        by_metric.setdefault(term.metric, []).append(term)
    ids = long.groupby("series_id")[["name", "labels"]].first()
    pairs = [(sid, term) for sid, name, labels in ids.itertuples()
             for term in by_metric.get(name, ()) if term.accepts(_labels(labels))]
    if not pairs:
        return long.iloc[0:0].assign(key="", signal="", part="")
    terms = pd.DataFrame({"series_id": [s for s, _ in pairs], "term": [t for _, t in pairs]})
    out = long.merge(terms, on="series_id")
    out["value"] = [term.canonical(v) for term, v in zip(out["term"], out["value"])]
    out["key"] = [term.key for term in out["term"]]
    out["signal"] = [term.signal for term in out["term"]]
    out["part"] = [term.part for term in out["term"]]
    return out.drop(columns="term")


def server_intervals(long: pd.DataFrame, kind: str | None = "demo") -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-scrape-interval server figures and whole-run increases, in canonical columns.

    Amounts (``total``, ``sum``, ``count`` parts) become increases per
    interval and over the run; levels (``gauge`` parts) are summed over their
    series per scrape, floored at 0, and averaged (``mean_<signal>``,
    ``n_<signal>`` readings, ``max_<signal>``).
    """
    if long.empty or kind is None:
        return pd.DataFrame(), {}
    can = canonical_long(long, kind)
    counters = can[can["part"] != vocabulary.GAUGE]
    out = pd.DataFrame()
    totals: dict[str, float] = {}
    if not counters.empty:
        inc = _increases(counters.copy())
        out = inc.pivot_table(index="ts_unix_s", columns="key", values="inc", aggfunc="sum")
        t_min = counters["ts_unix_s"].min()
        per = counters.sort_values("ts_unix_s").groupby(["series_id", "key"])
        start = per["value"].first().where(per["ts_unix_s"].min() <= t_min, 0.0)
        run_inc = (per["value"].last() - start).clip(lower=0).groupby(level="key").sum()
        totals = {str(k): float(v) for k, v in run_inc.items()}
    gauges = can[can["part"] == vocabulary.GAUGE]
    if not gauges.empty:
        g = gauges.pivot_table(index="ts_unix_s", columns="key", values="value", aggfunc="sum").clip(lower=0)
        out = g if out.empty else out.join(g, how="outer")
        for col in g.columns:
            totals[f"mean_{col}"] = float(g[col].mean())
            totals[f"n_{col}"] = float(g[col].count())
            totals[f"max_{col}"] = float(g[col].max())
    out = out.sort_index().reset_index()
    for signal in vocabulary.LEVELS:   # a level observed as a histogram: its mean per observation
        s, c = f"{signal}_sum", f"{signal}_count"
        if s in totals and c in totals and f"mean_{signal}" not in totals and totals[c] > 0:
            out[signal] = out[s] / out[c].where(out[c] > 0)
            totals[f"mean_{signal}"], totals[f"n_{signal}"] = totals[s] / totals[c], totals[c]
    if "inferences" in out and "executions" in out:
        out["mean_batch_size"] = out["inferences"] / out["executions"].where(out["executions"] > 0)
    if "queue_time_sum" in out and "queue_time_count" in out:
        out["mean_queue_wait_ms"] = 1000 * out["queue_time_sum"] / out["queue_time_count"].where(
            out["queue_time_count"] > 0)
    return out, totals


def model_loads(long: pd.DataFrame, kind: str | None) -> pd.DataFrame:
    """Model or worker loads seen during the run: ``ts_unix_s`` and ``load_s`` (NaN when unknown).

    A load counter's increase is that many loads; a load-time gauge
    (TorchServe's ``WorkerLoadTime``, SGLang's ``engine_load_weights_time``)
    shows a load when its series appears after the run's first scrape or its
    value changes.
    """
    empty = pd.DataFrame({"ts_unix_s": pd.Series(dtype=float), "load_s": pd.Series(dtype=float)})
    if long.empty or kind is None:
        return empty
    can = canonical_long(long, kind)
    can = can[can["signal"].isin([names.SIGNAL_MODEL_LOADS, names.SIGNAL_MODEL_LOAD_TIME])]
    if can.empty:
        return empty
    t_min = long["ts_unix_s"].min()
    can = can.sort_values(["series_id", "ts_unix_s"])
    step = can.groupby("series_id")["value"].diff()
    born = step.isna() & (can["ts_unix_s"] > t_min)
    timed = can["signal"] == names.SIGNAL_MODEL_LOAD_TIME
    seen = timed & (born | (step.fillna(0) != 0))
    counted = ~timed & (step.fillna(0) > 0)
    rows = [(ts, v) for ts, v in can.loc[seen, ["ts_unix_s", "value"]].itertuples(index=False)]
    rows += [(ts, math.nan) for ts, k in zip(can.loc[counted, "ts_unix_s"], step[counted]) for _ in range(int(k))]
    return pd.DataFrame(rows, columns=["ts_unix_s", "load_s"]).sort_values("ts_unix_s", ignore_index=True) \
        if rows else empty


def server_metrics(long: pd.DataFrame, kind: str | None) -> dict[str, list[str]]:
    """Per evidence column, the exposed names that fed it (for findings to cite)."""
    if long.empty or kind is None:
        return {}
    can = canonical_long(long, kind)
    return {str(k): sorted(set(g)) for k, g in can.groupby("key")["name"]}


def run_server_kind(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The vocabulary's server kind that the run's series names match (None: none)."""
    found = con.execute("SELECT DISTINCT s.name FROM series s JOIN sources src USING (source_id) "
                        "WHERE src.run_id = ?", [run_id]).fetchall()
    return vocabulary.detect(r[0] for r in found)


def batch_buckets(long: pd.DataFrame) -> dict[float, float]:
    """Whole-run increase of each ``perfkit_demo_batch_size_bucket{le}``."""
    b = long[long["name"] == names.DEMO_BATCH_SIZE + "_bucket"]
    if b.empty:
        return {}
    b = b.copy()
    b["le"] = b["labels"].map(lambda s: _le(s))
    fl = b.sort_values("ts_unix_s").groupby("le")["value"]
    return {float(le): float(v) for le, v in (fl.last() - fl.first()).clip(lower=0).items()}


def _labels(labels: Any) -> dict[str, str]:
    return json.loads(labels) if isinstance(labels, str) else dict(labels or {})


def _label(labels: Any, key: str) -> str | None:
    v = _labels(labels).get(key)
    return None if v is None else str(v)


def _le(labels: Any) -> float:
    v = _label(labels, "le") or "nan"
    return math.inf if v in ("+Inf", "Inf", "inf") else float(v)


def load_run(con: duckdb.DuckDBPyConnection, run_id: str, width_s: float = 1.0,
             server_kind: str | None = None) -> RunEvidence:
    """Read one run's evidence (SQL aggregates, the server's series by canonical signal).

    ``server_kind`` names the vocabulary's kind to read the server's series as
    (None: detected from the run's series names).
    """
    meta = runs.run_meta(con, run_id)
    rid = meta["run_id"]
    kind = server_kind or run_server_kind(con, rid)
    wanted = [*vocabulary.metric_names(kind), names.DEMO_BATCH_SIZE + "_bucket"] if kind else []
    long = run_series(con, rid, metric_names=wanted)
    server, server_totals = server_intervals(long, kind)
    return RunEvidence(
        run_id=rid, meta=meta, totals=runs.totals(con, rid), breakdown=runs.breakdown(con, rid),
        lag=runs.schedule_lag(con, rid), windows=runs.windows(con, rid, width_s),
        server=server, server_totals=server_totals, batch_buckets=batch_buckets(long),
        telemetry=telemetry_windows(con, rid, width_s), server_kind=kind,
        server_metrics=server_metrics(long, kind), loads=model_loads(long, kind))


def telemetry_windows(con: duckdb.DuckDBPyConnection, run_id: str, width_s: float = 1.0) -> pd.DataFrame:
    """Every gauge-like series of the run, averaged per window of the run's timeline (wide frame).

    Counters (``_total``, ``_count``, ``_sum``, ``_bucket``) are turned into
    rates per second first so that they can be correlated with latency too.
    """
    long = con.execute(
        """
        WITH t0 AS (SELECT min(intended_unix_s) AS t0, max(done_unix_s) AS t1
                    FROM requests WHERE run_id = ?)
        SELECT s.series_id, s.name, s.labels, s.type, x.ts_unix_s, x.value, t0.t0
        FROM series s JOIN sources src USING (source_id) JOIN samples x USING (series_id), t0
        WHERE src.run_id = ? AND x.ts_unix_s BETWEEN t0.t0 AND t0.t1
              AND NOT s.name LIKE '%_bucket' AND NOT s.name LIKE '%_created'
        ORDER BY s.series_id, x.ts_unix_s
        """, [run_id, run_id]).df()
    if long.empty:
        return pd.DataFrame()
    long["label_key"] = long["labels"].fillna("{}").astype(str)
    ids = long.groupby("series_id")[["name", "label_key"]].first()
    # a readable column name: the metric plus its labels when several series share it
    dup = ids["name"].duplicated(keep=False)
    ids["column"] = np.where(dup, ids["name"] + ids["label_key"], ids["name"])
    long["column"] = long["series_id"].map(ids["column"])
    is_counter = long["type"].isin(["counter"]) | long["name"].str.endswith(("_total", "_count", "_sum"))
    long = long.sort_values(["series_id", "ts_unix_s"])
    dv = long.groupby("series_id")["value"].diff()
    dt = long.groupby("series_id")["ts_unix_s"].diff()
    rate = (dv / dt).where(dv >= 0)
    long["v"] = np.where(is_counter, rate, long["value"])
    long["window_s"] = np.floor((long["ts_unix_s"] - long["t0"]) / width_s) * width_s
    wide = long.pivot_table(index="window_s", columns="column", values="v", aggfunc="mean")
    return wide.dropna(axis=1, how="all")


# the run's own sources, and unattached exports inside its window, of these kinds may hold GPU series
GPU_KINDS = ("nvml", "dcgm", "nvidia-smi", "prometheus", "prom-range", "scrape")
# per quantity: the normalized name the ingest stage writes, then raw exporter names (a scrape keeps them)
GPU_NAMES = {
    "util_percent": [names.GPU_UTILIZATION, "DCGM_FI_DEV_GPU_UTIL", "nvml_gpu_utilization_percent"],
    "fb_used_bytes": [names.GPU_MEMORY_USED, "DCGM_FI_DEV_FB_USED", "nvml_memory_used_bytes"],
    "fb_free_bytes": [names.GPU_MEMORY_FREE, "DCGM_FI_DEV_FB_FREE", "nvml_memory_free_bytes"],
    "fb_total_bytes": [names.GPU_MEMORY_TOTAL, "DCGM_FI_DEV_FB_TOTAL", "nvml_memory_total_bytes"],
    "torch_reserved_bytes": ["torch_cuda_memory_reserved_bytes"],
    "torch_allocated_bytes": ["torch_cuda_memory_allocated_bytes"],
    "torch_inactive_split_bytes": ["torch_cuda_memory_inactive_split_bytes"],
    "torch_peak_allocated_bytes": ["torch_cuda_max_memory_allocated_bytes"],
}
# counters whose increase over the run is evidence of memory pressure (torch.cuda.memory_stats, vLLM)
GPU_COUNTERS = {
    "ooms": ["torch_cuda_memory_num_ooms_total", "torch_cuda_memory_num_ooms"],
    "alloc_retries": ["torch_cuda_memory_num_alloc_retries_total", "torch_cuda_memory_num_alloc_retries"],
    "preemptions": ["vllm:num_preemptions_total", "vllm_num_preemptions_total"],
}
_MIB_NAMES = {"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_TOTAL"}
_PEAKS = {"torch_peak_allocated_bytes"}


def gpu_frame(con: duckdb.DuckDBPyConnection, run_id: str | None = None,
              source_ids: Sequence[int] = ()) -> tuple[pd.DataFrame, str]:
    """Per GPU: utilization, framebuffer and (where present) allocator figures and pressure counters.

    From the sources named in ``source_ids`` when given (all their samples);
    else from the run's own sources (recorded with it, or ingested with
    ``--run``); else from GPU exports attached to no run whose samples fall
    inside the run's time window (only those samples count). An export from
    another time is never used, however recent. The second value says where
    the figures come from (``"run"``, ``"export <paths>"``, ``"source <ids>"``
    or ``"none"``).
    """
    if source_ids:
        ids = [int(i) for i in source_ids]
        frame = _gpu_from_sources(con, ids)
        return frame, ("source " + ", ".join(map(str, ids))) if not frame.empty else "none"
    if run_id is None:
        return pd.DataFrame(), "none"
    own = [r[0] for r in con.execute(
        "SELECT source_id FROM sources WHERE run_id = ? AND list_contains(?::VARCHAR[], kind)",
        [run_id, list(GPU_KINDS)]).fetchall()]
    frame = _gpu_from_sources(con, own) if own else pd.DataFrame()
    if not frame.empty:
        return frame, "run"
    try:
        _, start, end = runs.run_window(con, run_id)
    except ValueError:
        return pd.DataFrame(), "none"
    inside = con.execute(
        "SELECT src.source_id, any_value(src.path) FROM sources src JOIN series s USING (source_id) "
        "JOIN samples x USING (series_id) WHERE src.run_id IS NULL AND list_contains(?::VARCHAR[], src.kind) "
        "AND list_contains(?::VARCHAR[], s.name) AND x.ts_unix_s BETWEEN ? AND ? "
        "GROUP BY src.source_id ORDER BY src.source_id",
        [list(GPU_KINDS), _all_gpu_names(), start, end]).fetchall()
    if not inside:
        return pd.DataFrame(), "none"
    frame = _gpu_from_sources(con, [r[0] for r in inside], start, end)
    return frame, ("export " + ", ".join(str(r[1]) for r in inside)) if not frame.empty else "none"


def _all_gpu_names() -> list[str]:
    return [n for group in (GPU_NAMES, GPU_COUNTERS) for ns in group.values() for n in ns]


def _gpu_from_sources(con: duckdb.DuckDBPyConnection, source_ids: list[int],
                      start: float | None = None, end: float | None = None) -> pd.DataFrame:
    long = con.execute(
        "SELECT s.series_id, s.name, s.labels, s.unit, x.ts_unix_s, x.value "
        "FROM series s JOIN samples x USING (series_id) "
        "WHERE list_contains(?::BIGINT[], s.source_id) AND list_contains(?::VARCHAR[], s.name) "
        "AND x.ts_unix_s BETWEEN coalesce(?, -'infinity'::DOUBLE) AND coalesce(?, 'infinity'::DOUBLE)",
        [source_ids, _all_gpu_names(), start, end]).df()
    return gpu_figures(long)


def _gpu_id(labels: Any) -> str:
    """The GPU a series describes; "" for a process-wide one (a PyTorch or vLLM server's own metrics)."""
    d = json.loads(labels) if isinstance(labels, str) else (labels or {})
    return str(d.get("UUID") or d.get("uuid") or d.get("gpu") or d.get("index") or "")


def _gpu_model(labels: Any) -> str:
    d = json.loads(labels) if isinstance(labels, str) else (labels or {})
    return str(d.get("modelName") or d.get("name") or d.get("model") or "")


def _counter_increase(values: pd.Series) -> float:
    """Increase of a counter over its samples; after a reset the new value counts from 0."""
    v = values.to_numpy(float)
    if v.size < 2:
        return 0.0
    steps = np.diff(v)
    return float(np.where(steps >= 0, steps, v[1:]).sum())


def gpu_figures(long: pd.DataFrame) -> pd.DataFrame:
    """One row per GPU from long samples (``series_id, name, labels, unit, ts_unix_s, value``).

    Gauges are averaged, the allocator's peak is its maximum, and the pressure
    counters (:data:`GPU_COUNTERS`) become their increase, summed over series.
    Framebuffer figures that dcgm-exporter gives in MiB become bytes. Figures
    without a GPU label (a server's allocator and counters) fill in every GPU
    that lacks its own.
    """
    if long.empty:
        return pd.DataFrame()
    key_of = {n: k for group in (GPU_NAMES, GPU_COUNTERS) for k, ns in group.items() for n in ns}
    long = long.assign(quantity=long["name"].map(key_of), gpu=long["labels"].map(_gpu_id),
                       model=long["labels"].map(_gpu_model))
    mib = long["name"].isin(_MIB_NAMES) & ~long["unit"].fillna("").eq("bytes")
    long.loc[mib, "value"] = long.loc[mib, "value"] * 1024 * 1024
    counters = long["quantity"].isin(list(GPU_COUNTERS))
    gauges = long[~counters]
    agg = gauges.groupby(["gpu", "quantity"])["value"].agg(["mean", "max", "count"]).reset_index()
    agg["value"] = np.where(agg["quantity"].isin(list(_PEAKS)), agg["max"], agg["mean"])
    wide = agg.pivot(index="gpu", columns="quantity", values="value")
    wide["samples"] = agg.groupby("gpu")["count"].max()
    if counters.any():
        inc = (long[counters].sort_values("ts_unix_s").groupby(["gpu", "quantity", "series_id"])["value"]
               .agg(_counter_increase).groupby(level=["gpu", "quantity"]).sum().unstack("quantity"))
        wide = wide.join(inc, how="outer")
    wide["model"] = long.groupby("gpu")["model"].agg(lambda s: next((m for m in s if m), ""))
    if {"fb_used_bytes", "fb_free_bytes"} <= set(wide.columns):
        both = wide["fb_used_bytes"] + wide["fb_free_bytes"]
        wide["fb_total_bytes"] = wide["fb_total_bytes"].fillna(both) if "fb_total_bytes" in wide else both
    wide.columns.name = None
    if "" in wide.index:
        shared, rest = wide.loc[""], wide.drop(index="")
        wide = wide.rename(index={"": "0"}) if rest.empty else rest.fillna(
            {c: shared[c] for c in wide.columns if c not in ("model", "samples") and pd.notna(shared[c])})
    return wide.rename_axis("gpu").reset_index()
