"""Telemetry from the store for notebook 02: series frames, histogram quantiles, a run's timeline.

The reads are parameterized SQL over the ``telemetry`` and ``run_telemetry``
views (a run's telemetry is what was recorded with it, or unattached samples
inside its time window); the maths is :mod:`perfkit.analyze.promql`'s and the
figure :func:`perfkit.plots.diagnosis.timeline_figure`. :func:`series_frame`
and :func:`align_to_run` return pandas frames (``polars=True`` gives polars
where that is cheap).
"""
from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Sequence, cast

import duckdb
import numpy as np
import pandas as pd

from perfkit import names as metric
from perfkit.analyze.promql import align_series, histogram_quantile_frame, rate_frame
from perfkit.store.runs import latency_by_step, percentiles, run_window

if TYPE_CHECKING:
    import polars as pl

# --------------------------------------------------------------------------- store queries


def _label_filter(labels: dict[str, str] | None) -> tuple[str, list[Any]]:
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
                 kinds: Sequence[str] | None = None) -> pd.DataFrame | pl.DataFrame:
    """Samples of every series called ``name`` (optionally matching ``labels``) in [start, end].

    With ``run_id``, only telemetry of that run (attached to it, or unattached and
    inside its time window); with ``kinds``, only sources of those kinds
    (``nvml``, ``dcgm``, ``scrape``...). Columns: ``ts_unix_s``, ``time`` (UTC), ``value``,
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
    if kinds:
        where += " AND list_contains(?::VARCHAR[], source_kind)"
        params.append(list(kinds))
    sql = (f"SELECT ts_unix_s, value, series_id, unit, type, "
           f"CAST(labels AS VARCHAR) AS labels FROM {table} WHERE name = ?{where} "
           "ORDER BY series_id, ts_unix_s")
    rel = con.execute(sql, [name, *params])
    if polars:
        import warnings

        import polars as pl

        with warnings.catch_warnings():  # "extra copy" note: fine at notebook sizes
            warnings.simplefilter("ignore", UserWarning)
            frame_pl = cast(pl.DataFrame, pl.from_arrow(rel.to_arrow_table()))
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
    frame = _pandas(series_frame(con, f"{histogram}_bucket", run_id=run_id, start=start, end=end))
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
    ``rate_window_s`` (see :func:`perfkit.analyze.promql.align_series`). Steps
    without data hold NaN.
    """
    run_id, start, end = run_window(con, run_id)
    out = align_window(con, start, end, names, step_s, rate_window_s, run_id=run_id, kinds=kinds)
    lat = latency_by_step(con, run_id, step_s, start)
    return out.merge(lat, on="t_s", how="left")


def align_window(con: duckdb.DuckDBPyConnection, start: float, end: float, names: Sequence[str],
                 step_s: float = 1.0, rate_window_s: float | None = None,
                 run_id: str | None = None, kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """Like :func:`align_to_run` for a plain time window (no latency columns)."""
    grid = np.arange(0.0, max(end - start, 0.0) + step_s / 2, step_s)
    out = pd.DataFrame({"t_s": grid})
    out["time"] = pd.to_datetime(start + grid, unit="s", utc=True)
    for name in names:
        frame = _pandas(series_frame(con, name, run_id=run_id, start=start - step_s, end=end + step_s,
                                     expand_labels=False, kinds=kinds))
        if frame.empty:
            out[name] = np.nan
            continue
        for col, values in align_series(frame, name, start, out["t_s"], step_s, rate_window_s).items():
            out[col] = values
    return out


# --------------------------------------------------------------------------- the notebook's view


def sources_for(con: duckdb.DuckDBPyConnection, run_id: str | None = None,
                start: float | None = None, end: float | None = None) -> pd.DataFrame:
    """The telemetry sources behind a run (or a window): kind, path, samples, series names, first
    and last sample (UTC)."""
    if run_id:
        rid, start, end = run_window(con, run_id)
        sql = ("SELECT source_id, source_kind AS kind, count(*) AS samples, "
               "count(DISTINCT name) AS names, min(ts_unix_s) AS first_ts, max(ts_unix_s) AS last_ts "
               "FROM run_telemetry WHERE run_id = ? GROUP BY ALL ORDER BY source_id")
        params: list[Any] = [rid]
    else:
        sql = ("SELECT source_id, source_kind AS kind, count(*) AS samples, "
               "count(DISTINCT name) AS names, min(ts_unix_s) AS first_ts, max(ts_unix_s) AS last_ts "
               "FROM telemetry WHERE ts_unix_s BETWEEN ? AND ? GROUP BY ALL ORDER BY source_id")
        params = [start, end]
    frame = con.execute(sql, params).df()
    for col in ("first_ts", "last_ts"):  # epoch seconds -> UTC times, as a reader reads them
        frame[col] = pd.to_datetime(frame[col], unit="s", utc=True).dt.floor("s")
    paths = con.execute("SELECT source_id, path, label FROM sources").df()
    return frame.merge(paths, on="source_id", how="left")


def timeline(con: duckdb.DuckDBPyConnection, run_id: str | None = None,
             start: float | None = None, end: float | None = None, step_s: float = 1.0,
             queue_metric: str = metric.DEMO_QUEUE_DEPTH,
             batch_metric: str = metric.DEMO_BATCH_SIZE,
             kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """The frame behind notebook 02: latency and the usual suspects on one time grid.

    Memory in GiB for plotting; batch size is the mean over each step,
    rate(``<batch_metric>_sum``) / rate(``<batch_metric>_count``).
    """
    wanted = [metric.GPU_UTILIZATION, metric.HOST_CPU_UTILIZATION, metric.PROCESS_CPU_UTILIZATION,
              metric.GPU_MEMORY_USED, metric.HOST_MEMORY_USED, metric.PROCESS_MEMORY_RSS, metric.GPU_POWER,
              metric.GPU_ENERGY, queue_metric, f"{batch_metric}_sum", f"{batch_metric}_count"]
    if run_id:
        frame = align_to_run(con, run_id, wanted, step_s, kinds=kinds)
    else:
        if start is None or end is None:
            raise ValueError("give a run_id or both start and end")
        frame = align_window(con, start, end, wanted, step_s, kinds=kinds)
        for col in ("latency_p50_ms", "latency_p99_ms", "requests"):
            frame[col] = np.nan
    gib = 1024.0 ** 3
    for src, dst in ((metric.GPU_MEMORY_USED, "gpu_memory_used_gib"),
                     (metric.HOST_MEMORY_USED, "host_memory_used_gib"),
                     (metric.PROCESS_MEMORY_RSS, "process_memory_rss_gib")):
        frame[dst] = frame[src] / gib
    frame["queue_depth"] = frame[queue_metric] if queue_metric in frame else np.nan
    s, c = f"{batch_metric}_sum_per_s", f"{batch_metric}_count_per_s"
    if s in frame and c in frame:
        with np.errstate(divide="ignore", invalid="ignore"):
            frame["batch_size_mean"] = np.where(frame[c] > 0, frame[s] / frame[c], np.nan)
    else:
        frame["batch_size_mean"] = np.nan
    return frame


def _pandas(frame: pd.DataFrame | pl.DataFrame) -> pd.DataFrame:
    """:func:`series_frame`'s pandas result, typed as such (it is polars only when asked)."""
    return cast(pd.DataFrame, frame)


def _fmt(value: float | None, unit: str, n: int, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or n == 0:
        return "no data"
    return f"{value:.{digits}g} {unit} (n={n:,})"


def gpu_energy_j(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[float, int]:
    """GPU energy over a run: the increase of each GPU's energy counter, summed over GPUs.

    The delta of the counter (NVML / DCGM total energy, stored in J), not integrated
    power, which misses what happens between samples. Counter resets inside the
    run add the pre-reset value.
    Returns (joules, number of GPUs); (NaN, 0) when no counter was recorded.
    """
    frame = _pandas(series_frame(con, metric.GPU_ENERGY, run_id=run_id, expand_labels=False))
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
    """3-6 headline figures with units and sample counts for notebook 02's last cell.

    P99 latency is over every request with a latency, failed ones included (the
    timeline's latency panel shows them too), by :mod:`perfkit.quantiles`' definition.
    """
    figures: dict[str, str] = {}
    if run_id:
        rid, _, _ = run_window(con, run_id)
        p99 = percentiles(con, rid, qs=(0.99,), ok_only=False)[0.99]
        figures["P99 latency"] = _fmt(p99.value, "ms", p99.n)
    for label, col, unit in (("Mean GPU utilization", metric.GPU_UTILIZATION, "%"),
                             ("Mean host CPU", metric.HOST_CPU_UTILIZATION, "%"),
                             ("Mean GPU power", metric.GPU_POWER, "W")):
        values = frame[col].dropna() if col in frame else pd.Series(dtype=float)
        figures[label] = _fmt(float(values.mean()) if len(values) else math.nan, unit, len(values))
    peak = frame["host_memory_used_gib"].dropna() if "host_memory_used_gib" in frame else []
    figures["Peak host memory"] = _fmt(float(max(peak)) if len(peak) else math.nan, "GiB", len(peak))
    if run_id:
        joules, gpus = gpu_energy_j(con, run_id)
        figures["GPU energy"] = "no data" if gpus == 0 else f"{joules:.4g} J ({gpus} GPU counter(s))"
    return figures
