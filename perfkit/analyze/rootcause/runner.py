"""Run every root-cause rule over a set of runs from the store and rank the findings.

Proxy pairs: a run labelled ``proxy=<name>`` (anything but ``none``/``direct``)
is compared with a run of the set labelled ``proxy=none`` or ``proxy=direct``
(or, when no run says so, one without a proxy label at the same pattern and
intended rate), preferring the one that shares most other labels, then the
closest in time.
GPU findings use each run's own GPU series, else GPU exports attached to no
run whose samples fall inside the run's time window, or the sources a caller
names (see :func:`perfkit.analyze.rootcause.evidence.gpu_frame`); the finding
says which.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import duckdb
import pandas as pd

from perfkit.analyze import stats, twosample, vocabulary
from perfkit.analyze.rootcause import evidence, gpu as gpu_rule, rules, serving
from perfkit.analyze.rootcause.finding import SEVERITY_RANK, Finding, rank
from perfkit.errors import UsageError
from perfkit.store import runs

DIRECT = ("none", "direct")


def parse_pairs(text: str | None) -> list[tuple[str, str]]:
    """``"DIRECT,PROXIED[;DIRECT2,PROXIED2]"`` -> [(direct, proxied), ...]; empty -> []."""
    pairs = []
    for part in (text or "").split(";"):
        ids = [p.strip() for p in part.split(",") if p.strip()]
        if not ids:
            continue
        if len(ids) != 2:
            raise UsageError(f"proxy pair {part!r}: expected DIRECT_RUN,PROXIED_RUN")
        pairs.append((ids[0], ids[1]))
    return pairs


def _proxy_pairs(metas: list[dict[str, Any]]) -> list[tuple[str, str]]:
    def labels(m: dict[str, Any]) -> dict[str, Any]:
        return m.get("labels") or {}

    direct_all = [m for m in metas if labels(m).get("proxy") in DIRECT]
    proxied = [m for m in metas if labels(m).get("proxy") and labels(m).get("proxy") not in DIRECT]
    pairs = []
    for p in proxied:
        direct = direct_all or [  # no run says proxy=none: runs without a proxy label at the same load
            m for m in metas if "proxy" not in labels(m) and m.get("pattern") == p.get("pattern")
            and m.get("intended_rate_rps") == p.get("intended_rate_rps")]
        if not direct:
            continue
        others = {k: v for k, v in labels(p).items() if k != "proxy"}

        def score(d: dict[str, Any]) -> tuple[int, float]:
            shared = sum(1 for k, v in others.items() if labels(d).get(k) == v)
            dt = abs((d.get("t0_unix_s") or 0) - (p.get("t0_unix_s") or 0))
            return (-shared, dt)

        best = min(direct, key=score)
        pairs.append((best["run_id"], p["run_id"]))
    return pairs


def run_findings(con: duckdb.DuckDBPyConnection, run_id: str, server_kind: str | None = None) -> list[Finding]:
    """Single-run rules (a, b, e, f, cold starts, KV cache, availability, SLO).

    ``server_kind``: the vocabulary's kind to read the server's metrics as (None: detected).
    """
    return findings_from_evidence(con, evidence.load_run(con, run_id, server_kind=server_kind))


def analyze_run(con: duckdb.DuckDBPyConnection, run_id: str, slo_p99_ms: float | None = None,
                server_kind: str | None = None) -> dict[str, Any]:
    """Everything about one run, each figure with its n: percentiles with exact intervals,
    availability and MTTR, schedule lag, where the time goes, the SLO verdict and the findings.

    All request-level work runs in DuckDB (one quantile pass, one per-window group-by, a few
    aggregates), so a 10-million-request run is analysed in seconds and bounded memory.
    """
    ev = evidence.load_run(con, run_id, server_kind=server_kind)
    pct = runs.percentiles(con, ev.run_id, qs=(0.5, 0.9, 0.95, 0.99, 0.999))
    av = stats.availability(ev.windows)
    episodes = stats.fault_episodes(ev.windows)
    out = {"run_id": ev.run_id, "totals": ev.totals, "percentiles_ms": {q: e.to_dict() for q, e in pct.items()},
           "availability": {k: v.to_dict() for k, v in av.items()},
           "mttr": stats.mttr(episodes).to_dict(), "fault_episodes": len(episodes),
           "schedule_lag_ms": ev.lag, "breakdown": ev.breakdown, "windows": len(ev.windows)}
    scen = ev.meta.get("scenario") or {}
    slo_p99_ms = slo_p99_ms if slo_p99_ms is not None else (scen.get("slo_p99_ms") if isinstance(scen, dict) else None)
    if slo_p99_ms is not None:
        over = runs.count_over(con, ev.run_id, float(slo_p99_ms))
        out["slo_p99"] = stats.slo_verdict_from_counts(pct[0.99].n, over, 0.99)
    bounds = scen.get("slo") if isinstance(scen, dict) else None
    if bounds:   # per-request bounds (perfkit bench --slo ttft_ms=...,tpot_ms=...): goodput and LLM SLOs
        out["goodput"] = runs.goodput(con, ev.run_id, bounds)
        for key in bounds:  # each LLM bound's P99 verdict, on the series its key names (runs.SLO_METRICS)
            if key != "latency_ms" and key in runs.SLO_METRICS:
                metric = runs.SLO_METRICS[key]
                p99 = runs.percentiles(con, ev.run_id, metric, qs=(0.99,))[0.99]
                over = runs.count_over(con, ev.run_id, float(bounds[key]), metric)
                out[f"slo_{key}_p99"] = {"p99": p99.to_dict(), "limit_ms": bounds[key],
                                         "verdict": stats.slo_verdict_from_counts(p99.n, over, 0.99)}
    out["findings"] = findings_from_evidence(con, ev)
    return out


def findings_from_evidence(con: duckdb.DuckDBPyConnection, ev: evidence.RunEvidence) -> list[Finding]:
    """The single-run rules over already loaded evidence."""
    rid = ev.run_id
    found: list[Finding] = []
    scen = ev.meta.get("scenario") or {}
    summary = ev.meta.get("summary") or {}
    slo_ms = (scen.get("slo_p99_ms") if isinstance(scen, dict) else None) or \
        (summary.get("slo_p99_ms") if isinstance(summary, dict) else None)
    found += rules.schedule_lag(rid, ev.lag, ev.windows)
    found += rules.availability(rid, ev.windows, p99_limit_ms=float(slo_ms) if slo_ms else None)
    if slo_ms:
        p99 = runs.percentiles(con, rid, qs=(0.99,))[0.99]
        found += rules.slo(rid, p99, float(slo_ms), runs.count_over(con, rid, float(slo_ms)))
    found += rules.queueing(rid, ev.breakdown, ev.server_totals, ev.totals["arrival_rate_rps"],
                            ev.server_metrics)
    found += rules.load_latency(rid, ev.windows)
    found += rules.littles_law(rid, ev.totals["arrival_rate_rps"], ev.breakdown.get("mean_latency_ms") or 0.0,
                                   ev.server_totals)
    found += rules.fixed_batching(rid, ev.server, ev.server_totals, ev.max_batch)
    found += rules.padding_waste(rid, ev.server_totals, ev.max_batch)
    found += serving.cold_starts(rid, ev.loads, ev.windows)
    found += serving.kv_cache_pressure(rid, ev.server, ev.server_totals)
    found += rules.regressions_in_time(rid, ev.windows)
    found += rules.correlations(rid, ev.windows, ev.telemetry)
    return found


def proxy_findings(con: duckdb.DuckDBPyConnection, direct_id: str, proxied_id: str,
                   max_rows: int = 50_000) -> list[Finding]:
    qs = (0.5, 0.9, 0.99)
    direct = runs.percentiles(con, direct_id, qs=qs)
    proxied = runs.percentiles(con, proxied_id, qs=qs)
    shift = twosample.hodges_lehmann(runs.values(con, proxied_id, max_rows=max_rows),
                                  runs.values(con, direct_id, max_rows=max_rows), 0.98)
    return rules.proxy_overhead(direct_id, proxied_id, direct, proxied, shift)


def proxy_pairs(con: duckdb.DuckDBPyConnection, run_ids: str | Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(direct, proxied) run pairs among the runs (labels ``proxy=none`` / ``proxy=<name>``)."""
    ids = runs.resolve_run_ids(con, run_ids)
    return _proxy_pairs([runs.run_meta(con, r) for r in ids])


def proxy_comparison(con: duckdb.DuckDBPyConnection, direct_id: str, proxied_id: str,
                     qs: Sequence[float] = (0.5, 0.9, 0.99, 0.999)) -> pd.DataFrame:
    """The per-percentile table of a direct and a proxied run (see :func:`.rules.proxy_table`)."""
    return rules.proxy_table(runs.percentiles(con, direct_id, qs=qs), runs.percentiles(con, proxied_id, qs=qs))


def diagnose(con: duckdb.DuckDBPyConnection, run_ids: str | Sequence[str] | None = None,
             gpu: bool = True, proxy_pairs: Sequence[tuple[str, str]] = (),
             gpu_sources: Sequence[int] = (), server_kind: str | None = None) -> list[Finding]:
    """Ranked findings over the runs (see :func:`perfkit.store.runs.resolve_run_ids`).

    ``proxy_pairs`` names (direct, proxied) runs explicitly; runs labelled
    ``proxy=...`` are paired automatically as well. GPU findings come from each
    run's own GPU telemetry or exports inside its time window; ``gpu_sources``
    names GPU export sources to use instead (``gpu=False``: no GPU rule).
    ``server_kind`` reads every run's server metrics as that kind of the
    vocabulary (:data:`perfkit.analyze.vocabulary.SERVER_KINDS`); None detects it per run.
    """
    if server_kind is not None and server_kind not in vocabulary.SERVER_KINDS:
        raise UsageError(f"server kind {server_kind!r}: one of {', '.join(vocabulary.SERVER_KINDS)}")
    ids = runs.resolve_run_ids(con, run_ids)
    metas = [runs.run_meta(con, r) for r in ids]
    found: list[Finding] = []
    for rid in ids:
        found += run_findings(con, rid, server_kind)
    pairs = [(runs.run_meta(con, d)["run_id"], runs.run_meta(con, p)["run_id"]) for d, p in proxy_pairs]
    pairs += [pair for pair in _proxy_pairs(metas) if pair not in pairs]
    for direct_id, proxied_id in pairs:
        found += proxy_findings(con, direct_id, proxied_id)
    if gpu and gpu_sources:
        frame, where = evidence.gpu_frame(con, source_ids=gpu_sources)
        found += gpu_rule.gpu_memory(frame, where, ids)
    elif gpu:
        for rid in ids:
            frame, where = evidence.gpu_frame(con, rid)
            found += gpu_rule.gpu_memory(frame, where, [rid])
    return rank(found)


def runs_overview(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> pd.DataFrame:
    """One row per run: label, requests, P50/P99 with their interval bounds (``p50_lo_ms``, ...), error and
    availability percentages, schedule lag."""
    rows = []
    for rid in run_ids:
        meta = runs.run_meta(con, rid)
        tot = runs.totals(con, rid)
        pct = runs.percentiles(con, rid, qs=(0.5, 0.99))
        av = stats.availability(runs.windows(con, rid))
        lag = runs.schedule_lag(con, rid)
        rows.append({"run_id": rid, "label": meta.get("label"), "requests": tot["requests"],
                     "arrival_rps": tot["arrival_rate_rps"],
                     "p50_ms": pct[0.5].value, "p50_lo_ms": pct[0.5].lo, "p50_hi_ms": pct[0.5].hi,
                     "p99_ms": pct[0.99].value, "p99_lo_ms": pct[0.99].lo, "p99_hi_ms": pct[0.99].hi,
                     "errors_pct": 100 * (1 - tot["ok"] / tot["requests"]) if tot["requests"] else math.nan,
                     "availability_1s_windows_pct": 100 * av["window"].value,
                     "schedule_lag_p99_ms": lag["p99_ms"]})
    return pd.DataFrame(rows)


def batching_table(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> pd.DataFrame:
    """Per run whose server counts executions: batch size, padding, queue wait and compute time.

    Whole-run increases between the first and the last scrape of the run.
    """
    rows = []
    for rid in run_ids:
        ev = evidence.load_run(con, rid)
        t = ev.server_totals
        if not t.get("executions"):
            continue
        eff = stats.batch_efficiency(t.get("inferences", 0.0), t["executions"], ev.max_batch or 0,
                                     ev.batch_buckets or None)
        computed = t.get("batch_rows", 0.0) + t.get("padding_rows", 0.0)
        rows.append({"run_id": rid, "label": ev.meta.get("label"), "max_batch": ev.max_batch,
                     "inference_calls": eff["inference_calls"], "requests_per_call": eff["mean_batch_size"],
                     "batch_fill": eff["efficiency"],
                     "padding_share": t.get("padding_rows", 0.0) / computed if computed else math.nan,
                     "mean_queue_wait_ms": _mean_ms(t, "queue_time"),
                     "mean_inference_ms": _mean_ms(t, "compute_time"),
                     "mean_latency_ms": ev.breakdown.get("mean_latency_ms")})
    return pd.DataFrame(rows)


def _mean_ms(totals: dict[str, float], signal: str) -> float:
    """Mean milliseconds per request of a time signal from its whole-run sum and count (NaN without)."""
    total, count = totals.get(f"{signal}_sum"), totals.get(f"{signal}_count")
    return 1000 * total / count if total is not None and count else math.nan


def proxy_tables(con: duckdb.DuckDBPyConnection, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """The per-percentile direct/proxied comparison for every pair, stacked."""
    frames = []
    for direct_id, proxied_id in pairs:
        t = proxy_comparison(con, direct_id, proxied_id)
        t.insert(0, "proxied_run", proxied_id)
        t.insert(0, "direct_run", direct_id)
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def headline_figures(findings: Sequence[Finding], batching: pd.DataFrame, proxy: pd.DataFrame,
                     gpu_source: str) -> dict[str, str]:
    """The root-cause report's index figures (strings with units and counts)."""
    ranked = rank(findings)
    serious = sum(1 for f in ranked if SEVERITY_RANK[f.severity] >= 3)
    out = {"Findings": f"{len(ranked)} ({serious} high or critical)",
           "Top finding": ranked[0].title if ranked else "none supported by the data"}
    if not batching.empty and batching["padding_share"].notna().any():
        worst = batching.sort_values("padding_share", ascending=False).iloc[0]
        best = batching.sort_values("mean_queue_wait_ms").iloc[0]
        out["Batching"] = (f"{worst['padding_share']:.0%} padding, queue wait {worst['mean_queue_wait_ms']:.1f} ms "
                           f"vs {best['mean_queue_wait_ms']:.1f} ms (calls n={int(worst['inference_calls']):,})")
    if not proxy.empty:
        # Several direct/proxied pairs: the median over the pairs, and how many there were.
        by = proxy.groupby("percentile")[["added_ms", "added_share"]].median()
        first = proxy.drop_duplicates(["direct_run", "proxied_run"]) if "direct_run" in proxy else proxy.iloc[:1]
        parts = [f"{q} {by.loc[q, 'added_ms']:+.2f} ms ({by.loc[q, 'added_share']:+.0%})"
                 for q in ("p50", "p99") if q in by.index]
        n_pairs = len(first)
        basis = (f"median of {n_pairs} pairs" if n_pairs > 1 else
                 f"n={int(proxy['n_direct'].iloc[0]):,}/{int(proxy['n_proxied'].iloc[0]):,}")
        out["Proxy added"] = ", ".join(parts) + f" ({basis})"
    out["GPU data"] = gpu_source
    return out
