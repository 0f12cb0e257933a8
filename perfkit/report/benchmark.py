"""Notebook 01 (one benchmark run): data access, tables and figures.

``load_run`` reads a run and its per-request rows from the store; everything
else is a pure function of that :class:`RunData` (tables as pandas frames,
figures as matplotlib ``Figure`` objects), so the notebook stays one call per
cell and the arithmetic is unit-testable on small frames.

Latency is ``done - intended`` (from when the schedule said the request should
leave: no coordinated omission). Percentiles are exact order statistics
(inverted CDF, as in the bench summary) with distribution-free binomial
confidence intervals; every figure carries its sample count.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from perfkit.analyze.stats import quantile_ci

SUMMARY_PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}

REQUEST_COLUMNS = (
    "seq", "worker", "stage", "intended_unix_s", "sent_unix_s", "first_byte_unix_s", "done_unix_s",
    "latency_ms", "service_ms", "status_code", "error_kind", "bytes_out", "bytes_in",
    "payload_class", "prompt_tokens", "output_tokens", "ttft_ms", "tpot_ms", "itl_ms_max",
)
SPECTRUM_MAX_Q = 0.9999


@dataclass
class RunData:
    """A run's metadata (``runs`` row, JSON decoded) and its requests, times relative to t0."""

    run: dict[str, Any]
    requests: pd.DataFrame

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def ok(self) -> pd.DataFrame:
        return self.requests[self.requests["error_kind"].isna()]


def load_run(db: str | None = None, run_id: str = "latest") -> RunData:
    """Read one run (``latest`` = newest) and its requests from the store, read-only."""
    from perfkit import store

    con = store.connect(db or None, read_only=True)
    try:
        run = store.get_run(con, run_id)
        cols = ", ".join(REQUEST_COLUMNS)
        frame = con.execute(f"SELECT {cols} FROM requests WHERE run_id = ? ORDER BY seq",
                            [run["run_id"]]).df()
    finally:
        con.close()
    return RunData(run=run, requests=with_relative_times(frame, run.get("t0_unix_s")))


def with_relative_times(frame: pd.DataFrame, t0_unix_s: float | None) -> pd.DataFrame:
    """Add ``t_s`` (intended send, seconds since t0), ``done_t_s`` and ``schedule_lag_ms``."""
    out = frame.copy()
    t0 = t0_unix_s if t0_unix_s is not None else (
        float(out["intended_unix_s"].min()) if len(out) else 0.0)
    out["t_s"] = out["intended_unix_s"] - t0
    out["done_t_s"] = out["done_unix_s"] - t0
    out["schedule_lag_ms"] = (out["sent_unix_s"] - out["intended_unix_s"]) * 1000.0
    return out


def _fmt_ms(v: float | None) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return f"{v:,.1f} ms" if v >= 10 else f"{v:,.2f} ms"


def overview(data: RunData) -> pd.DataFrame:
    """The run's metadata as a two-column table: target, pattern, machine, status, validity."""
    run = data.run
    summary = run.get("summary") or {}
    machine = run.get("machine") or {}
    gpus = machine.get("gpus") or []
    gpu = ", ".join(str(g.get("name")) for g in gpus) if gpus else "none"
    valid_text = validity_text(summary)
    started = run.get("started_at")
    n = len(data.requests)
    rows = [
        ("run id", run.get("run_id")),
        ("label", run.get("label") or ""),
        ("target", run.get("target")),
        ("protocol", run.get("protocol")),
        ("pattern", run.get("pattern")),
        ("intended rate", f"{run.get('intended_rate_rps') or 0:,.1f} req/s"),
        ("duration", f"{run.get('duration_s') or 0:,.1f} s"),
        ("started (UTC)", started.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
         if started is not None else ""),
        ("status", f"{run.get('status')}" + (f" ({run['status_reason']})" if run.get("status_reason") else "")),
        ("valid", valid_text),
        ("requests", f"{n:,} ({int(data.requests['error_kind'].notna().sum()):,} errors)"),
        ("tool", f"{run.get('tool') or ''} {run.get('tool_version') or ''}".strip()),
        ("machine", f"{machine.get('hostname', '?')}: {machine.get('cpu_model', '?')}, "
                    f"{machine.get('cpu_cores_logical', '?')} logical cores, "
                    f"{(machine.get('memory_bytes') or 0) / 2**30:,.0f} GiB; GPU: {gpu}"),
        ("perfkit / commit", f"{machine.get('perfkit_version', '?')} / {machine.get('git_commit') or 'n/a'}"),
    ]
    return pd.DataFrame(rows, columns=["field", "value"]).set_index("field")


def percentile_table(values: np.ndarray | pd.Series, quantiles: Mapping[str, float] | None = None,
                     confidence: float = 0.95) -> pd.DataFrame:
    """Exact percentiles with distribution-free CIs and n; an end the data cannot bound is NaN."""
    quantiles = dict(SUMMARY_PERCENTILES if quantiles is None else quantiles)
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]

    def finite(x: float) -> float:
        return float(x) if math.isfinite(x) else math.nan

    rows = []
    for key, q in quantiles.items():
        est = quantile_ci(v, q, confidence, method="order", unit="ms")
        rows.append({"percentile": key.upper().replace("P999", "P99.9"),
                     "latency_ms": finite(est.value), "ci_low_ms": finite(est.lo),
                     "ci_high_ms": finite(est.hi), "n": int(v.size)})
    return pd.DataFrame(rows).set_index("percentile")


def run_percentiles(data: RunData, confidence: float = 0.95) -> pd.DataFrame:
    """Latency percentile table of the run's successful requests (as in the bench summary)."""
    return percentile_table(data.ok["latency_ms"].to_numpy(dtype=float), confidence=confidence)


def token_table(data: RunData, confidence: float = 0.95) -> pd.DataFrame:
    """TTFT / TPOT / largest inter-token gap percentiles for LLM runs (empty otherwise)."""
    frames = []
    for col, name in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("itl_ms_max", "max ITL")):
        v = data.ok[col].dropna().to_numpy(dtype=float)
        if v.size == 0:
            continue
        t = percentile_table(v, {"p50": 0.5, "p90": 0.9, "p99": 0.99}, confidence)
        t.insert(0, "metric", name)
        frames.append(t.reset_index())
    if not frames:
        return pd.DataFrame(columns=["metric", "percentile", "latency_ms", "ci_low_ms", "ci_high_ms", "n"])
    return pd.concat(frames, ignore_index=True).set_index(["metric", "percentile"])


def error_table(data: RunData) -> pd.DataFrame:
    """Requests by outcome (ok or error kind) with counts and shares."""
    kinds = data.requests["error_kind"].fillna("ok")
    counts = kinds.value_counts()
    n = int(counts.sum())
    frame = pd.DataFrame({"requests": counts.astype(int)})
    frame["share_percent"] = 100.0 * frame["requests"] / max(n, 1)
    frame.index.name = "outcome"
    return frame


def rolling_percentiles(frame: pd.DataFrame, window_s: float = 1.0,
                        quantiles: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Per time window (by intended send time): n and latency percentiles of the ok requests in it."""
    quantiles = dict({"p50": 0.5, "p99": 0.99} if quantiles is None else quantiles)
    ok = frame[frame["error_kind"].isna()]
    if ok.empty:
        return pd.DataFrame(columns=["t_s", "n", *quantiles])
    bins = np.floor(ok["t_s"].to_numpy() / window_s).astype(np.int64)
    rows = []
    for b, grp in ok.groupby(bins)["latency_ms"]:
        vals = grp.to_numpy(dtype=float)
        qs = np.quantile(vals, list(quantiles.values()), method="inverted_cdf")
        rows.append({"t_s": (b + 0.5) * window_s, "n": int(vals.size), **dict(zip(quantiles, qs))})
    return pd.DataFrame(rows)


def throughput_over_time(frame: pd.DataFrame, bin_s: float = 1.0) -> pd.DataFrame:
    """Per bin: intended sends (by intended time), completions ok and errors (by done time), in req/s.

    Bins cover the schedule, whole bins from 0; responses that complete after the
    last scheduled send's bin are counted in that last bin, so the final bin is not
    a near-empty sliver that would read as a collapse of throughput.
    """
    if frame.empty:
        return pd.DataFrame(columns=["t_s", "intended_rps", "achieved_rps", "errors_rps"])
    n_bins = max(1, int(np.ceil(float(frame["t_s"].max()) / bin_s - 1e-9)))
    edges = np.arange(n_bins + 1, dtype=np.float64) * bin_s
    last = np.nextafter(edges[-1], 0.0)
    intended, _ = np.histogram(frame["t_s"].dropna().clip(upper=last), bins=edges)
    ok = frame[frame["error_kind"].isna()]["done_t_s"].dropna().clip(upper=last)
    err = frame[frame["error_kind"].notna()]["done_t_s"].dropna().clip(upper=last)
    achieved, _ = np.histogram(ok, bins=edges)
    errors, _ = np.histogram(err, bins=edges)
    return pd.DataFrame({"t_s": edges[:-1] + bin_s / 2, "intended_rps": intended / bin_s,
                         "achieved_rps": achieved / bin_s, "errors_rps": errors / bin_s})


def percentile_spectrum(values: np.ndarray | pd.Series, max_q: float = SPECTRUM_MAX_Q,
                        points: int = 200) -> pd.DataFrame:
    """Latency at quantiles evenly spaced on a 1/(1-q) log axis, from P0 up to ``max_q``.

    Quantiles beyond what n supports (1/(1-q) > n) are left out: a P99.99 from
    1,000 samples would only repeat the maximum.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return pd.DataFrame(columns=["q", "inv_tail", "latency_ms"])
    top = min(max_q, 1.0 - 1.0 / v.size) if v.size > 1 else 0.0
    inv = np.logspace(0.0, np.log10(1.0 / (1.0 - top)), points) if top > 0 else np.array([1.0])
    q = 1.0 - 1.0 / inv
    lat = np.quantile(v, q, method="inverted_cdf")
    return pd.DataFrame({"q": q, "inv_tail": inv, "latency_ms": lat})


def schedule_lag_table(data: RunData) -> pd.DataFrame:
    """Schedule lag (actual minus intended send): did the load generator keep up? P50, P99, max."""
    lag = data.requests["schedule_lag_ms"].to_numpy(dtype=float)
    lag = lag[~np.isnan(lag)]
    table = percentile_table(lag, {"p50": 0.5, "p99": 0.99}).rename(
        columns={"latency_ms": "lag_ms", "ci_low_ms": "ci_low_ms", "ci_high_ms": "ci_high_ms"})
    table.loc["MAX"] = {"lag_ms": float(lag.max()) if lag.size else np.nan,
                        "ci_low_ms": np.nan, "ci_high_ms": np.nan, "n": int(lag.size)}
    table["n"] = table["n"].astype(int)
    return table


# ---- figures ------------------------------------------------------------------------------------

def _figure(width: float = 10.0, height: float = 4.0, rows: int = 1):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(width, height), sharex=rows > 1, squeeze=False,
                             layout="constrained")
    return fig, [ax for ax in axes[:, 0]]


SCATTER_MAX_POINTS = 40_000


def scatter_sample(frame: pd.DataFrame, max_points: int = SCATTER_MAX_POINTS, tail_q: float = 0.99,
                   seed: int = 0) -> pd.DataFrame:
    """The rows a scatter plot draws: all of them up to ``max_points``, else every row in the tail.

    Past ``max_points`` (an hour at 1,000 req/s is 3.6 M dots, slow to draw and
    unreadable), every request slower than the ``tail_q`` quantile is kept, since
    the tail is what the plot is for, plus a seeded uniform sample of the rest.
    """
    if len(frame) <= max_points:
        return frame
    lat = frame["latency_ms"].to_numpy(dtype=float)
    cut = np.nanquantile(lat, tail_q, method="inverted_cdf")
    tail = lat > cut
    keep = tail.copy()
    body_idx = np.flatnonzero(~tail)
    room = max(max_points - int(tail.sum()), 0)
    if room and body_idx.size:
        rng = np.random.default_rng(seed)
        keep[rng.choice(body_idx, size=min(room, body_idx.size), replace=False)] = True
    return frame[keep]


def plot_latency_over_time(data: RunData, window_s: float = 1.0, max_points: int = SCATTER_MAX_POINTS):
    """Every request's latency against its intended send time, with rolling P50/P99 per window.

    Long runs draw at most ``max_points`` dots (the whole tail plus a sample of the
    rest, see :func:`scatter_sample`); the rolling percentiles always use every request.
    """
    fig, (ax,) = _figure(height=4.2)
    req = data.requests
    ok = req[req["error_kind"].isna()]
    err = req[req["error_kind"].notna()]
    few = len(req) < 1000  # bigger, darker dots when there are few requests to see
    drawn = scatter_sample(ok, max_points)
    shown = f", {len(drawn):,} drawn: all above P99 + a sample" if len(drawn) < len(ok) else ""
    ax.scatter(drawn["t_s"], drawn["latency_ms"], s=14 if few else 4, alpha=0.7 if few else 0.35,
               color="#4c72b0", linewidths=0, label=f"ok request (n={len(ok):,}{shown})", rasterized=True)
    if len(err):
        ax.scatter(err["t_s"], err["latency_ms"], s=10, marker="x", color="#c44e52",
                   label=f"error (n={len(err):,})")
    roll = rolling_percentiles(req, window_s)
    if len(roll):
        ax.plot(roll["t_s"], roll["p50"], color="#dd8452", lw=2, label=f"P50 per {window_s:g} s")
        ax.plot(roll["t_s"], roll["p99"], color="#55a868", lw=2, label=f"P99 per {window_s:g} s")
    ax.set_yscale("log")
    ax.set_xlabel("intended send time since start (s)")
    ax.set_ylabel("latency from intended send (ms, log)")
    ax.set_title(f"Latency over time — run {data.run_id}")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper right", fontsize=8, markerscale=2)
    return fig


def plot_percentile_spectrum(data: RunData, max_q: float = SPECTRUM_MAX_Q):
    """Latency by percentile on a 1/(1-q) log axis (the HdrHistogram view of the tail)."""
    fig, (ax,) = _figure(height=4.0)
    v = data.ok["latency_ms"].to_numpy(dtype=float)
    spec = percentile_spectrum(v, max_q)
    ax.plot(spec["inv_tail"], spec["latency_ms"], color="#4c72b0", lw=2,
            label=f"latency (n={v.size:,})")
    ticks = [(1, "P0"), (2, "P50"), (10, "P90"), (100, "P99"), (1000, "P99.9"), (10000, "P99.99")]
    top = float(spec["inv_tail"].max()) if len(spec) else 1.0
    shown = [(x, lab) for x, lab in ticks if x <= max(top, 1.0) * 1.0001]
    ax.set_xscale("log")
    ax.set_xticks([x for x, _ in shown], [lab for _, lab in shown])
    ax.minorticks_off()
    ax.set_xlabel("percentile (axis: 1/(1-q), log)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Percentile spectrum")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_throughput_errors(data: RunData, bin_s: float = 1.0):
    """Intended vs achieved request rate, and errors, per time bin."""
    fig, (ax, ax_err) = _figure(height=5.0, rows=2)
    tp = throughput_over_time(data.requests, bin_s)
    ax.step(tp["t_s"], tp["achieved_rps"], where="mid", color="#4c72b0", lw=2.5, label="achieved (ok responses)")
    ax.step(tp["t_s"], tp["intended_rps"], where="mid", color="#333333", lw=1.2, ls="--",
            label="intended (sends scheduled)")
    ax.set_ylabel("req/s")
    ax.set_title(f"Throughput per {bin_s:g} s (n={len(data.requests):,} requests)")
    ax.grid(True, alpha=0.25)
    ax.legend(loc="lower right", fontsize=8)
    ax_err.bar(tp["t_s"], tp["errors_rps"], width=bin_s * 0.9, color="#c44e52",
               label=f"errors (n={int(data.requests['error_kind'].notna().sum()):,})")
    ax_err.set_ylim(0, max(1.0, float(tp["errors_rps"].max() if len(tp) else 0.0) * 1.1))
    ax_err.set_ylabel("errors/s")
    ax_err.set_xlabel("time since start (s)")
    ax_err.grid(True, alpha=0.25)
    ax_err.legend(loc="upper right", fontsize=8)
    return fig


def plot_schedule_lag(data: RunData):
    """Schedule lag per request over time: above a few ms the load generator, not the server, was slow."""
    fig, (ax,) = _figure(height=3.2)
    req = data.requests.dropna(subset=["schedule_lag_ms"])
    few = len(req) < 1000
    drawn = scatter_sample(req.assign(latency_ms=req["schedule_lag_ms"]))
    ax.scatter(drawn["t_s"], drawn["schedule_lag_ms"], s=14 if few else 4, alpha=0.7 if few else 0.4,
               color="#8172b3", linewidths=0, rasterized=True,
               label=f"lag (n={len(req):,})")
    ax.set_xlabel("intended send time since start (s)")
    ax.set_ylabel("actual − intended send (ms)")
    ax.set_title("Schedule lag of the load generator")
    ax.grid(True, alpha=0.25)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def headline_figures(data: RunData, confidence: float = 0.95) -> dict[str, str]:
    """The index's figures for this run: P50, P99 with CI, achieved rate, errors, validity."""
    table = run_percentiles(data, confidence)
    n_ok = int(table["n"].iloc[0]) if len(table) else 0
    n = len(data.requests)
    p99 = table.loc["P99"] if "P99" in table.index else None
    ci = ""
    if p99 is not None and not (np.isnan(p99["ci_low_ms"]) or np.isnan(p99["ci_high_ms"])):
        ci = f", {confidence:.0%} CI {p99['ci_low_ms']:,.1f}–{p99['ci_high_ms']:,.1f}"
    summary = data.run.get("summary") or {}
    achieved = summary.get("achieved_rate_rps")
    errors = n - n_ok
    figures = {
        "P50": f"{_fmt_ms(table.loc['P50', 'latency_ms'] if 'P50' in table.index else None)} (n={n_ok:,})",
        "P99": (f"{_fmt_ms(p99['latency_ms'] if p99 is not None else None)}{ci} (n={n_ok:,})"),
    }
    ttft = data.ok["ttft_ms"].dropna().to_numpy(dtype=float)
    if ttft.size:
        t = percentile_table(ttft, {"p99": 0.99}, confidence)
        figures["TTFT P99"] = f"{_fmt_ms(t.loc['P99', 'latency_ms'])} (n={ttft.size:,})"
    figures["achieved rate"] = (f"{achieved:,.1f} of {data.run.get('intended_rate_rps') or 0:,.1f} req/s"
                                if achieved is not None else "n/a")
    figures["errors"] = f"{errors:,} of {n:,} ({100.0 * errors / max(n, 1):.2f}%)"
    figures["valid"] = validity_text(summary)
    return figures


def validity_text(summary: Mapping[str, Any]) -> str:
    """``yes``, or ``no (generator_kept_up, ...)`` naming the checks that failed."""
    valid = summary.get("valid")
    if valid is None:
        return "not recorded"
    if valid:
        return "yes"
    failed = [k.removesuffix("_met") for k, v in (summary.get("validity") or {}).items() if v is False]
    return f"no ({', '.join(failed)})" if failed else "no"


def headline_title(data: RunData) -> str:
    """``Benchmark case=steady: constant at 40 req/s`` (label shown when the run has one)."""
    run = data.run
    labels = run.get("labels") or {}
    name = f"case={labels['case']}" if isinstance(labels, dict) and labels.get("case") else (run.get("label") or "")
    what = f"{run.get('pattern') or '?'} at {run.get('intended_rate_rps') or 0:,.0f} req/s"
    return f"Benchmark {name}: {what}" if name else f"Benchmark: {what}"
