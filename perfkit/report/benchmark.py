"""Notebook 01 (one benchmark run): the run read from the store, and the tables the notebook shows.

:func:`load_run` asks the store's SQL reader (:mod:`perfkit.store.runs`) for all
the notebook shows: counts, exact percentiles with their intervals, per-window
percentiles and throughput, the percentile spectrum, and bounded samples of
requests for the scatter plots. Only small frames come up, however long the
run. The tables are pure functions of that :class:`RunData`; the figures are
drawn by :mod:`perfkit.plots.benchmark`.

Latency is ``done - intended`` (from when the schedule said the request should
leave: no coordinated omission). Percentiles are exact order statistics (the
inverted CDF of :mod:`perfkit.quantiles`, as in the bench summary) with
distribution-free binomial confidence intervals; every table and figure carries
its sample count.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from perfkit.quantiles import SUMMARY_PERCENTILES, Estimate
from perfkit.summary import RunSummary, load as load_summary

#: Quantiles of the rolling lines in the latency-over-time figure.
ROLLING_PERCENTILES = {"p50": 0.5, "p99": 0.99}
#: Quantiles of the token and schedule-lag tables.
TOKEN_PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
LAG_PERCENTILES = {"p50": 0.5, "p99": 0.99}
#: LLM metrics shown in the token table, per request: store series, name with its formula. TTFT is
#: shown from the intended send (what a user waits: generator lag and queueing at --max-connections
#: included) and from the actual send (the server's share); TPOT and ITL in each common convention
#: (the bench summary's ``definitions``).
TOKEN_METRICS = (("ttft_intended_ms", "TTFT from intended send = first token − intended send"),
                 ("ttft_ms", "TTFT from actual send = first token − actual send"),
                 ("tpot_ms", "TPOT excl. TTFT = (done − first token) / (tokens − 1)"),
                 ("tpot_incl_ttft_ms", "TPOT incl. TTFT = (done − intended send) / tokens"),
                 ("itl_request_mean_ms", "ITL per-request mean = mean of a request's token gaps"),
                 ("itl_ms_max", "ITL per-request max = a request's largest token gap"))
#: The token table's row of ITL pooled over every gap (the summary's ``itl_ms``, vllm bench serve's
#: convention); no interval: the gaps of one request are not independent draws.
POOLED_ITL = "ITL pooled = every token gap of every request (no CI)"
#: The percentile spectrum reaches at most P99.99, at this many points.
SPECTRUM_MAX_Q = 0.9999
SPECTRUM_POINTS = 200
#: Dots a scatter plot draws at most (an hour at 1,000 req/s is 3.6 M requests).
SCATTER_MAX_POINTS = 40_000


@dataclass(frozen=True)
class PhaseSpan:
    """A part of the schedule whose requests are drawn but left out of every statistic
    (``perfkit bench --warmup-s/--cooldown-s``), in seconds from the run's t0."""

    name: str                                     # warm-up | cool-down
    start_s: float
    end_s: float
    n: int                                        # requests stored in it


@dataclass(frozen=True)
class RunData:
    """A run's metadata and the small frames notebook 01 shows, times in seconds from the run's t0."""

    run: dict[str, Any]                           # the runs row, JSON decoded
    summary: RunSummary | None                    # perfkit bench's summary (None: imported or unfinished run)
    totals: dict[str, Any]                        # requests, ok, errors by kind (perfkit.store.runs.totals)
    latency: dict[float, Estimate]                # SUMMARY_PERCENTILES of the ok requests' latency
    lag: dict[float, Estimate]                    # LAG_PERCENTILES of the schedule lag (every sent request)
    lag_max_ms: float
    window_s: float                               # width of the rolling and throughput windows
    rolling: pd.DataFrame                         # t_s, n, p50, p99 of ok latency per window
    throughput: pd.DataFrame                      # t_s, intended_rps, achieved_rps, errors_rps
    spectrum: pd.DataFrame                        # q, inv_tail, latency_ms
    latency_sample: pd.DataFrame                  # t_s, latency_ms of ok requests (bounded sample)
    error_sample: pd.DataFrame                    # t_s, latency_ms of failed requests (bounded sample)
    lag_sample: pd.DataFrame                      # t_s, schedule_lag_ms (bounded sample)
    tokens: dict[str, dict[float, Estimate]] = field(default_factory=dict)  # LLM runs: metric -> estimates
    phases: tuple[PhaseSpan, ...] = ()            # warm-up / cool-down: in the figures, not in the statistics

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def n_requests(self) -> int:
        return int(self.totals["requests"])

    @property
    def n_errors(self) -> int:
        return int(self.totals["requests"]) - int(self.totals["ok"])

    @property
    def n_ok(self) -> int:
        """Successful requests with a latency: the n of every latency figure."""
        return next(iter(self.latency.values())).n if self.latency else 0

    @property
    def n_lag(self) -> int:
        return next(iter(self.lag.values())).n if self.lag else 0


def load_run(db: str | None = None, run_id: str = "latest", window_s: float = 1.0,
             max_points: int = SCATTER_MAX_POINTS) -> RunData:
    """Read one run (``latest`` = newest) from the store, read-only, aggregated in SQL."""
    from perfkit import store
    from perfkit.store import runs

    con = store.connect(db or None, read_only=True)
    try:
        run = runs.get_run(con, run_id)
        rid = run["run_id"]
        totals = runs.totals(con, rid)
        t0 = run.get("t0_unix_s")
        if t0 is None:
            t0 = totals["first_intended_unix_s"] or 0.0
        latency = runs.percentiles(con, rid, "latency_ms", SUMMARY_PERCENTILES.values())
        n_ok = next(iter(latency.values())).n
        qs = spectrum_quantiles(n_ok)
        tokens = {}
        for metric, _name in TOKEN_METRICS:
            est = runs.percentiles(con, rid, metric, TOKEN_PERCENTILES.values())
            if next(iter(est.values())).n:
                tokens[metric] = est
        lag_max = runs.quantile_values(con, rid, [1.0], "schedule_lag_ms", ok_only=False)

        def sample(metric: str, outcome: str) -> pd.DataFrame:
            frame = runs.sample_requests(con, rid, metric, outcome, max_points)
            return pd.DataFrame({"t_s": frame["intended_unix_s"] - t0, metric: frame[metric]})

        summary = bench_summary(run)
        return RunData(
            run=run, summary=summary, totals=totals, latency=latency, tokens=tokens, phases=phase_spans(summary),
            lag=runs.percentiles(con, rid, "schedule_lag_ms", LAG_PERCENTILES.values(), ok_only=False),
            lag_max_ms=float(lag_max[0]) if lag_max.size else math.nan,
            window_s=window_s,
            rolling=runs.window_percentiles(con, rid, t0, window_s, ROLLING_PERCENTILES),
            throughput=rates(runs.completion_bins(con, rid, t0, window_s), window_s),
            spectrum=spectrum_frame(qs, runs.quantile_values(con, rid, qs.tolist()) if qs.size else np.array([])),
            latency_sample=sample("latency_ms", "ok"), error_sample=sample("latency_ms", "errors"),
            lag_sample=sample("schedule_lag_ms", "all"),
        )
    finally:
        con.close()


def bench_summary(run: Mapping[str, Any]) -> RunSummary | None:
    """The run's summary under the typed contract (:mod:`perfkit.summary`) when ``perfkit bench``
    wrote it; None for runs imported from other tools (their summaries have other fields) or
    runs that never finished."""
    if run.get("tool") != "perfkit" or not run.get("summary"):
        return None
    return load_summary(run["summary"])


# ---- pure: frames from counts and quantiles ------------------------------------------------------

def phase_spans(summary: RunSummary | None) -> tuple[PhaseSpan, ...]:
    """The warm-up and cool-down spans of a run from its summary's ``phases`` (none without)."""
    ph = summary.get("phases") if summary is not None else None
    if not ph:
        return ()
    spans = []
    if ph["warmup_s"] > 0:
        spans.append(PhaseSpan("warm-up", 0.0, ph["measure_start_s"], ph["requests"].get("warmup", 0)))
    if ph["cooldown_s"] > 0:
        spans.append(PhaseSpan("cool-down", ph["measure_end_s"], ph["schedule_s"], ph["requests"].get("cooldown", 0)))
    return tuple(spans)


def rates(bins: pd.DataFrame, bin_s: float) -> pd.DataFrame:
    """Counts per bin (``intended``, ``ok``, ``errors``) as rates: intended, achieved and error req/s."""
    return pd.DataFrame({"t_s": bins["t_s"], "intended_rps": bins["intended"] / bin_s,
                         "achieved_rps": bins["ok"] / bin_s, "errors_rps": bins["errors"] / bin_s})


def spectrum_quantiles(n: int, max_q: float = SPECTRUM_MAX_Q, points: int = SPECTRUM_POINTS) -> np.ndarray:
    """Quantiles evenly spaced on a 1/(1-q) log axis, from P0 up to ``max_q``.

    Quantiles beyond what n supports (1/(1-q) > n) are left out: a P99.99 from
    1,000 samples would only repeat the maximum.
    """
    if n <= 0:
        return np.array([])
    top = min(max_q, 1.0 - 1.0 / n) if n > 1 else 0.0
    inv = np.logspace(0.0, np.log10(1.0 / (1.0 - top)), points) if top > 0 else np.array([1.0])
    return np.asarray(1.0 - 1.0 / inv)


def spectrum_frame(qs: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """The spectrum's points: ``q``, ``inv_tail`` = 1/(1-q) (the axis) and the latency there."""
    return pd.DataFrame({"q": qs, "inv_tail": 1.0 / (1.0 - qs), "latency_ms": values})


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else math.nan


def _finite_or_nan(x: float | None) -> float:
    return math.nan if x is None else _finite(x)


def estimate_table(estimates: Mapping[float, Estimate], which: Mapping[str, float],
                   value: str = "latency_ms") -> pd.DataFrame:
    """One row per percentile (``P50``, ``P99.9``...): value, interval ends and n; an end the data
    cannot bound is NaN."""
    rows = []
    for key, q in which.items():
        est = estimates[q]
        rows.append({"percentile": key.upper().replace("P999", "P99.9"), value: _finite(est.value),
                     "ci_low_ms": _finite(est.lo), "ci_high_ms": _finite(est.hi), "n": int(est.n)})
    return pd.DataFrame(rows, columns=["percentile", value, "ci_low_ms", "ci_high_ms", "n"]).set_index("percentile")


# ---- the notebook's tables -----------------------------------------------------------------------

def _fmt_ms(v: float | None) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return f"{v:,.1f} ms" if v >= 10 else f"{v:,.2f} ms"


def overview(data: RunData) -> pd.DataFrame:
    """The run's metadata as a two-column table: target, pattern, machine, status, validity."""
    run = data.run
    machine = run.get("machine") or {}
    gpus = machine.get("gpus") or []
    gpu = ", ".join(str(g.get("name")) for g in gpus) if gpus else "none"
    started = run.get("started_at")
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
        ("valid", validity_text(data.summary)),
        ("requests", f"{data.n_requests:,} ({data.n_errors:,} errors)"),
        *([("excluded from statistics", ", ".join(f"{s.name} {s.end_s - s.start_s:g} s (n={s.n:,})"
                                                  for s in data.phases))] if data.phases else []),
        ("tool", f"{run.get('tool') or ''} {run.get('tool_version') or ''}".strip()),
        ("machine", f"{machine.get('hostname', '?')}: {machine.get('cpu_model', '?')}, "
                    f"{machine.get('cpu_cores_logical', '?')} logical cores, "
                    f"{(machine.get('memory_bytes') or 0) / 2**30:,.0f} GiB; GPU: {gpu}"),
        ("perfkit / commit", f"{machine.get('perfkit_version', '?')} / {machine.get('git_commit') or 'n/a'}"),
    ]
    return pd.DataFrame(rows, columns=["field", "value"]).set_index("field")


def run_percentiles(data: RunData) -> pd.DataFrame:
    """Latency percentile table of the run's successful requests (as in the bench summary)."""
    return estimate_table(data.latency, SUMMARY_PERCENTILES)


def token_table(data: RunData) -> pd.DataFrame:
    """TTFT, TPOT (excluding and including TTFT) and ITL (per-request mean, per-request max,
    pooled) percentiles for LLM runs, each named with its formula (empty for other runs)."""
    frames = []
    for metric, name in TOKEN_METRICS:
        if metric in data.tokens:
            table = estimate_table(data.tokens[metric], TOKEN_PERCENTILES)
            table.insert(0, "metric", name)
            frames.append(table.reset_index())
    pooled: Mapping[str, Any] | None = data.summary.get("itl_ms") if data.summary else None
    if pooled and pooled["n"]:
        frames.append(pd.DataFrame([
            {"metric": POOLED_ITL, "percentile": key.upper(), "latency_ms": _finite_or_nan(pooled[key]),
             "ci_low_ms": math.nan, "ci_high_ms": math.nan, "n": int(pooled["n"])}
            for key in TOKEN_PERCENTILES if key in pooled]))
    if not frames:
        return pd.DataFrame(columns=["metric", "percentile", "latency_ms", "ci_low_ms", "ci_high_ms", "n"])
    return pd.concat(frames, ignore_index=True).set_index(["metric", "percentile"])


def error_table(data: RunData) -> pd.DataFrame:
    """Requests by outcome (ok or error kind) with counts and shares."""
    counts = {"ok": int(data.totals["ok"]), **{str(k): int(v) for k, v in data.totals["errors"].items()}}
    frame = pd.DataFrame({"requests": pd.Series({k: v for k, v in counts.items() if v}, dtype="int64")})
    frame = frame.sort_values("requests", ascending=False, kind="stable")
    frame["share_percent"] = 100.0 * frame["requests"] / max(data.n_requests, 1)
    frame.index.name = "outcome"
    return frame


def error_bodies_table(data: RunData) -> pd.DataFrame:
    """What failed answers said: the most common bodies per error kind (the summary's
    ``error_bodies``: first 200 characters, redacted), with the message they carry."""
    from perfkit.bench.errorbodies import message

    entries = data.summary.get("error_bodies", []) if data.summary else []
    rows = [{"kind": e["kind"], "status": e["status"], "requests": e["count"], "message": message(e["body"]),
             "body": e["body"]} for e in entries]
    return pd.DataFrame(rows, columns=["kind", "status", "requests", "message", "body"]).set_index("kind")


def schedule_lag_table(data: RunData) -> pd.DataFrame:
    """Schedule lag (actual minus intended send): did the load generator keep up? P50, P99, max."""
    table = estimate_table(data.lag, LAG_PERCENTILES, value="lag_ms")
    table.loc["MAX"] = {"lag_ms": data.lag_max_ms, "ci_low_ms": np.nan, "ci_high_ms": np.nan, "n": data.n_lag}
    table["n"] = table["n"].astype(int)
    return table


def headline_figures(data: RunData) -> dict[str, str]:
    """The index's figures for this run: P50, P99 with CI, achieved rate, errors, validity."""
    n_ok, n = data.n_ok, data.n_requests
    p50, p99 = data.latency.get(0.5), data.latency.get(0.99)
    ci = ""
    if p99 is not None and math.isfinite(p99.lo) and math.isfinite(p99.hi):
        ci = f", {p99.confidence:.0%} CI {p99.lo:,.1f}–{p99.hi:,.1f}"
    achieved = data.summary["achieved_rate_rps"] if data.summary is not None else None
    errors = n - n_ok
    figures = {
        "P50": f"{_fmt_ms(p50.value if p50 is not None else None)} (n={n_ok:,})",
        "P99": f"{_fmt_ms(p99.value if p99 is not None else None)}{ci} (n={n_ok:,})",
    }
    ttft = data.tokens.get("ttft_intended_ms", data.tokens.get("ttft_ms", {})).get(0.99)
    if ttft is not None:
        figures["TTFT P99"] = f"{_fmt_ms(ttft.value)} (n={ttft.n:,})"
    figures["achieved rate"] = (f"{achieved:,.1f} of {data.run.get('intended_rate_rps') or 0:,.1f} req/s"
                                if achieved is not None else "n/a")
    figures["errors"] = f"{errors:,} of {n:,} ({100.0 * errors / max(n, 1):.2f}%)"
    figures["valid"] = validity_text(data.summary)
    return figures


def validity_text(summary: RunSummary | None) -> str:
    """``yes``, or ``no (generator_kept_up, ...)`` naming the checks that failed."""
    if summary is None:
        return "not recorded"
    if summary["valid"]:
        return "yes"
    failed = [k.removesuffix("_met") for k, v in summary["validity"].items() if v is False]
    return f"no ({', '.join(failed)})" if failed else "no"


def headline_title(data: RunData) -> str:
    """``Benchmark case=steady: constant at 40 req/s`` (label shown when the run has one)."""
    run = data.run
    labels = run.get("labels") or {}
    name = f"case={labels['case']}" if isinstance(labels, dict) and labels.get("case") else (run.get("label") or "")
    what = f"{run.get('pattern') or '?'} at {run.get('intended_rate_rps') or 0:,.0f} req/s"
    return f"Benchmark {name}: {what}" if name else f"Benchmark: {what}"
