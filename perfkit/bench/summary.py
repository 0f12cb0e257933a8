"""The run summary (DESIGN.md's summary JSON), computed exactly from the stored rows.

:func:`summarize` reads every ``requests`` row of a run and returns the summary
dict; :func:`summary_from_frame` is the pure part (arrays in, dict out), so the
arithmetic is testable without a database. Latency percentiles are over the
requests that succeeded (errors are counted in ``errors``), from the
*intended* send time; ``service_ms`` is the same from the actual send, shown so
that the difference (the coordinated-omission gap) is visible.
"""
from __future__ import annotations

import json
from typing import Any

import duckdb
import numpy as np

from perfkit.bench import stats
from perfkit.store import get_run

FORMAT_VERSION = 1
CONNECTION_ERRORS = ("connection_refused", "connect_error", "connection_reset", "timeout")
CI_PERCENTILES = {"p50": 0.50, "p99": 0.99, "p999": 0.999}
_COLS = ("seq", "intended_unix_s", "sent_unix_s", "done_unix_s", "latency_ms", "service_ms",
         "ttft_ms", "tpot_ms", "itl_ms_max", "output_tokens")


def decide_status(ok: np.ndarray, conn_err: np.ndarray, seq: np.ndarray, interrupted: bool,
                  crashed: str | None, errors: dict[str, int] | None = None) -> tuple[str, str]:
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
        top = max(errors, key=errors.get) if errors else "unknown"
        return "failed", f"no request succeeded (most common error: {top})"
    if conn.mean() >= 0.5:
        return "failed", f"{conn.mean():.0%} of requests failed at the connection level"
    tail = max(10, int(0.05 * n))
    if n >= 2 * tail:
        order = np.argsort(seq, kind="stable")
        if conn[order][-tail:].all():
            return "failed", f"the target stopped answering: the last {tail} requests all failed to connect"
    return "completed", "ran to the end of the schedule"


def _p(v: np.ndarray) -> dict[str, Any]:
    return stats.percentiles(v)


def summary_from_frame(cols: dict[str, np.ndarray], run: dict[str, Any]) -> dict[str, Any]:
    """The summary dict from a run's column arrays and its ``runs`` row (pure)."""
    scen = run.get("scenario") or {}
    ok = np.asarray(cols["ok"], dtype=bool)
    n = int(len(ok))
    lat = np.asarray(cols["latency_ms"], dtype=np.float64)
    svc = np.asarray(cols["service_ms"], dtype=np.float64)
    t0 = run.get("t0_unix_s") or 0.0
    done = np.asarray(cols["done_unix_s"], dtype=np.float64)
    duration = float(np.nanmax(done) - t0) if n else 0.0
    errors: dict[str, int] = dict(cols.get("errors") or {})
    lat_ok = lat[ok]
    conf = float(scen.get("confidence", 0.95))
    out: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "run_id": run.get("run_id"),
        "status": run.get("status"),
        "status_reason": run.get("status_reason"),
        "label": run.get("label"),
        "target": run.get("target"),
        "protocol": run.get("protocol"),
        "pattern": run.get("pattern"),
        "workers": scen.get("workers"),
        "scheduled": scen.get("scheduled"),
        "requests": n,
        "ok": int(ok.sum()),
        "errors": errors,
        "intended_rate_rps": run.get("intended_rate_rps"),
        "achieved_rate_rps": (float(ok.sum()) / duration) if duration > 0 else None,
        "duration_s": duration,
        "latency_ms": _p(lat_ok),
        "service_ms": _p(svc[ok]),
        "percentile_definition": stats.PERCENTILE_DEFINITION + " (successful requests only)",
        "latency_ci_ms": {"confidence": conf, "method": "distribution-free order-statistic interval "
                          "(binomial), scipy.stats.quantile_test"},
    }
    for key, p in CI_PERCENTILES.items():
        ci = stats.order_statistic_ci(lat_ok, p, conf)
        out["latency_ci_ms"][key] = list(ci) if ci else None

    sent = np.asarray(cols["sent_unix_s"], dtype=np.float64)
    intended = np.asarray(cols["intended_unix_s"], dtype=np.float64)
    lag_ms = (sent - intended) * 1e3
    late_ms = float(scen.get("late_threshold_ms", 5.0))
    lag = stats.lag_summary(lag_ms, late_ms)
    out["schedule_lag_ms"] = lag

    if cols.get("payload_classes"):
        out["payload_classes"] = dict(cols["payload_classes"])

    # Validity, after MLPerf LoadGen: enough time, enough queries, early stopping for
    # the P99 claim, and a generator that kept up with its schedule.
    min_dur = float(scen.get("min_duration_s", 10.0))
    min_q = int(scen.get("min_queries", 100))
    lag_limit = float(scen.get("lag_p99_limit_ms", 10.0))
    late_limit = float(scen.get("late_fraction_limit", 0.01))
    es = stats.early_stopping_estimate(lat_ok, 0.99, 0.99)
    behind = bool(lag["n"] and ((lag["p99"] or 0) > lag_limit or (lag["late_fraction"] or 0) > late_limit))
    validity = {
        "min_duration_s": min_dur, "min_duration_met": duration >= min_dur,
        "min_queries": min_q, "min_queries_met": int(ok.sum()) >= min_q,
        "early_stopping": es, "early_stopping_met": bool(es["met"]),
        "early_stopping_p99_ms": es["bound"],
        "early_stopping_rule": ("LoadGen early stopping at c = 0.99: with --slo-p99-ms, n >= h_min(t) + t "
                                "for the t requests over the SLO (server test); otherwise enough requests "
                                "for LoadGen's P99 estimate (n >= 662)"),
        "generator_kept_up": not behind,
        "generator_rule": (f"fell behind if schedule-lag p99 > {lag_limit:g} ms or more than "
                           f"{late_limit:.0%} of requests left > {late_ms:g} ms late"),
        "status_completed": run.get("status") == "completed",
    }
    out["validity"] = validity
    out["valid"] = False  # decided at the end, once the SLO's early-stopping test is in

    slo: dict[str, Any] = {}
    p99_slo = scen.get("slo_p99_ms")
    if p99_slo:
        p99 = out["latency_ms"]["p99"]
        slo_es = stats.slo_early_stopping(lat_ok, 0.99, p99_slo)
        slo["p99_ms"] = {"limit": p99_slo, "observed": p99, "met": p99 is not None and p99 <= p99_slo,
                         "early_stopping": slo_es}
        validity["early_stopping_met"] = bool(slo_es["met"])

    if run.get("protocol") == "openai":
        ttft = np.asarray(cols["ttft_ms"], dtype=np.float64)
        tpot = np.asarray(cols["tpot_ms"], dtype=np.float64)
        itl = np.asarray(cols["itl_ms_max"], dtype=np.float64)
        toks = np.asarray(cols["output_tokens"], dtype=np.float64)
        out["ttft_ms"] = _p(ttft[ok])
        out["tpot_ms"] = _p(tpot[ok])
        gaps = np.asarray(cols.get("gap_ms", np.empty(0)), dtype=np.float64)
        out["itl_ms"] = {**_p(gaps), "definition": "every gap between consecutive tokens of the successful "
                         "requests (as vllm bench serve)"}
        out["itl_max_ms"] = {**_p(itl[ok]), "definition": "per request, the largest gap between tokens"}
        out["e2e_ms"] = out["latency_ms"]
        total_tokens = float(np.nansum(toks[ok]))
        out["output_tokens"] = int(total_tokens)
        out["output_tokens_per_s"] = total_tokens / duration if duration > 0 else None
    else:
        ttft = tpot = itl = None

    bounds = scen.get("slo") or {}
    if bounds:
        good = ok.copy()
        series = {"latency_ms": lat, "ttft_ms": ttft, "tpot_ms": tpot, "itl_ms": itl}
        for key, limit in bounds.items():
            v = series.get(key)
            if v is None:
                continue
            good &= np.nan_to_num(v, nan=np.inf) <= limit
        out["goodput"] = {"slo": bounds, "good": int(good.sum()), "n": n,
                          "fraction": float(good.mean()) if n else None,
                          "rps": float(good.sum()) / duration if duration > 0 else None}
        slo["goodput"] = out["goodput"]
    if slo:
        out["slo"] = slo
    out["valid"] = all(bool(validity[k]) for k in ("min_duration_met", "min_queries_met", "early_stopping_met",
                                                    "generator_kept_up", "status_completed"))
    return out


def load_columns(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """A run's rows column-wise, numeric only (NULL -> NaN), in seq order, plus the
    per-request booleans ``ok``/``conn_err`` and the ``errors``/``payload_classes``
    counts (computed in SQL, so no per-row strings are held in Python)."""
    conn_list = ", ".join("?" for _ in CONNECTION_ERRORS)
    sql = (f"SELECT {', '.join(_COLS)}, error_kind IS NULL AS ok, "
           f"coalesce(error_kind IN ({conn_list}), false) AS conn_err "
           "FROM requests WHERE run_id = ? ORDER BY seq")
    res = con.execute(sql, [*CONNECTION_ERRORS, run_id]).fetchnumpy()
    out: dict[str, Any] = {}
    for k, v in res.items():
        if isinstance(v, np.ma.MaskedArray):
            v = v.astype(np.float64).filled(np.nan) if k not in ("ok", "conn_err") else v.filled(False)
        out[k] = np.asarray(v)
    out["errors"] = {str(k): int(c) for k, c in con.execute(
        "SELECT error_kind, count(*) FROM requests WHERE run_id = ? AND error_kind IS NOT NULL "
        "GROUP BY 1 ORDER BY 1", [run_id]).fetchall()}
    out["gap_ms"] = con.execute(
        "SELECT g.gap_ms FROM token_gaps g JOIN requests r ON r.run_id = g.run_id AND r.seq = g.seq "
        "WHERE g.run_id = ? AND r.error_kind IS NULL", [run_id]).fetchnumpy()["gap_ms"]
    out["payload_classes"] = {str(k): int(c) for k, c in con.execute(
        "SELECT payload_class, count(*) FROM requests WHERE run_id = ? AND payload_class IS NOT NULL "
        "GROUP BY 1 ORDER BY 1", [run_id]).fetchall()}
    return out


def summarize(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """The summary of a stored run, recomputed from its rows (``run_id`` may be ``latest``)."""
    run = get_run(con, run_id)
    return summary_from_frame(load_columns(con, run["run_id"]), run)


def dumps(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"
