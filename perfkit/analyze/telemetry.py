"""Telemetry queries for notebooks: series frames, Prometheus-exact rate and
histogram_quantile, and alignment of telemetry with a run's latency.

* :func:`histogram_quantile` follows Prometheus' ``bucketQuantile``
  (promql/quantile.go) exactly; :func:`histogram_quantile_frame` applies it per
  timestamp (and group) to ingested ``*_bucket`` series, optionally after
  :func:`rate`.
* :func:`rate` / :func:`increase` follow Prometheus' ``extrapolatedRate``
  (promql/functions.go, 3.x range semantics: samples in ``(t - window, t]``):
  counter resets add the pre-reset value, the result is extrapolated towards
  the window edges when the first/last sample lies within 1.1 average sample
  intervals of them (else by half an interval), and never below the counter's
  zero point. Fewer than two samples in a window give no value (NaN).
* :func:`series_frame` and :func:`align_to_run` return pandas frames
  (``polars=True`` gives polars where that is cheap).
"""
from __future__ import annotations

import json
import math
from typing import Iterable, Sequence

import duckdb
import numpy as np
import pandas as pd

from perfkit.store.runs import run_window

# --------------------------------------------------------------------------- quantiles


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]] | dict) -> float:
    """φ-quantile from cumulative ``(upper_bound, count)`` buckets, as Prometheus computes it.

    q<0 -> -Inf, q>1 -> +Inf, NaN -> NaN; buckets sorted by bound; highest bound
    not +Inf -> NaN; equal bounds merged (counts added); counts that differ from
    the previous by a relative 1e-12 or less are made equal, then any decrease
    is forced upward; fewer than 2 buckets or 0 observations -> NaN; a rank in
    the +Inf bucket -> the second-highest bound; in the first bucket the lower
    edge is 0 if its bound is > 0 (else the bound itself is returned); linear
    interpolation otherwise.
    """
    if isinstance(buckets, dict):
        items = [(float(k), float(v)) for k, v in buckets.items()]
    else:
        items = [(float(le), float(c)) for le, c in buckets]
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not items:
        return math.nan
    items.sort(key=lambda b: b[0])
    if not math.isinf(items[-1][0]) or items[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for le, c in items:  # coalesceBuckets
        if merged and merged[-1][0] == le:
            merged[-1][1] += c
        else:
            merged.append([le, c])
    prev = merged[0][1]  # correctPrecisionErrors(tolerance 1e-12)
    for b in merged[1:]:
        delta = abs(b[1] - prev)
        if delta == 0:
            continue
        if delta / b[1] <= 1e-12:
            b[1] = prev
        else:
            prev = b[1]
    top = merged[0][1]  # ensureMonotonic
    for b in merged[1:]:
        if b[1] > top:
            top = b[1]
        elif b[1] < top:
            b[1] = top
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)


def quantile(q: float, values: Sequence[float]) -> float:
    """PromQL's ``quantile()`` aggregation over plain values (rank q·(n−1), type 7)."""
    if len(values) == 0 or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    v = np.sort(np.asarray(values, dtype=float))
    rank = q * (len(v) - 1)
    lo = max(0, math.floor(rank))
    hi = min(len(v) - 1, lo + 1)
    w = rank - math.floor(rank)
    return float(v[lo] * (1 - w) + v[hi] * w)


def histogram_quantile_frame(q: float, buckets: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Apply :func:`histogram_quantile` per timestamp (and ``by`` groups).

    ``buckets`` has columns ``ts_unix_s``, ``le`` (text or number) and ``value``
    (bucket counts, or their rates), plus the ``by`` columns. Buckets of the same
    ``le`` within a group and timestamp are summed first, like ``sum by (le)``.
    Returns ``ts_unix_s``, the ``by`` columns, ``value`` (the quantile) and
    ``observations`` (the +Inf bucket's count: the n behind the estimate).
    """
    cols = ["ts_unix_s", *by]
    if buckets.empty:
        return pd.DataFrame(columns=[*cols, "value", "observations"])
    frame = buckets.assign(le=pd.to_numeric(buckets["le"].replace({"+Inf": "inf", "-Inf": "-inf"})))
    summed = frame.groupby([*cols, "le"], dropna=False, sort=False)["value"].sum().reset_index()
    rows = []
    for key, grp in summed.groupby(cols, sort=True, dropna=False):
        pairs = list(zip(grp["le"].to_numpy(), grp["value"].to_numpy()))
        inf = [c for le, c in pairs if math.isinf(le) and le > 0]
        key = key if isinstance(key, tuple) else (key,)
        rows.append((*key, histogram_quantile(q, pairs), float(inf[0]) if inf else math.nan))
    return pd.DataFrame(rows, columns=[*cols, "value", "observations"])


# --------------------------------------------------------------------------- rate


def _extrapolated(ts: np.ndarray, values: np.ndarray, at: np.ndarray, window_s: float,
                  is_rate: bool) -> np.ndarray:
    ts = np.asarray(ts, dtype=float)
    values = np.asarray(values, dtype=float)
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    at = np.asarray(at, dtype=float)
    out = np.full(at.shape, np.nan)
    if len(ts) < 2:
        return out
    drops = np.zeros_like(values)
    drops[1:] = np.where(values[1:] < values[:-1], values[:-1], 0.0)
    adjusted = values + np.cumsum(drops)  # reset-corrected counter
    lo = np.searchsorted(ts, at - window_s, side="right")  # (t - window, t]
    hi = np.searchsorted(ts, at, side="right") - 1
    ok = (hi - lo) >= 1
    if not ok.any():
        return out
    lo, hi, t = lo[ok], hi[ok], at[ok]
    result = adjusted[hi] - adjusted[lo]
    first_t, last_t = ts[lo], ts[hi]
    sampled = last_t - first_t
    avg = sampled / (hi - lo)
    to_start = first_t - (t - window_s)
    to_end = t - last_t
    threshold = avg * 1.1
    to_start = np.where(to_start >= threshold, avg / 2, to_start)
    first_v = values[lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = np.where((result > 0) & (first_v >= 0), sampled * (first_v / result), np.inf)
    to_start = np.minimum(to_start, to_zero)
    to_end = np.where(to_end >= threshold, avg / 2, to_end)
    factor = (sampled + to_start + to_end) / sampled
    if is_rate:
        factor = factor / window_s
    out[ok] = result * factor
    return out


def rate(ts: Sequence[float], values: Sequence[float], at: Sequence[float], window_s: float) -> np.ndarray:
    """Per-second rate of a counter at each time in ``at`` over ``(t - window_s, t]`` (PromQL)."""
    return _extrapolated(np.asarray(ts), np.asarray(values), np.asarray(at), window_s, True)


def increase(ts: Sequence[float], values: Sequence[float], at: Sequence[float], window_s: float) -> np.ndarray:
    """Increase of a counter over ``(t - window_s, t]``, extrapolated like PromQL's ``increase``."""
    return _extrapolated(np.asarray(ts), np.asarray(values), np.asarray(at), window_s, False)


def rate_frame(frame: pd.DataFrame, window_s: float, step_s: float | None = None,
               by: Sequence[str] = ("series_id",)) -> pd.DataFrame:
    """:func:`rate` per group of a long frame (``ts_unix_s``, ``value``, ``by`` columns).

    Evaluated at each group's own sample times, or on a shared grid of ``step_s``.
    """
    if frame.empty:
        return frame.assign(value=pd.Series(dtype=float))
    parts = []
    grid = None
    if step_s:
        t0, t1 = frame["ts_unix_s"].min(), frame["ts_unix_s"].max()
        grid = np.arange(math.ceil(t0 / step_s) * step_s, t1 + step_s / 2, step_s)
    for key, grp in frame.groupby(list(by), sort=False, dropna=False):
        at = grid if grid is not None else grp["ts_unix_s"].to_numpy()
        r = rate(grp["ts_unix_s"].to_numpy(), grp["value"].to_numpy(), at, window_s)
        key = key if isinstance(key, tuple) else (key,)
        part = pd.DataFrame({"ts_unix_s": at, "value": r})
        for col, val in zip(by, key):
            part[col] = val
        parts.append(part.dropna(subset=["value"]))
    return pd.concat(parts, ignore_index=True) if parts else frame.iloc[0:0]


# --------------------------------------------------------------------------- store queries


def _label_filter(labels: dict[str, str] | None) -> tuple[str, list]:
    if not labels:
        return "", []
    clauses, params = [], []
    for key, value in labels.items():
        clauses.append("json_extract_string(labels, ?) = ?")
        params += ['$."' + key.replace('"', "") + '"', str(value)]
    return " AND " + " AND ".join(clauses), params


def series_frame(con: duckdb.DuckDBPyConnection, name: str, labels: dict[str, str] | None = None,
                 start: float | None = None, end: float | None = None, run_id: str | None = None,
                 expand_labels: bool = True, polars: bool = False,
                 kinds: Sequence[str] | None = None):
    """Samples of every series called ``name`` (optionally matching ``labels``) in [start, end].

    With ``run_id``, only telemetry of that run (attached to it, or unattached and
    inside its time window). Columns: ``ts_unix_s``, ``time`` (UTC), ``value``,
    ``series_id``, ``unit``, ``type``, ``labels`` (JSON text) and, with
    ``expand_labels``, one column per label.
    """
    where, params = _label_filter(labels)
    table = "telemetry"
    if run_id is not None:
        table = "run_telemetry"
        where += " AND run_id = ?"
        params.append(run_id)
    if start is not None:
        where += " AND ts_unix_s >= ?"
        params.append(float(start))
    if end is not None:
        where += " AND ts_unix_s <= ?"
        params.append(float(end))
    sql = (f"SELECT ts_unix_s, value, series_id, unit, type, "
           f"CAST(labels AS VARCHAR) AS labels FROM {table} WHERE name = ?{where} "
           "ORDER BY series_id, ts_unix_s")
    rel = con.execute(sql, [name, *params])
    if polars:
        import polars as pl

        import warnings

        with warnings.catch_warnings():  # "extra copy" note: fine at notebook sizes
            warnings.simplefilter("ignore", UserWarning)
            frame_pl = pl.from_arrow(rel.to_arrow_table())
        return frame_pl.insert_column(1, pl.from_epoch(
            (frame_pl["ts_unix_s"] * 1e6).cast(pl.Int64), time_unit="us")
            .dt.replace_time_zone("UTC").alias("time"))
    frame = rel.df()
    frame.insert(1, "time", pd.to_datetime(frame["ts_unix_s"], unit="s", utc=True))
    if expand_labels and not frame.empty:
        decoded = {s: json.loads(s) for s in frame["labels"].unique()}
        keys = sorted({k for d in decoded.values() for k in d})
        for key in keys:
            frame[key] = frame["labels"].map(lambda s, k=key: decoded[s].get(k))
    return frame


def bucket_quantiles(con: duckdb.DuckDBPyConnection, histogram: str, q: float,
                     run_id: str | None = None, start: float | None = None,
                     end: float | None = None, rate_window_s: float | None = None,
                     by: Sequence[str] = (), step_s: float | None = None) -> pd.DataFrame:
    """``histogram_quantile(q, [rate(]<histogram>_bucket[window])])`` from the store.

    Reads every ``<histogram>_bucket`` series (in a run or a window); with
    ``rate_window_s`` the bucket counters first become per-second rates over that
    window (PromQL's extrapolated rate; evaluated on a ``step_s`` grid when given),
    else the cumulative counts are used as scraped. Buckets are summed by ``le``
    and the ``by`` labels, then the quantile is taken per timestamp. Returns
    ``ts_unix_s``, the ``by`` columns, ``value`` and ``observations`` (the +Inf
    bucket: the count, or rate, behind each estimate).
    """
    frame = series_frame(con, f"{histogram}_bucket", run_id=run_id, start=start, end=end)
    cols = ["ts_unix_s", *by, "value", "observations"]
    if frame.empty or "le" not in frame:
        return pd.DataFrame(columns=cols)
    keep = ["series_id", "le", *by]
    if rate_window_s:
        meta = frame[keep].drop_duplicates("series_id")
        rated = rate_frame(frame[["series_id", "ts_unix_s", "value"]], rate_window_s, step_s=step_s,
                           by=("series_id",))
        frame = rated.merge(meta, on="series_id", how="left")
    return histogram_quantile_frame(q, frame[["ts_unix_s", "le", "value", *by]], by=by)[cols]


def latency_by_step(con: duckdb.DuckDBPyConnection, run_id: str, step_s: float, t0: float) -> pd.DataFrame:
    """Per step of the run: requests sent (n), errors, p50/p90/p99 latency (ms) by intended time."""
    return con.execute(
        """
        SELECT floor((intended_unix_s - ?) / ?) * ? AS t_s,
               count(*) AS requests,
               count(*) FILTER (WHERE error_kind IS NOT NULL) AS errors,
               quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
               quantile_cont(latency_ms, 0.9) AS latency_p90_ms,
               quantile_cont(latency_ms, 0.99) AS latency_p99_ms
        FROM requests WHERE run_id = ? AND intended_unix_s IS NOT NULL
        GROUP BY 1 ORDER BY 1
        """, [t0, step_s, step_s, run_id]).df()


def align_to_run(con: duckdb.DuckDBPyConnection, run_id: str, names: Sequence[str],
                 step_s: float = 1.0, rate_window_s: float | None = None,
                 kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """One frame on the run's time grid: latency per step and each named series.

    ``t_s`` is seconds since the run's start, one row per ``step_s``. Latency
    columns come from the run's requests (by intended send time; ``requests`` is
    the sample count of each step's percentiles). Each telemetry name becomes a
    column: gauges averaged within the step (and across series of that name,
    e.g. GPUs; ``<name>_series`` says how many), counters turned into a
    per-second rate (column ``<name>_per_s``, summed across series) over
    ``rate_window_s`` (default 2 steps). Steps without data hold NaN.
    """
    run_id, start, end = run_window(con, run_id)
    out = align_window(con, start, end, names, step_s, rate_window_s, run_id=run_id, kinds=kinds)
    lat = latency_by_step(con, run_id, step_s, start)
    return out.merge(lat, on="t_s", how="left")


def _median_spacing(frame: pd.DataFrame) -> float:
    """Median time between consecutive samples of the same series (0 if unknown)."""
    gaps = frame.sort_values(["series_id", "ts_unix_s"]).groupby("series_id")["ts_unix_s"].diff()
    gaps = gaps.dropna()
    return float(gaps.median()) if len(gaps) else 0.0


def align_window(con: duckdb.DuckDBPyConnection, start: float, end: float, names: Sequence[str],
                 step_s: float = 1.0, rate_window_s: float | None = None,
                 run_id: str | None = None, kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """Like :func:`align_to_run` for a plain time window (no latency columns)."""
    grid = np.arange(0.0, max(end - start, 0.0) + step_s / 2, step_s)
    out = pd.DataFrame({"t_s": grid})
    out["time"] = pd.to_datetime(start + grid, unit="s", utc=True)
    for name in names:
        frame = series_frame(con, name, run_id=run_id, start=start - step_s, end=end + step_s,
                             expand_labels=False, kinds=kinds)
        if frame.empty:
            out[name] = np.nan
            continue
        if (frame["type"] == "counter").all() or name.endswith(("_sum", "_count", "_total")):
            window = rate_window_s or max(2 * step_s, 2.5 * _median_spacing(frame))
            rates = rate_frame(frame, window, step_s=step_s, by=("series_id",))
            rates = rates.assign(t_s=np.floor((rates["ts_unix_s"] - start) / step_s) * step_s)
            per_step = rates.groupby(["t_s", "series_id"])["value"].mean().groupby("t_s").sum()
            out[f"{name}_per_s"] = out["t_s"].map(per_step)
        else:
            frame = frame.assign(t_s=np.floor((frame["ts_unix_s"] - start) / step_s) * step_s)
            per_series = frame.groupby(["t_s", "series_id"])["value"].mean()
            # a gauge holds its value until the next sample: carry it over the steps
            # between two samples (at most one sampling interval), not further
            hold = max(0, math.ceil(_median_spacing(frame) / step_s) - 1)
            out[name] = out["t_s"].map(per_series.groupby("t_s").mean()).ffill(limit=hold or None) \
                if hold else out["t_s"].map(per_series.groupby("t_s").mean())
            out[f"{name}_series"] = out["t_s"].map(per_series.groupby("t_s").size())
    return out


# --------------------------------------------------------------------------- the notebook's view


def sources_for(con: duckdb.DuckDBPyConnection, run_id: str | None = None,
                start: float | None = None, end: float | None = None) -> pd.DataFrame:
    """The telemetry sources behind a run (or a window): kind, path, samples, series names."""
    if run_id:
        rid, start, end = run_window(con, run_id)
        sql = ("SELECT source_id, source_kind AS kind, count(*) AS samples, "
               "count(DISTINCT name) AS names, min(ts_unix_s) AS first_ts, max(ts_unix_s) AS last_ts "
               "FROM run_telemetry WHERE run_id = ? GROUP BY ALL ORDER BY source_id")
        params: list = [rid]
    else:
        sql = ("SELECT source_id, source_kind AS kind, count(*) AS samples, "
               "count(DISTINCT name) AS names, min(ts_unix_s) AS first_ts, max(ts_unix_s) AS last_ts "
               "FROM telemetry WHERE ts_unix_s BETWEEN ? AND ? GROUP BY ALL ORDER BY source_id")
        params = [start, end]
    frame = con.execute(sql, params).df()
    paths = con.execute("SELECT source_id, path, label FROM sources").df()
    return frame.merge(paths, on="source_id", how="left")

#: Panels of the telemetry timeline: title, unit, [(column, legend)].
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Latency", "ms", [("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")]),
    ("GPU utilization", "%", [("gpu_utilization_percent", "GPU")]),
    ("CPU utilization", "%", [("host_cpu_utilization_percent", "machine"),
                              ("process_cpu_utilization_percent", "target process")]),
    ("Memory", "GiB", [("gpu_memory_used_gib", "GPU used"), ("host_memory_used_gib", "machine used"),
                       ("process_memory_rss_gib", "target RSS")]),
    ("GPU power", "W", [("gpu_power_w", "power")]),
    ("Queue depth", "requests", [("queue_depth", "queue")]),
    ("Batch size", "requests/batch", [("batch_size_mean", "mean batch")]),
]


def timeline(con: duckdb.DuckDBPyConnection, run_id: str | None = None,
             start: float | None = None, end: float | None = None, step_s: float = 1.0,
             queue_metric: str = "perfkit_demo_queue_depth",
             batch_metric: str = "perfkit_demo_batch_size",
             kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """The frame behind notebook 02: latency and the usual suspects on one time grid.

    Memory in GiB for plotting; batch size is the mean over each step,
    rate(``<batch_metric>_sum``) / rate(``<batch_metric>_count``).
    """
    names = ["gpu_utilization_percent", "host_cpu_utilization_percent",
             "process_cpu_utilization_percent", "gpu_memory_used_bytes", "host_memory_used_bytes",
             "process_memory_rss_bytes", "gpu_power_w", "gpu_energy_j", queue_metric,
             f"{batch_metric}_sum", f"{batch_metric}_count"]
    if run_id:
        frame = align_to_run(con, run_id, names, step_s, kinds=kinds)
    else:
        if start is None or end is None:
            raise ValueError("give a run_id or both start and end")
        frame = align_window(con, start, end, names, step_s, kinds=kinds)
        for col in ("latency_p50_ms", "latency_p99_ms", "requests"):
            frame[col] = np.nan
    gib = 1024.0 ** 3
    for src, dst in (("gpu_memory_used_bytes", "gpu_memory_used_gib"),
                     ("host_memory_used_bytes", "host_memory_used_gib"),
                     ("process_memory_rss_bytes", "process_memory_rss_gib")):
        frame[dst] = frame[src] / gib
    frame["queue_depth"] = frame[queue_metric] if queue_metric in frame else np.nan
    s, c = f"{batch_metric}_sum_per_s", f"{batch_metric}_count_per_s"
    if s in frame and c in frame:
        with np.errstate(divide="ignore", invalid="ignore"):
            frame["batch_size_mean"] = np.where(frame[c] > 0, frame[s] / frame[c], np.nan)
    else:
        frame["batch_size_mean"] = np.nan
    return frame


def timeline_figure(frame: pd.DataFrame, title: str = "", panels=PANELS):
    """Stacked panels sharing the time axis; a panel without data says so instead of vanishing."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(11, 2.0 * len(panels)),
                             constrained_layout=True)
    x = frame["t_s"] if "t_s" in frame else frame.index
    for ax, (name, unit, series) in zip(np.atleast_1d(axes), panels):
        drawn = False
        for col, legend in series:
            if col in frame and frame[col].notna().any():
                ax.plot(x, frame[col], label=legend, marker=".", markersize=3, linewidth=1)
                drawn = True
        ax.set_ylabel(f"{name}\n({unit})", fontsize=8)
        if drawn:
            ax.legend(loc="upper right", fontsize=7)
        else:
            ax.text(0.5, 0.5, "no data (no GPU / not collected)", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
            ax.set_yticks([])
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[-1].set_xlabel("seconds since start")
    if title:
        fig.suptitle(title)
    return fig


def _fmt(value: float, unit: str, n: int, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or n == 0:
        return "no data"
    return f"{value:.{digits}g} {unit} (n={n:,})"


def gpu_energy_j(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[float, int]:
    """GPU energy over a run: the increase of each GPU's energy counter, summed over GPUs.

    The delta of the counter (NVML / DCGM total energy, stored in J), not integrated
    power (REFERENCE.md). Counter resets inside the run add the pre-reset value.
    Returns (joules, number of GPUs); (NaN, 0) when no counter was recorded.
    """
    frame = series_frame(con, "gpu_energy_j", run_id=run_id, expand_labels=False)
    if frame.empty:
        return math.nan, 0
    total = 0.0
    for _, grp in frame.groupby("series_id"):
        v = grp.sort_values("ts_unix_s")["value"].to_numpy()
        if len(v) < 2:
            continue
        drops = np.where(v[1:] < v[:-1], v[:-1], 0.0)
        total += float(v[-1] - v[0] + drops.sum())
    return total, int(frame["series_id"].nunique())


def headline_figures(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame,
                     run_id: str | None = None) -> dict[str, str]:
    """3-6 headline figures with units and sample counts for notebook 02's last cell."""
    figures: dict[str, str] = {}
    if run_id:
        rid, _, _ = run_window(con, run_id)
        row = con.execute("SELECT quantile_cont(latency_ms, 0.99), count(latency_ms) FROM requests "
                          "WHERE run_id = ?", [rid]).fetchall()[0]
        figures["P99 latency"] = _fmt(row[0], "ms", int(row[1] or 0))
    for label, col, unit in (("Mean GPU utilization", "gpu_utilization_percent", "%"),
                             ("Mean host CPU", "host_cpu_utilization_percent", "%"),
                             ("Mean GPU power", "gpu_power_w", "W")):
        values = frame[col].dropna() if col in frame else pd.Series(dtype=float)
        figures[label] = _fmt(float(values.mean()) if len(values) else math.nan, unit, len(values))
    peak = frame["host_memory_used_gib"].dropna() if "host_memory_used_gib" in frame else []
    figures["Peak host memory"] = _fmt(float(max(peak)) if len(peak) else math.nan, "GiB", len(peak))
    if run_id:
        joules, gpus = gpu_energy_j(con, run_id)
        figures["GPU energy"] = "no data" if gpus == 0 else f"{joules:.4g} J ({gpus} GPU counter(s))"
    return figures
