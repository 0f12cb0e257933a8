"""Gather what the root-cause rules look at, from the store (the I/O edge of rootcause).

Request-side numbers come from :mod:`perfkit.store.runs` (aggregated in SQL).
Server-side numbers come from the telemetry that the live collector scraped
from the demo server during the run (sources with ``run_id`` set), under the
demo server's names: ``perfkit_demo_batch_size_{sum,count,bucket}``,
``perfkit_demo_queue_wait_seconds_{sum,count}``,
``perfkit_demo_inference_duration_seconds_{sum,count}``,
``perfkit_demo_request_duration_seconds_{sum,count}``,
``perfkit_demo_batch_rows_total``, ``perfkit_demo_batch_padding_rows_total`` and
the gauges ``perfkit_demo_in_flight_requests``, ``perfkit_demo_queue_depth``.
Counters and histogram parts are turned into per-scrape-interval increases
(a negative step, a restart, is dropped); gauges are averaged per interval.
The demo server's in-flight gauge counts every endpoint, so the scrape that
reads it is always one of them: one request is taken off each reading
(:data:`SCRAPE_SELF_COUNT`).
GPU numbers come from NVML / dcgm-exporter / nvidia-smi series.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from perfkit.store import runs

DEMO = "perfkit_demo_"
_COUNTERS = {
    "batch_sum": DEMO + "batch_size_sum",
    "batch_count": DEMO + "batch_size_count",
    "queue_wait_sum_s": DEMO + "queue_wait_seconds_sum",
    "queue_wait_count": DEMO + "queue_wait_seconds_count",
    "inference_sum_s": DEMO + "inference_duration_seconds_sum",
    "inference_count": DEMO + "inference_duration_seconds_count",
    "server_sum_s": DEMO + "request_duration_seconds_sum",
    "server_count": DEMO + "request_duration_seconds_count",
    "rows": DEMO + "batch_rows_total",
    "padding_rows": DEMO + "batch_padding_rows_total",
}
_GAUGES = {"in_flight": DEMO + "in_flight_requests", "queue_depth": DEMO + "queue_depth"}
SCRAPE_SELF_COUNT = 1.0
NON_WORKLOAD_ENDPOINTS = ("/metrics", "/health", "/demo/config", "unmatched")


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


def run_series(con: duckdb.DuckDBPyConnection, run_id: str, names: list[str] | None = None,
               like: str | None = None) -> pd.DataFrame:
    """Samples of the series that belong to a run (sources.run_id), long form."""
    sql = ("SELECT s.series_id, s.name, s.labels, s.unit, s.type, x.ts_unix_s, x.value "
           "FROM series s JOIN sources src USING (source_id) JOIN samples x USING (series_id) "
           "WHERE src.run_id = ?")
    params: list[Any] = [run_id]
    if names is not None:
        sql += " AND list_contains(?::VARCHAR[], s.name)"
        params.append(list(names))
    if like is not None:
        sql += " AND s.name LIKE ?"
        params.append(like)
    return con.execute(sql + " ORDER BY s.series_id, x.ts_unix_s", params).df()


def _increases(frame: pd.DataFrame) -> pd.DataFrame:
    """Per series, the increase between consecutive scrapes (resets dropped).

    A labelled series born after the first scrape (prometheus_client creates a
    child on its first use) counts from 0 at its first reading.
    """
    frame = frame.sort_values(["series_id", "ts_unix_s"])
    frame["inc"] = frame.groupby("series_id")["value"].diff()
    first = frame["inc"].isna() & (frame["ts_unix_s"] > frame["ts_unix_s"].min())
    frame.loc[first, "inc"] = frame.loc[first, "value"]
    frame = frame[frame["inc"].notna() & (frame["inc"] >= 0)]
    return frame


def server_intervals(long: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-scrape-interval server figures and whole-run increases from demo-server series."""
    if long.empty:
        return pd.DataFrame(), {}
    by_name = {v: k for k, v in _COUNTERS.items()}
    counters = long[long["name"].isin(list(_COUNTERS.values()))].copy()
    # server time of the model endpoints only: the scrape and health checks are not the workload
    endpoint = counters["labels"].map(lambda v: _label(v, "endpoint"))
    counters = counters[~endpoint.isin(NON_WORKLOAD_ENDPOINTS)]
    out = pd.DataFrame()
    totals: dict[str, float] = {}
    if not counters.empty:
        inc = _increases(counters)
        inc["key"] = inc["name"].map(by_name)
        out = inc.pivot_table(index="ts_unix_s", columns="key", values="inc", aggfunc="sum")
        first_last = counters.sort_values("ts_unix_s").groupby(["series_id", "name"])["value"]
        t_first = counters.groupby(["series_id", "name"])["ts_unix_s"].min()
        start = first_last.first().where(t_first <= counters["ts_unix_s"].min(), 0.0)
        run_inc = (first_last.last() - start).clip(lower=0).groupby(level="name").sum()
        totals = {by_name[n]: float(v) for n, v in run_inc.items()}
    gauges = long[long["name"].isin(list(_GAUGES.values()))]
    if not gauges.empty:
        g = gauges.pivot_table(index="ts_unix_s", columns="name", values="value", aggfunc="sum")
        g.columns = [{v: k for k, v in _GAUGES.items()}[c] for c in g.columns]
        if "in_flight" in g:
            g["in_flight"] = (g["in_flight"] - SCRAPE_SELF_COUNT).clip(lower=0)
        out = g if out.empty else out.join(g, how="outer")
        for col in g.columns:
            totals[f"mean_{col}"] = float(g[col].mean())
            totals[f"n_{col}"] = float(g[col].count())
    out = out.sort_index().reset_index()
    if "batch_sum" in out and "batch_count" in out:
        out["mean_batch_size"] = out["batch_sum"] / out["batch_count"].where(out["batch_count"] > 0)
    if "queue_wait_sum_s" in out and "queue_wait_count" in out:
        out["mean_queue_wait_ms"] = 1000 * out["queue_wait_sum_s"] / out["queue_wait_count"].where(
            out["queue_wait_count"] > 0)
    return out, totals


def batch_buckets(long: pd.DataFrame) -> dict[float, float]:
    """Whole-run increase of each ``perfkit_demo_batch_size_bucket{le}``."""
    b = long[long["name"] == DEMO + "batch_size_bucket"]
    if b.empty:
        return {}
    b = b.copy()
    b["le"] = b["labels"].map(lambda s: _le(s))
    fl = b.sort_values("ts_unix_s").groupby("le")["value"]
    return {float(le): float(v) for le, v in (fl.last() - fl.first()).clip(lower=0).items()}


def _label(labels: Any, key: str) -> str | None:
    import json

    d = json.loads(labels) if isinstance(labels, str) else (labels or {})
    v = d.get(key)
    return None if v is None else str(v)


def _le(labels: Any) -> float:
    v = _label(labels, "le") or "nan"
    return math.inf if v in ("+Inf", "Inf", "inf") else float(v)


def load_run(con: duckdb.DuckDBPyConnection, run_id: str, width_s: float = 1.0) -> RunEvidence:
    """Read one run's evidence (SQL aggregates, demo-server intervals)."""
    meta = runs.run_meta(con, run_id)
    rid = meta["run_id"]
    long = run_series(con, rid, like=DEMO + "%")
    server, server_totals = server_intervals(long)
    return RunEvidence(
        run_id=rid, meta=meta, totals=runs.totals(con, rid), breakdown=runs.breakdown(con, rid),
        lag=runs.schedule_lag(con, rid), windows=runs.windows(con, rid, width_s),
        server=server, server_totals=server_totals, batch_buckets=batch_buckets(long),
        telemetry=telemetry_windows(con, rid, width_s))


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


def gpu_frame(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> tuple[pd.DataFrame, str]:
    """Per GPU: utilization, framebuffer and (where present) allocator figures.

    From the run's own NVML/dcgm series when it has them; otherwise from the
    newest recorded GPU export in the store (dcgm, nvidia-smi, nvml). The second
    value says which (``"run"``, ``"export <path>"`` or ``"none"``).
    """
    kinds = ["nvml", "dcgm", "nvidia-smi", "prometheus", "prom-range", "scrape"]
    src_ids: list[int] = []
    where = "none"
    if run_id is not None:
        src_ids = [r[0] for r in con.execute(
            "SELECT source_id FROM sources WHERE run_id = ? AND list_contains(?::VARCHAR[], kind)",
            [run_id, kinds]).fetchall()]
        where = "run" if src_ids else "none"
    frame = _gpu_from_sources(con, src_ids) if src_ids else pd.DataFrame()
    if frame.empty:
        row = con.execute(
            "SELECT source_id, path FROM sources WHERE kind IN ('dcgm', 'nvidia-smi', 'nvml') "
            "ORDER BY ingested_at DESC, source_id DESC LIMIT 1").fetchone()
        if row is None:
            return pd.DataFrame(), "none"
        frame, where = _gpu_from_sources(con, [row[0]]), f"export {row[1]}"
    return frame, where if not frame.empty else "none"


# normalized names the ingest stage writes, and raw exporter names, per quantity
GPU_NAMES = {
    "util_percent": ["gpu_utilization_percent", "DCGM_FI_DEV_GPU_UTIL", "nvml_gpu_utilization_percent"],
    "fb_used_bytes": ["gpu_memory_used_bytes", "DCGM_FI_DEV_FB_USED", "nvml_memory_used_bytes"],
    "fb_free_bytes": ["gpu_memory_free_bytes", "DCGM_FI_DEV_FB_FREE", "nvml_memory_free_bytes"],
    "fb_total_bytes": ["gpu_memory_total_bytes", "DCGM_FI_DEV_FB_TOTAL", "nvml_memory_total_bytes"],
    "torch_reserved_bytes": ["torch_cuda_memory_reserved_bytes"],
    "torch_allocated_bytes": ["torch_cuda_memory_allocated_bytes"],
    "torch_inactive_split_bytes": ["torch_cuda_memory_inactive_split_bytes"],
}
_MIB_NAMES = {"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_TOTAL"}


def _gpu_from_sources(con: duckdb.DuckDBPyConnection, source_ids: list[int]) -> pd.DataFrame:
    import json

    all_names = [n for names in GPU_NAMES.values() for n in names]
    long = con.execute(
        "SELECT s.name, s.labels, s.unit, x.ts_unix_s, x.value FROM series s JOIN samples x USING (series_id) "
        "WHERE list_contains(?::BIGINT[], s.source_id) AND list_contains(?::VARCHAR[], s.name)",
        [source_ids, all_names]).df()
    if long.empty:
        return pd.DataFrame()
    key_of = {n: k for k, names in GPU_NAMES.items() for n in names}
    long["quantity"] = long["name"].map(key_of)

    def gpu_id(labels: Any) -> str:
        d = json.loads(labels) if isinstance(labels, str) else (labels or {})
        return str(d.get("UUID") or d.get("uuid") or d.get("gpu") or d.get("index") or "0")

    def model(labels: Any) -> str:
        d = json.loads(labels) if isinstance(labels, str) else (labels or {})
        return str(d.get("modelName") or d.get("name") or d.get("model") or "")

    long["gpu"] = long["labels"].map(gpu_id)
    long["model"] = long["labels"].map(model)
    mib = long["name"].isin(_MIB_NAMES) & ~long["unit"].fillna("").eq("bytes")
    long.loc[mib, "value"] = long.loc[mib, "value"] * 1024 * 1024
    agg = long.groupby(["gpu", "quantity"])["value"].agg(["mean", "count"]).reset_index()
    wide = agg.pivot(index="gpu", columns="quantity", values="mean")
    wide["samples"] = agg.groupby("gpu")["count"].max()
    wide["model"] = long.groupby("gpu")["model"].agg(lambda s: next((m for m in s if m), ""))
    if {"fb_used_bytes", "fb_free_bytes"} <= set(wide.columns):
        both = wide["fb_used_bytes"] + wide["fb_free_bytes"]
        wide["fb_total_bytes"] = wide["fb_total_bytes"].fillna(both) if "fb_total_bytes" in wide else both
    return wide.reset_index()
