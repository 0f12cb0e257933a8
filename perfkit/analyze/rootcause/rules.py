"""The root-cause rules over requests, server metrics and time (the GPU rule is in :mod:`.gpu`).

Every rule is a pure function over small frames/dicts (what
:mod:`perfkit.analyze.rootcause.evidence` reads from the store) that returns a
list of :class:`~perfkit.analyze.rootcause.finding.Finding`, empty when the data
do not support the cause. Thresholds are module constants so that reports can
state them:

a. queueing: queue wait >= 40% of the client's mean latency and >= 2 ms (high from
   60% and 20 ms, low under 10 ms); latency against
   load: Spearman rho >= 0.5 (p < 0.01) between per-window arrival rate and
   P99, with the load varying (CV >= 0.2); Little's law: |L - lambda W| / lambda W > 25%
   and more than 2 standard errors, from >= 10 gauge readings.
b. fixed batching: load varies >= 1.5x (p90/p10 of per-scrape-interval rate)
   while the executed batch stays within 10% (p90-p10 over median) without
   following the load (padding >= 25%, or at >= 90% of max batch), and queue
   wait is at least half of the server time at low load (max batch unknown:
   a flat batch of >= 2); separately, padding rows >= 25% of computed rows.
   Both read canonical signals (inferences / executions is the batch size), so
   they hold on any server the vocabulary maps.
c. proxy overhead: Hodges–Lehmann shift of the proxied run over the direct run
   with its 98% interval above 0 and >= 3% of the direct median.
d. GPU: see :mod:`perfkit.analyze.rootcause.gpu`.
e. lagged Spearman of per-window P99 with every series (lags -5..5 windows),
   Benjamini–Hochberg q < 0.01 over all series x lags and |rho| >= 0.5; change
   points by ruptures PELT (l2 cost via KernelCPD(linear) in C, penalty 2 sigma^2 ln n) on per-window mean
   latency, kept when the level moves >= 20% and MWU p < 0.01 (both tests in
   :mod:`perfkit.analyze.stats`).
f. schedule lag (sent - intended): P99 >= 10 ms or > 0.1% of requests never sent.
Also: availability (1-s windows with success ratio >= 99%) below 99% with MTTR,
and a stated P99 SLO missed.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from perfkit.analyze import changepoints, stats
from perfkit.analyze.rootcause.finding import Finding, chart
from perfkit.quantiles import Estimate

QUEUE_SHARE, QUEUE_MIN_MS = 0.40, 2.0
LOAD_RHO, LOAD_P, LOAD_CV = 0.5, 0.01, 0.2
LITTLE_TOLERANCE, LITTLE_MIN_SAMPLES = 0.25, 10
FIXED_LOAD_RATIO, FIXED_BATCH_SPREAD, FIXED_QUEUE_SHARE, FIXED_AT_MAX = 1.5, 0.10, 0.5, 0.9
FIXED_MIN_BATCH = 2.0
PADDING_SHARE = 0.25
PROXY_SHARE = 0.03
CORR_RHO, CORR_Q, CORR_MAX_LAG = 0.5, 0.01, 5
CP_CHANGE, CP_P = 0.20, 0.01
LAG_P99_MS, UNSENT_SHARE = 10.0, 0.001
AVAIL_WINDOW_OK, AVAIL_TARGET = 0.99, 0.99


# --------------------------------------------------------------------------- a. queueing

def _ratio(num: float | None, den: float | None) -> float:
    if num is None or den is None or not den or not math.isfinite(den):
        return math.nan
    return float(num) / float(den)


def queueing(run_id: str, breakdown: dict[str, Any], server_totals: dict[str, float],
             arrival_rate_rps: float = math.nan, metrics: dict[str, list[str]] | None = None) -> list[Finding]:
    """Where the time goes: schedule lag, server queue wait, inference, network/other.

    ``server_totals`` holds canonical signals (seconds): queue time from
    ``queue_time_sum``/``queue_time_count``; a server that counts only its queue's
    size (MLServer) gives the wait by Little's law, mean queue depth over the
    arrival rate. ``metrics`` (evidence column -> the server's names) lets the
    finding name the metrics it stands on.
    """
    lat = breakdown.get("mean_latency_ms")
    svc = breakdown.get("mean_service_ms")
    qw = 1000 * _ratio(server_totals.get("queue_time_sum"), server_totals.get("queue_time_count"))
    queue_keys = ["queue_time_sum", "queue_time_count"]
    depth = server_totals.get("mean_queue_depth")
    estimated = False
    if not math.isfinite(qw) and depth is not None and arrival_rate_rps > 0:
        # Little's law W = L / lambda; the depth is sampled as arrivals see it, so the estimate
        # is capped at the time the client saw the server hold a request (the service time)
        qw = 1000 * depth / arrival_rate_rps
        if svc:
            qw = min(qw, float(svc))
        queue_keys = ["queue_depth", "queue_depth_sum", "queue_depth_count"]
        estimated = True
    inf_ms = 1000 * _ratio(server_totals.get("compute_time_sum"), server_totals.get("compute_time_count"))
    srv = 1000 * _ratio(server_totals.get("server_time_sum"), server_totals.get("server_time_count"))
    if lat is None or not math.isfinite(qw) or not lat:
        return []
    share = qw / lat
    if share < QUEUE_SHARE or qw < QUEUE_MIN_MS:
        return []
    lag = breakdown.get("mean_schedule_lag_ms") or 0.0
    other_server = max(srv - qw - inf_ms, 0.0) if math.isfinite(srv) else math.nan
    network = max((svc or 0.0) - srv, 0.0) if math.isfinite(srv) else math.nan
    parts = {"schedule lag": lag, "queue wait": qw, "inference": inf_ms,
             "other server": other_server, "network+client": network}
    numbers = {"mean_latency_ms": lat, "mean_service_ms": svc, "mean_queue_wait_ms": qw,
               "mean_inference_ms": inf_ms, "mean_server_ms": srv, "queue_share": share,
               "n_requests": breakdown.get("n"),
               "n_queued": int(server_totals.get("queue_time_count", server_totals.get("n_queue_depth", 0)))}
    named = sorted({m for k in queue_keys for m in (metrics or {}).get(k, [])})
    if named:
        numbers["queue_metric"] = ", ".join(named)
    if queue_keys[0] == "queue_depth":
        numbers["mean_queue_depth"] = depth
    sev = "high" if share >= 0.6 and qw >= 20.0 else ("medium" if qw >= 10.0 else "low")
    how = " (Little's law from the queue depth)" if estimated else ""
    return [Finding("queueing", f"Queue wait is {share:.0%} of latency ({qw:.1f} of {lat:.1f} ms){how}", sev,
                    numbers, "Requests wait for a batch or a worker more than they compute: shorten the "
                    "batch timeout / use dynamic batching, add workers, or lower the load.",
                    [run_id], share, chart("breakdown", parts_ms=parts, title=f"Where the time goes ({run_id})"))]


def load_latency(run_id: str, windows: pd.DataFrame) -> list[Finding]:
    """Latency rising with arrival rate (saturation), per 1-s window."""
    w = windows.dropna(subset=["p99_ms"])
    w = w[w["requests"] > 0]
    if len(w) < 10:
        return []
    rate = w["requests"].to_numpy(float)
    cv = rate.std() / rate.mean() if rate.mean() > 0 else 0.0
    if cv < LOAD_CV:
        return []
    rho, p = sps.spearmanr(rate, w["p99_ms"])
    if not (rho >= LOAD_RHO and p < LOAD_P):
        return []
    numbers = {"spearman_rho": float(rho), "p_value": float(p), "windows": len(w), "rate_cv": float(cv),
               "p99_low_load_ms": float(w.loc[w["requests"] <= np.median(rate), "p99_ms"].median()),
               "p99_high_load_ms": float(w.loc[w["requests"] > np.median(rate), "p99_ms"].median())}
    return [Finding("load_latency", f"P99 rises with load (Spearman ρ={rho:.2f}, {len(w)} windows)", "medium",
                    numbers, "The service saturates: find the knee with `perfkit sweep --find-max` and keep "
                    "the operating point below it, or add capacity.", [run_id], float(rho),
                    chart("scatter", x=rate, y=w["p99_ms"].to_numpy(), xlabel="arrival rate (req/s)",
                          ylabel="P99 (ms)", title=f"P99 against load ({run_id})"))]


def littles_law(run_id: str, arrival_rate_rps: float, mean_latency_ms: float,
                server_totals: dict[str, float]) -> list[Finding]:
    """L = lambda W with the server's in-flight gauge against the client's rate and latency."""
    n_g = int(server_totals.get("n_in_flight", 0))
    L = server_totals.get("mean_in_flight")
    if L is None or n_g < LITTLE_MIN_SAMPLES or not math.isfinite(arrival_rate_rps) or not mean_latency_ms:
        return []
    check = stats.littles_law(L, arrival_rate_rps, mean_latency_ms, LITTLE_TOLERANCE)
    # a gauge read n times holds roughly Poisson counts: demand the gap exceed 2 standard errors too
    se = math.sqrt(max(check["L_predicted"], 0.25) / n_g)
    check["standard_error"] = se
    if check["consistent"] or abs(L - check["L_predicted"]) <= 2 * se:
        return []
    gap = check["relative_gap"]
    if gap < 0:
        title = (f"Little's law: the server holds {L:.1f} requests but λW predicts "
                 f"{check['L_predicted']:.1f}; {-gap:.0%} of the time is spent outside the server")
        action = "Look between client and server: proxies, connection pools, network, client scheduling."
    else:
        title = (f"Little's law: the server holds {L:.1f} requests, {gap:.0%} more than λW="
                 f"{check['L_predicted']:.1f} predicts")
        action = "The server counts work the client does not see (other traffic, retries, leaked requests)."
    numbers = {**check, "gauge_samples": int(n_g)}
    return [Finding("littles_law", title, "medium", numbers, action, [run_id], abs(gap),
                    chart("bars", values={"L measured": L, "λ·W predicted": check["L_predicted"]},
                          ylabel="requests in flight", title=f"Little's law ({run_id})"))]


# --------------------------------------------------------------------------- b. batching

def fixed_batching(run_id: str, intervals: pd.DataFrame, server_totals: dict[str, float],
                   max_batch: int | None) -> list[Finding]:
    """Batch shape flat while the load changes, with queue wait dominating at low load.

    ``intervals`` (per scrape interval, canonical signals): ``ts_unix_s``,
    ``inferences`` (requests computed), ``executions`` (model calls),
    ``queue_time_sum`` (s), ``queue_time_count``, ``server_time_sum`` (s),
    ``server_time_count`` and, where the server pads, ``batch_rows`` and
    ``padding_rows``. The *executed* batch per call is (rows + padding) / calls
    when padding is counted, else inferences / executions (Triton's
    ``nv_inference_count`` / ``nv_inference_exec_count``). The cause is present
    when the executed batch stays within 10% across a >= 1.5x load range, does
    not follow the load (padding >= 25% of computed rows; without padding
    counters, the batch sits at >= 90% of ``max_batch`` even at low load, or,
    with ``max_batch`` unknown, at :data:`FIXED_MIN_BATCH` or more), and queue
    wait is at least half of the server time at low load.
    """
    need = {"ts_unix_s", "inferences", "executions", "queue_time_sum", "queue_time_count",
            "server_time_sum", "server_time_count"}
    if intervals.empty or not need <= set(intervals.columns):
        return []
    d = intervals.sort_values("ts_unix_s").copy()
    d["dt"] = d["ts_unix_s"].diff()
    d = d[(d["executions"] > 0) & (d["dt"] > 0) & (d["server_time_count"] > 0) & (d["queue_time_count"] > 0)]
    if len(d) < 3:
        return []
    rate = d["inferences"] / d["dt"]
    padded = {"batch_rows", "padding_rows"} <= set(d.columns) and bool((d["padding_rows"].fillna(0) > 0).any())
    executed = ((d["batch_rows"] + d["padding_rows"]) / d["executions"]) if padded \
        else d["inferences"] / d["executions"]
    qshare = (d["queue_time_sum"] / d["queue_time_count"]) / (d["server_time_sum"] / d["server_time_count"])
    p10, p90 = np.percentile(rate, [10, 90])
    load_ratio = p90 / p10 if p10 > 0 else math.inf
    s10, s50, s90 = np.percentile(executed, [10, 50, 90])
    spread = (s90 - s10) / s50 if s50 > 0 else math.inf
    low = rate <= np.median(rate)
    low_share = float(qshare[low].median())
    if padded:
        pad_low = float((d["padding_rows"] / (d["batch_rows"] + d["padding_rows"]))[low].median())
        not_following = pad_low >= PADDING_SHARE
    elif max_batch is not None and max_batch > 0:
        pad_low, not_following = math.nan, s50 >= FIXED_AT_MAX * max_batch
    else:   # a batch of several requests, flat while the load moves and requests wait: filled to a size
        pad_low, not_following = math.nan, s50 >= FIXED_MIN_BATCH
    if not (load_ratio >= FIXED_LOAD_RATIO and spread <= FIXED_BATCH_SPREAD and not_following
            and low_share >= FIXED_QUEUE_SHARE):
        return []
    real = d["inferences"] / d["executions"]
    numbers = {"load_ratio_p90_p10": float(load_ratio), "rate_p10_rps": float(p10), "rate_p90_rps": float(p90),
               "executed_batch_median": float(s50), "executed_batch_spread": float(spread),
               "requests_per_call_low_load": float(real[low].mean()),
               "requests_per_call_high_load": float(real[~low].mean()) if (~low).any() else math.nan,
               "padding_share_low_load": pad_low, "max_batch": max_batch,
               "queue_share_low_load": low_share, "intervals": int(len(d))}
    unit = "rows" if padded else "requests"
    return [Finding("fixed_batching",
                    f"Batch shape stays at {s50:.0f} {unit} per call while load varies {load_ratio:.1f}x; "
                    f"at low load queue wait is {low_share:.0%} of server time", "high", numbers,
                    "Use dynamic batching (max batch with a short timeout) so the batch follows the load.",
                    [run_id], low_share,
                    chart("scatter", x=rate.to_numpy(), y=executed.to_numpy(),
                          xlabel="arrival rate per scrape interval (req/s)", ylabel=f"executed batch ({unit}/call)",
                          title=f"Batch shape against load ({run_id})", y2=(100 * qshare).to_numpy(),
                          y2label="queue wait share of server time (%)"))]


def padding_waste(run_id: str, server_totals: dict[str, float], max_batch: int | None) -> list[Finding]:
    """Padding rows computed for nothing (static batch shapes)."""
    rows, pad = server_totals.get("batch_rows"), server_totals.get("padding_rows")
    if rows is None or pad is None or rows + pad <= 0:
        return []
    share = pad / (rows + pad)
    if share < PADDING_SHARE:
        return []
    eff = stats.batch_efficiency(server_totals.get("inferences", math.nan),
                                 server_totals.get("executions", 0), max_batch or 0)
    numbers = {"padding_share": share, "rows": rows, "padding_rows": pad,
               "mean_batch_size": eff["mean_batch_size"], "max_batch": max_batch,
               "inference_calls": eff["inference_calls"]}
    return [Finding("padding", f"{share:.0%} of the rows the model computes are padding "
                    f"(mean batch {eff['mean_batch_size']:.1f} of {max_batch})", "medium", numbers,
                    "Pad to the batch actually formed (ragged/dynamic batching) or to smaller shape buckets.",
                    [run_id], share,
                    chart("bars", values={"real rows": rows, "padding rows": pad}, ylabel="rows",
                          title=f"Computed rows ({run_id})"))]


# --------------------------------------------------------------------------- c. proxy

def proxy_overhead(direct_id: str, proxied_id: str, direct: dict[float, Estimate],
                   proxied: dict[float, Estimate], shift: Estimate) -> list[Finding]:
    """Added latency of a proxy/sidecar, per percentile, from a direct and a proxied run."""
    if not direct or not proxied or not math.isfinite(shift.value):
        return []
    p50 = direct.get(0.5)
    base = p50.value if p50 else math.nan
    share50 = shift.value / base if base else math.nan
    if not (shift.lo > 0 and share50 >= PROXY_SHARE):
        return []
    per = {}
    for q in sorted(set(direct) & set(proxied)):
        add = proxied[q].value - direct[q].value
        per[f"p{q * 100:g}"] = {"direct_ms": direct[q].value, "proxied_ms": proxied[q].value,
                                "added_ms": add, "added_share": add / direct[q].value if direct[q].value else math.nan,
                                "n_direct": direct[q].n, "n_proxied": proxied[q].n}
    p99 = per.get("p99", {})
    numbers = {"hl_shift_ms": shift.value, "hl_lo_ms": shift.lo, "hl_hi_ms": shift.hi,
               "confidence": shift.confidence, "added_share_p50": share50,
               "added_share_p99": p99.get("added_share", math.nan),
               "n_direct": p50.n if p50 else 0, "n_proxied": proxied[0.5].n if 0.5 in proxied else 0,
               "per_percentile": per}
    sev = "high" if share50 >= 0.2 else "medium"
    curves = {f"direct {direct_id}": _spectrum(direct), f"proxied {proxied_id}": _spectrum(proxied)}
    return [Finding("proxy_overhead",
                    f"The proxy adds {shift.value:.2f} ms at the median ({share50:.0%}), "
                    f"{p99.get('added_share', math.nan):.0%} at P99", sev, numbers,
                    "Remove the hop for latency-critical traffic, keep upstream connections alive, or move "
                    "the sidecar's work (TLS, auth, retries) off the request path.",
                    [direct_id, proxied_id], share50,
                    chart("spectrum", curves=curves, title="Direct against proxied"))]


def proxy_table(direct: dict[float, Estimate], proxied: dict[float, Estimate]) -> pd.DataFrame:
    """Per percentile: direct and proxied latency with their intervals, the added ms and its share.

    Shown whether or not the overhead is large enough to be a finding.
    """
    rows = []
    for q in sorted(set(direct) & set(proxied)):
        d, p = direct[q], proxied[q]
        rows.append({"percentile": f"p{q * 100:g}", "direct_ms": d.value, "direct_lo": d.lo, "direct_hi": d.hi,
                     "proxied_ms": p.value, "proxied_lo": p.lo, "proxied_hi": p.hi,
                     "added_ms": p.value - d.value,
                     "added_share": (p.value - d.value) / d.value if d.value else math.nan,
                     "n_direct": d.n, "n_proxied": p.n, "confidence": d.confidence})
    return pd.DataFrame(rows)


def _spectrum(est: dict[float, Estimate]) -> pd.DataFrame:
    return pd.DataFrame([{"quantile": q, "value": e.value, "lo": e.lo, "hi": e.hi} for q, e in sorted(est.items())])


# --------------------------------------------------------------------------- e. correlation, change points

def correlations(run_id: str, windows: pd.DataFrame, telemetry: pd.DataFrame, top: int = 3) -> list[Finding]:
    """Series whose (lagged) movement tracks per-window P99."""
    if telemetry.empty or windows.empty:
        return []
    lat = windows.set_index("window_s")["p99_ms"]
    tele = telemetry.reindex(lat.index)
    scan = stats.lagged_spearman(lat, tele, CORR_MAX_LAG)
    if scan.empty:
        return []
    hits = scan[(scan["q"] < CORR_Q) & (scan["rho"].abs() >= CORR_RHO)]
    if hits.empty:
        return []
    best = hits.loc[hits.groupby("series")["rho"].apply(lambda r: r.abs().idxmax())]
    best = best.reindex(best["rho"].abs().sort_values(ascending=False).index).head(top)
    out = []
    for _, h in best.iterrows():
        numbers = {"series": h["series"], "lag_windows": int(h["lag"]), "spearman_rho": h["rho"],
                   "q_bh": h["q"], "n_windows": int(h["n"]), "tests": len(scan)}
        out.append(Finding("correlation", f"P99 moves with {h['series']} (ρ={h['rho']:.2f}, lag {int(h['lag'])} s)",
                           "low", numbers, "A correlation, not a proof: check whether this resource is the "
                           "bottleneck (saturation) or a symptom of the same load.", [run_id], abs(h["rho"]),
                           chart("timeline", t=lat.index.to_numpy(), series={"P99 (ms)": lat.to_numpy()},
                                 title=f"P99 and {h['series']} ({run_id})", ylabel="ms",
                                 secondary={h["series"]: tele[h["series"]].to_numpy()})))
    return out


def regressions_in_time(run_id: str, windows: pd.DataFrame) -> list[Finding]:
    """Date a level shift of per-window mean latency (change points kept when large and significant)."""
    w = windows.dropna(subset=["mean_latency_ms"]).reset_index(drop=True)
    if len(w) < 10:
        return []
    y = w["mean_latency_ms"].to_numpy(float)
    cps = changepoints.breakpoints(y)
    kept, bounds = [], [0] + cps + [len(y)]
    for i, cp in enumerate(cps):
        before, after = y[bounds[i]:cp], y[cp:bounds[i + 2]]
        mb, ma = float(np.median(before)), float(np.median(after))
        change = (ma - mb) / mb if mb else math.inf
        p = float(sps.mannwhitneyu(after, before).pvalue) if len(before) >= 3 and len(after) >= 3 else 1.0
        if abs(change) >= CP_CHANGE and p < CP_P:
            kept.append({"at_s": float(w["window_s"][cp]), "at_unix_s": float(w["start_unix_s"][cp]),
                         "before_ms": mb, "after_ms": ma, "change": change, "p": p,
                         "n_before": len(before), "n_after": len(after)})
    out = []
    for k in kept:
        sev = "medium" if k["change"] > 0 else "low"
        direction = "rose" if k["change"] > 0 else "fell"
        out.append(Finding("change_point", f"Mean latency {direction} {abs(k['change']):.0%} at t={k['at_s']:.0f} s "
                           f"({k['before_ms']:.1f} → {k['after_ms']:.1f} ms)", sev, k,
                           "Line this instant up with deploys, config changes, stalls and the telemetry of "
                           "the same minute.", [run_id], abs(k["change"]),
                           chart("timeline", t=w["window_s"].to_numpy(), series={"mean latency (ms)": y},
                                 title=f"Change points ({run_id})", marks=[c["at_s"] for c in kept],
                                 ylabel="ms")))
    return out


# --------------------------------------------------------------------------- f. the load generator

def schedule_lag(run_id: str, lag: dict[str, Any], windows: pd.DataFrame) -> list[Finding]:
    """The generator fell behind its schedule: its numbers are not to be trusted."""
    n = lag.get("requests", 0)
    if not n:
        return []
    unsent = (n - lag.get("sent", 0)) / n
    p99 = lag.get("p99_ms", math.nan)
    if not ((math.isfinite(p99) and p99 >= LAG_P99_MS) or unsent > UNSENT_SHARE):
        return []
    numbers = {"schedule_lag_p50_ms": lag.get("p50_ms"), "schedule_lag_p99_ms": p99,
               "schedule_lag_max_ms": lag.get("max_ms"), "unsent_share": unsent, "n": n}
    return [Finding("schedule_lag", f"The load generator fell behind its schedule (P99 lag {p99:.1f} ms, "
                    f"{unsent:.1%} never sent): this run's numbers are not to be trusted", "critical", numbers,
                    "Give the generator more workers/CPU (`--workers`), lower the rate, or run it on another "
                    "host; then re-run.", [run_id], p99 if math.isfinite(p99) else 1.0,
                    chart("timeline", t=windows["window_s"].to_numpy(),
                          series={"mean lag": windows["mean_schedule_lag_ms"].to_numpy(),
                                  "max lag": windows["max_schedule_lag_ms"].to_numpy()},
                          title=f"Schedule lag ({run_id})", ylabel="ms"))]


# --------------------------------------------------------------------------- availability, SLO

def availability(run_id: str, windows: pd.DataFrame, sustain_s: int = 3,
                 p99_limit_ms: float | None = None) -> list[Finding]:
    """Fault episodes: window availability below target, with MTTR.

    A window is bad when under 99% of its requests succeeded or, given a P99 SLO
    (``p99_limit_ms``), when its P99 broke it (a stall is an outage to its users).
    """
    if windows.empty:
        return []
    av = stats.availability(windows, AVAIL_WINDOW_OK, p99_limit_ms)
    if not math.isfinite(av["window"].value) or av["window"].value >= AVAIL_TARGET:
        return []
    eps = stats.fault_episodes(windows, AVAIL_WINDOW_OK, p99_limit_ms, sustain_s=sustain_s)
    m = stats.mttr(eps)
    numbers = {"availability_windows": av["window"].value, "availability_windows_ci":
               [av["window"].lo, av["window"].hi], "windows": av["window"].n,
               "availability_requests": av["request"].value, "requests": av["request"].n,
               "episodes": len(eps), "mttr_s": m.value, "mttr_n": m.n, "mttr_note": m.note}
    numbers["window_p99_limit_ms"] = p99_limit_ms
    marked = stats.mark_windows(windows, AVAIL_WINDOW_OK, p99_limit_ms)
    shade = [(e.onset_s, e.recovered_s if e.recovered_s is not None else float(marked["window_s"].max()) + 1)
             for e in eps]
    mt = f"MTTR {m.value:.1f} s over {m.n} episode(s)" if m.n else "no recovery observed"
    return [Finding("availability", f"Availability {av['window'].value:.1%} of 1-s windows "
                    f"({av['request'].value:.2%} of requests ok); {mt}", "high", numbers,
                    "Find what fails in the shaded spans (errors by kind, server logs); add retries with "
                    "budgets or fail over faster to shorten recovery.", [run_id], 1 - av["window"].value,
                    chart("timeline", t=marked["window_s"].to_numpy(),
                          series={"success ratio": marked["success_ratio"].to_numpy()},
                          title=f"Success ratio per second ({run_id})", ylabel="ok / requests", shade=shade))]


def slo(run_id: str, p99: Estimate, threshold_ms: float | None, over: int) -> list[Finding]:
    """A stated P99 SLO that the run missed (the interval says so, not just the point)."""
    if threshold_ms is None or p99.n == 0:
        return []
    verdict = stats.slo_verdict_from_counts(p99.n, over, 0.99)
    if verdict != "missed":
        return []
    numbers = {"p99_ms": p99.value, "p99_lo_ms": p99.lo, "p99_hi_ms": p99.hi, "n": p99.n,
               "slo_p99_ms": threshold_ms, "over_slo": over, "confidence": p99.confidence}
    return [Finding("slo", f"P99 {p99.value:.1f} ms misses the {threshold_ms:g} ms SLO "
                    f"(interval {p99.lo:.1f}–{p99.hi:.1f} ms, n={p99.n:,})", "high", numbers,
                    "See the findings below for where the time goes.", [run_id],
                    p99.value / threshold_ms if threshold_ms else 0.0)]
