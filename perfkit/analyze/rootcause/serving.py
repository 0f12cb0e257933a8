"""Rules on a serving engine's own state: cold starts (model loads) and KV-cache pressure.

Pure functions over canonical signals (:mod:`perfkit.analyze.vocabulary`), so
they hold on any mapped server. Thresholds:

* cold starts: one model or worker load seen during the run is a finding
  (medium); high when the P99 of the 1-s windows within :data:`COLD_MARGIN_S`
  seconds (plus the load's own duration) before a load's scrape is at least
  :data:`COLD_RATIO` times the P99 of the other windows;
* KV-cache pressure: usage >= :data:`KV_FULL` of the cache while requests wait
  (queue depth > 0) in >= :data:`KV_WAIT_SHARE` of the scrapes, or any
  preemption during the run with usage reaching :data:`KV_FULL` (high when
  sequences were preempted: their work is recomputed).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from perfkit.analyze.rootcause.finding import Finding, chart

COLD_MARGIN_S, COLD_RATIO = 5.0, 2.0
KV_FULL, KV_WAIT_SHARE, KV_MIN_READINGS = 0.90, 0.20, 3


def cold_starts(run_id: str, loads: pd.DataFrame, windows: pd.DataFrame) -> list[Finding]:
    """Model or worker loads during the run, and the latency of the windows around them.

    ``loads``: ``ts_unix_s`` (the scrape that showed the load) and ``load_s``
    (its duration, NaN when the server counts loads only); ``windows``: the
    run's per-window ``start_unix_s``, ``window_s`` and ``p99_ms``.
    """
    if loads.empty:
        return []
    load_s = loads["load_s"].fillna(0.0).clip(lower=0).to_numpy(float)
    ts = loads["ts_unix_s"].to_numpy(float)
    numbers: dict[str, float | int | str] = {"model_loads": len(loads), "load_seconds": float(load_s.sum())}
    w = windows.dropna(subset=["p99_ms"]) if not windows.empty else windows
    near = np.zeros(len(w), bool)
    if not w.empty:
        start = w["start_unix_s"].to_numpy(float)
        for t, d in zip(ts, load_s):
            near |= (start >= t - d - COLD_MARGIN_S) & (start <= t)
    p99_near = float(w.loc[near, "p99_ms"].max()) if near.any() else math.nan
    p99_rest = float(w.loc[~near, "p99_ms"].median()) if (~near).any() else math.nan
    numbers.update(p99_near_loads_ms=p99_near, p99_elsewhere_ms=p99_rest, windows_near_loads=int(near.sum()))
    worse = p99_rest > 0 and p99_near >= COLD_RATIO * p99_rest
    title = f"{len(loads)} model load(s) during the run ({load_s.sum():.1f} s loading)"
    if math.isfinite(p99_near) and math.isfinite(p99_rest):
        title += f"; P99 {p99_near:.0f} ms around them against {p99_rest:.0f} ms elsewhere"
    t0 = float(w["start_unix_s"].iloc[0] - w["window_s"].iloc[0]) if not w.empty else float(ts.min())
    series = {"P99 (ms)": w["p99_ms"].to_numpy()} if not w.empty else {}
    return [Finding("cold_start", title, "high" if worse else "medium", numbers,
                    "Load models before traffic reaches them (warm-up requests, readiness gated on the load, "
                    "a minimum of ready replicas) so no request waits for a load.", [run_id],
                    float(load_s.sum()) + len(loads),
                    chart("timeline", t=(w["window_s"].to_numpy() if not w.empty else np.array([])),
                          series=series, marks=list(ts - t0), ylabel="P99 (ms)",
                          title=f"Model loads (dashed) and latency ({run_id})"))]


def kv_cache_pressure(run_id: str, intervals: pd.DataFrame, server_totals: dict[str, float]) -> list[Finding]:
    """A KV cache full while requests wait, or sequences preempted (vLLM, SGLang...).

    ``intervals`` per scrape: ``ts_unix_s``, ``kv_cache_usage`` (ratio) and,
    where the server has it, ``queue_depth``; ``server_totals["preemptions"]``:
    the sequences preempted during the run.
    """
    if intervals.empty or "kv_cache_usage" not in intervals:
        return []
    d = intervals.dropna(subset=["kv_cache_usage"])
    if len(d) < KV_MIN_READINGS:
        return []
    usage = d["kv_cache_usage"].to_numpy(float)
    waiting = (d["queue_depth"].fillna(0).to_numpy(float) > 0) if "queue_depth" in d else np.zeros(len(d), bool)
    full = usage >= KV_FULL
    full_waiting = float((full & waiting).mean())
    preempted = float(server_totals.get("preemptions", 0.0))
    if not (full_waiting >= KV_WAIT_SHARE or (preempted > 0 and full.any())):
        return []
    numbers = {"max_kv_cache_usage": float(usage.max()), "mean_kv_cache_usage": float(usage.mean()),
               "full_share": float(full.mean()), "full_and_waiting_share": full_waiting,
               "preemptions": preempted, "readings": int(len(d))}
    title = (f"KV cache at >= {KV_FULL:.0%} in {full.mean():.0%} of scrapes"
             + (f", with requests waiting in {full_waiting:.0%}" if full_waiting else "")
             + (f"; {preempted:.0f} sequences preempted" if preempted else ""))
    t = d["ts_unix_s"].to_numpy(float) - float(d["ts_unix_s"].min())
    extra = {"queue depth": d["queue_depth"].to_numpy()} if "queue_depth" in d else None
    return [Finding("kv_cache_pressure", title, "high" if preempted > 0 else "medium", numbers,
                    "The KV cache limits the batch: lower max sequences or context length, raise the GPU "
                    "memory share for the cache, quantize the cache, or add replicas.", [run_id],
                    full_waiting + preempted,
                    chart("timeline", t=t, series={"KV-cache usage": usage}, secondary=extra,
                          ylabel="share of the KV cache in use", title=f"KV-cache usage ({run_id})"))]
