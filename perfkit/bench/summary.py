"""The run summary (:class:`perfkit.summary.RunSummary`), computed exactly from a run's stored rows.

:func:`summary_from_frame` is the pure part (column arrays and the ``runs`` row
in, summary out), so the arithmetic is testable without a database;
:func:`summarize` reads a stored run (:mod:`perfkit.bench.queries`) and applies it.

Definitions (also written into every summary's ``definitions``):

* ``latency_ms``: response complete minus the *intended* send, over the requests
  that succeeded (errors are counted in ``errors``): a stalled server cannot slow
  the clock down (no coordinated omission). ``service_ms`` is the same from the
  actual send, shown so that the difference is visible; the actual send is
  stamped before a new connection is opened, so a slow accept is service time.
* ``ttft_intended_ms``: first token minus the intended send (what goodput's
  ``ttft_ms`` bound is checked against); ``ttft_ms``: first token minus the actual send.
* Time per output token, two conventions: ``tpot_ms`` excludes TTFT,
  (response complete - first token) / (output tokens - 1), per request with at least
  two tokens (``vllm bench serve``'s TPOT); ``tpot_incl_ttft_ms`` includes it,
  (response complete - intended send) / output tokens (guidellm's TPOT, which
  measures from its own request start, i.e. the actual send).
* Inter-token latency, three forms: ``itl_ms`` pools every gap between consecutive
  tokens of the successful requests (``vllm bench serve``'s ITL), so long answers
  weigh more; ``itl_request_mean_ms`` is each request's mean gap, then percentiles
  over requests (AIPerf's and guidellm's per-request ITL); ``itl_max_ms`` is each
  request's largest gap (a stall).
* ``never_sent``: the schedule's sends that never left (an interrupted or
  stopped run): scheduled minus stored rows.
"""
from __future__ import annotations

from typing import Any, Mapping, cast

import duckdb
import numpy as np

from perfkit.bench import stats
from perfkit.bench.schedule import Phases
from perfkit.names import SLO_SERIES
from perfkit.quantiles import PERCENTILE_DEFINITION, percentiles, quantile_ci
from perfkit.store import get_run
from perfkit.store.runs import SLO_METRICS
from perfkit.summary import (FORMAT_VERSION, DefinedPercentiles, Goodput, LatencyCI, Percentiles, RunSummary, Slo,
                             Validity)

CI_PERCENTILES = {"p50": 0.50, "p99": 0.99, "p999": 0.999}
DEFINITIONS = {
    "latency_ms": "response complete - intended send (successful requests): includes every wait the "
                  "generator or a connection caused (no coordinated omission)",
    "service_ms": "response complete - actual send; the actual send is stamped before a new connection "
                  "is opened, so connection set-up is service time",
    "schedule_lag_ms": "actual send - intended send: the load generator's own delay",
    "connect_ms": "TCP connect (plus TLS handshake for https) of the requests that opened a connection",
    "ttft_ms": "first token - actual send",
    "ttft_intended_ms": "first token - intended send; goodput's ttft_ms bound is checked against this",
    "tpot_ms": "TPOT excluding TTFT: (response complete - first token) / (output tokens - 1), per request "
               "with at least 2 tokens (vllm bench serve's TPOT)",
    "tpot_incl_ttft_ms": "TPOT including TTFT: (response complete - intended send) / output tokens, per "
                         "request with at least 1 token (guidellm's TPOT, there from the actual send)",
    "itl_ms": "ITL pooled: every gap between consecutive tokens of every successful request, percentiles "
              "over all gaps (vllm bench serve's ITL)",
    "itl_request_mean_ms": "ITL per-request mean: mean of each request's gaps between consecutive tokens "
                           "= (last token - first token) / (tokens received - 1), percentiles over requests "
                           "(AIPerf's ITL)",
    "itl_max_ms": "ITL per-request max: each request's largest gap between consecutive tokens, "
                  "percentiles over requests",
    "goodput": "successful requests within every --slo bound, each bound on one per-request series: "
               + ", ".join(f"{k} on {v}" for k, v in SLO_SERIES.items()),
    "never_sent": "scheduled sends that never left (interrupted or stopped run): scheduled - rows stored "
                  "(of every phase)",
}
_EARLY_STOPPING_RULE = ("LoadGen early stopping at c = 0.99: with --slo-p99-ms, n >= h_min(t) + t for the t "
                        "requests over the SLO (server test); otherwise enough requests for LoadGen's P99 "
                        "estimate (n >= 662)")


def decide_status(ok: np.ndarray, conn_err: np.ndarray, seq: np.ndarray, interrupted: bool,
                  crashed: str | None, errors: Mapping[str, int] | None = None) -> tuple[str, str]:
    """``completed`` | ``interrupted`` | ``failed`` and why.

    ``ok`` and ``conn_err`` are per-request booleans (succeeded; failed at the connection
    level: refused, reset, connect error, timeout). failed: a worker crashed; or no
    request succeeded; or at least half the requests failed at the connection level;
    or the target died: the last 5% of the schedule (at least 10 requests) all failed
    at the connection level. interrupted: SIGINT/SIGTERM stopped the run (what was
    gathered is kept). Otherwise completed, even with some HTTP errors (counted).
    """
    ok = np.asarray(ok, dtype=bool)
    conn = np.asarray(conn_err, dtype=bool)
    n = len(ok)
    if crashed:
        return "failed", f"a load worker crashed: {crashed}"
    if interrupted:
        return "interrupted", "stopped by a signal; rows gathered so far are kept"
    if n == 0:
        return "failed", "no request was sent"
    if not ok.any():
        top = max(errors, key=lambda k: errors[k]) if errors else "unknown"
        return "failed", f"no request succeeded (most common error: {top})"
    if conn.mean() >= 0.5:
        return "failed", f"{conn.mean():.0%} of requests failed at the connection level"
    tail = max(10, int(0.05 * n))
    if n >= 2 * tail:
        order = np.argsort(seq, kind="stable")
        if conn[order][-tail:].all():
            return "failed", f"the target stopped answering: the last {tail} requests all failed to connect"
    return "completed", "ran to the end of the schedule"


def _p(values: np.ndarray) -> Percentiles:
    return cast(Percentiles, percentiles(values))


def _col(cols: Mapping[str, Any], name: str) -> np.ndarray:
    return np.asarray(cols[name], dtype=np.float64)


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def latency_ci(lat_ok: np.ndarray, confidence: float) -> LatencyCI:
    """Distribution-free intervals of the latency percentiles (an end the sample cannot
    support, or a sample under 2 values, is None rather than an invented bound)."""
    out: dict[str, Any] = {"confidence": confidence, "method": "distribution-free order-statistic interval "
                           "[X(l), X(u)] with P(l <= Binomial(n, p) < u) >= confidence (perfkit.quantiles)"}
    n = int(np.count_nonzero(~np.isnan(lat_ok)))
    for key, p in CI_PERCENTILES.items():
        est = quantile_ci(lat_ok, p, confidence, method="order")
        out[key] = [_finite(est.lo), _finite(est.hi)] if n >= 2 else None
    return cast(LatencyCI, out)


def validity(lat_ok: np.ndarray, n_ok: int, duration: float, lag: Mapping[str, Any], status: str | None,
             scen: Mapping[str, Any]) -> Validity:
    """Validity after MLPerf LoadGen: enough time, enough queries, early stopping for the
    P99 claim, a generator that kept up with its schedule, and a completed run."""
    min_dur = float(scen.get("min_duration_s", 10.0))
    min_q = int(scen.get("min_queries", 100))
    lag_limit = float(scen.get("lag_p99_limit_ms", 10.0))
    late_limit = float(scen.get("late_fraction_limit", 0.01))
    es = stats.early_stopping_estimate(lat_ok, 0.99, 0.99)
    behind = bool(lag["n"] and ((lag["p99"] or 0) > lag_limit or (lag["late_fraction"] or 0) > late_limit))
    return cast(Validity, {
        "min_duration_s": min_dur, "min_duration_met": duration >= min_dur,
        "min_queries": min_q, "min_queries_met": n_ok >= min_q,
        "early_stopping": es, "early_stopping_met": bool(es["met"]), "early_stopping_p99_ms": es["bound"],
        "early_stopping_rule": _EARLY_STOPPING_RULE,
        "generator_kept_up": not behind,
        "generator_rule": (f"fell behind if schedule-lag p99 > {lag_limit:g} ms or more than {late_limit:.0%} "
                           f"of requests left > {lag['late_threshold_ms']:g} ms late"),
        "status_completed": status == "completed",
    })


def _defined(values: np.ndarray, name: str) -> DefinedPercentiles:
    return cast(DefinedPercentiles, {**_p(values), "definition": DEFINITIONS[name]})


def llm_fields(cols: Mapping[str, Any], ok: np.ndarray, duration: float) -> dict[str, Any]:
    """TTFT (from the actual and from the intended send), TPOT in both conventions, ITL in its
    three forms (pooled, per-request mean, per-request max) and token throughput.

    ``cols`` carries the per-request series (``tpot_incl_ttft_ms``, ``itl_request_mean_ms``
    as :func:`perfkit.bench.queries.load_columns` derives them) and every gap (``gap_ms``)."""
    lat = _col(cols, "latency_ms")
    toks = _col(cols, "output_tokens")
    total_tokens = float(np.nansum(toks[ok]))
    return {
        "ttft_ms": _p(_col(cols, "ttft_ms")[ok]),
        "ttft_intended_ms": _p(_col(cols, "ttft_intended_ms")[ok]),
        "tpot_ms": _p(_col(cols, "tpot_ms")[ok]),
        "tpot_incl_ttft_ms": _defined(_col(cols, "tpot_incl_ttft_ms")[ok], "tpot_incl_ttft_ms"),
        "itl_ms": _defined(_col(cols, "gap_ms"), "itl_ms"),
        "itl_request_mean_ms": _defined(_col(cols, "itl_request_mean_ms")[ok], "itl_request_mean_ms"),
        "itl_max_ms": _defined(_col(cols, "itl_ms_max")[ok], "itl_max_ms"),
        "e2e_ms": _p(lat[ok]),
        "output_tokens": int(total_tokens),
        "output_tokens_per_s": total_tokens / duration if duration > 0 else None,
    }


def goodput(cols: Mapping[str, Any], ok: np.ndarray, bounds: Mapping[str, float], duration: float,
            llm: bool) -> Goodput:
    """Requests that succeeded and met every bound, each bound on the one per-request series its
    key names (:data:`perfkit.names.SLO_SERIES`: ``ttft_ms`` on the TTFT from the intended
    send, ``itl_max_ms`` on each request's largest gap, ...); only ``latency_ms`` applies to a run
    that is not an LLM run. A request without the bounded value (no first token) is not good."""
    # SLO_METRICS: SLO_SERIES, and itl_ms (the largest gap) of runs stored before the keys were named
    series = SLO_METRICS if llm else {"latency_ms": "latency_ms"}
    good = ok.copy()
    for key, limit in bounds.items():
        if key in series:
            good &= np.nan_to_num(_col(cols, series[key]), nan=np.inf) <= limit
    n = len(ok)
    return {"slo": dict(bounds), "good": int(good.sum()), "n": n, "fraction": float(good.mean()) if n else None,
            "rps": float(good.sum()) / duration if duration > 0 else None}


def _slo(out: dict[str, Any], lat_ok: np.ndarray, scen: Mapping[str, Any]) -> Slo:
    slo: dict[str, Any] = {}
    p99_slo = scen.get("slo_p99_ms")
    if p99_slo:
        p99 = out["latency_ms"]["p99"]
        slo_es = stats.slo_early_stopping(lat_ok, 0.99, p99_slo)
        slo["p99_ms"] = {"limit": p99_slo, "observed": p99, "met": p99 is not None and p99 <= p99_slo,
                         "early_stopping": slo_es}
        out["validity"]["early_stopping_met"] = bool(slo_es["met"])
    if "goodput" in out:
        slo["goodput"] = out["goodput"]
    return cast(Slo, slo)


def summary_from_frame(cols: Mapping[str, Any], run: Mapping[str, Any]) -> RunSummary:
    """The summary from a run's column arrays (:func:`perfkit.bench.queries.load_columns`)
    and its ``runs`` row (pure)."""
    scen = run.get("scenario") or {}
    ok = np.asarray(cols["ok"], dtype=bool)
    n, n_ok = int(len(ok)), int(ok.sum())
    lat = _col(cols, "latency_ms")
    done = _col(cols, "done_unix_s")
    phases = Phases.of(scen)  # cols hold the measured phase only (perfkit.bench.queries.load_columns)
    duration = float(np.nanmax(done) - (run.get("t0_unix_s") or 0.0) - phases.warmup_s) if n else 0.0
    lat_ok = lat[ok]
    scheduled = scen.get("scheduled")
    stored = sum((cols.get("phases") or {}).values()) or n  # rows of every phase
    lag = stats.lag_summary((_col(cols, "sent_unix_s") - _col(cols, "intended_unix_s")) * 1e3,
                            float(scen.get("late_threshold_ms", 5.0)))
    out: dict[str, Any] = {
        "format_version": FORMAT_VERSION, "run_id": run.get("run_id"), "status": run.get("status"),
        "status_reason": run.get("status_reason"), "label": run.get("label"), "target": run.get("target"),
        "protocol": run.get("protocol"), "pattern": run.get("pattern"), "workers": scen.get("workers"),
        "scheduled": scheduled, "requests": n, "ok": n_ok,
        "never_sent": None if scheduled is None else max(0, int(scheduled) - stored),
        "errors": dict(cols.get("errors") or {}),
        "intended_rate_rps": run.get("intended_rate_rps"),
        "achieved_rate_rps": n_ok / duration if duration > 0 else None,
        "duration_s": duration,
        "latency_ms": _p(lat_ok),
        "service_ms": _p(_col(cols, "service_ms")[ok]),
        "connect_ms": _p(_col(cols, "connect_ms")),
        "percentile_definition": PERCENTILE_DEFINITION + " (successful requests only)",
        "definitions": DEFINITIONS,
        "latency_ci_ms": latency_ci(lat_ok, float(scen.get("confidence", 0.95))),
        "schedule_lag_ms": lag,
    }
    if cols.get("payload_classes"):
        out["payload_classes"] = dict(cols["payload_classes"])
    if cols.get("error_bodies"):
        out["error_bodies"] = list(cols["error_bodies"])
    block = phases.summary(cols.get("phases") or {"measure": n})
    if block is not None:
        out["phases"] = block
    out["validity"] = validity(lat_ok, n_ok, duration, lag, run.get("status"), scen)
    llm = run.get("protocol") == "openai"
    if llm:
        out.update(llm_fields(cols, ok, duration))
    if scen.get("slo"):
        out["goodput"] = goodput(cols, ok, scen["slo"], duration, llm)
    slo = _slo(out, lat_ok, scen)
    if slo:
        out["slo"] = slo
    v = out["validity"]
    out["valid"] = all(bool(v[k]) for k in ("min_duration_met", "min_queries_met", "early_stopping_met",
                                            "generator_kept_up", "status_completed"))
    return cast(RunSummary, out)


def summarize(con: duckdb.DuckDBPyConnection, run_id: str) -> RunSummary:
    """The summary of a stored run, recomputed from its rows (``run_id`` may be ``latest``)."""
    from perfkit.bench.queries import load_columns

    run = get_run(con, run_id)
    return summary_from_frame(load_columns(con, run["run_id"]), run)
