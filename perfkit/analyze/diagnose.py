"""Run every root-cause rule over a set of runs from the store and rank the findings.

Proxy pairs: a run labelled ``proxy=<name>`` (anything but ``none``/``direct``)
is compared with a run of the set labelled ``proxy=none`` or ``proxy=direct``,
preferring the one that shares most other labels (then the closest in time).
GPU findings use each run's own NVML/dcgm series, or, when no run has any, the
newest recorded GPU export in the store (said so in the finding).
"""
from __future__ import annotations

from typing import Sequence

import duckdb

from perfkit.analyze import abtest, evidence, rootcause, runs

DIRECT = ("none", "direct")


def _proxy_pairs(metas: list[dict]) -> list[tuple[str, str]]:
    def labels(m: dict) -> dict:
        return m.get("labels") or {}

    direct = [m for m in metas if labels(m).get("proxy") in DIRECT]
    proxied = [m for m in metas if labels(m).get("proxy") and labels(m).get("proxy") not in DIRECT]
    pairs = []
    for p in proxied:
        if not direct:
            break
        others = {k: v for k, v in labels(p).items() if k != "proxy"}

        def score(d: dict) -> tuple:
            shared = sum(1 for k, v in others.items() if labels(d).get(k) == v)
            dt = abs((d.get("t0_unix_s") or 0) - (p.get("t0_unix_s") or 0))
            return (-shared, dt)

        best = min(direct, key=score)
        pairs.append((best["run_id"], p["run_id"]))
    return pairs


def run_findings(con: duckdb.DuckDBPyConnection, run_id: str) -> list[rootcause.Finding]:
    """Single-run rules (a, b, e, f, availability, SLO)."""
    ev = evidence.load_run(con, run_id)
    rid = ev.run_id
    found: list[rootcause.Finding] = []
    found += rootcause.schedule_lag(rid, ev.lag, ev.windows)
    found += rootcause.availability(rid, ev.windows)
    scen = ev.meta.get("scenario") or {}
    summary = ev.meta.get("summary") or {}
    slo_ms = (scen.get("slo_p99_ms") if isinstance(scen, dict) else None) or \
        (summary.get("slo_p99_ms") if isinstance(summary, dict) else None)
    if slo_ms:
        p99 = runs.percentiles(con, rid, qs=(0.99,))[0.99]
        over = int(con.execute("SELECT count(*) FROM requests WHERE run_id = ? AND error_kind IS NULL "
                               "AND latency_ms > ?", [rid, float(slo_ms)]).fetchone()[0])
        found += rootcause.slo(rid, p99, float(slo_ms), over)
    found += rootcause.queueing(rid, ev.breakdown, ev.server_totals)
    found += rootcause.load_latency(rid, ev.windows)
    found += rootcause.littles_law(rid, ev.totals["arrival_rate_rps"], ev.breakdown.get("mean_latency_ms") or 0.0,
                                   ev.server_totals)
    found += rootcause.fixed_batching(rid, ev.server, ev.server_totals, ev.max_batch)
    found += rootcause.padding_waste(rid, ev.server_totals, ev.max_batch)
    found += rootcause.regressions_in_time(rid, ev.windows)
    found += rootcause.correlations(rid, ev.windows, ev.telemetry)
    return found


def proxy_findings(con: duckdb.DuckDBPyConnection, direct_id: str, proxied_id: str,
                   max_rows: int = 50_000) -> list[rootcause.Finding]:
    qs = (0.5, 0.9, 0.99)
    direct = runs.percentiles(con, direct_id, qs=qs)
    proxied = runs.percentiles(con, proxied_id, qs=qs)
    shift = abtest.hodges_lehmann(runs.values(con, proxied_id, max_rows=max_rows),
                                  runs.values(con, direct_id, max_rows=max_rows), 0.98)
    return rootcause.proxy_overhead(direct_id, proxied_id, direct, proxied, shift)


def proxy_pairs(con: duckdb.DuckDBPyConnection, run_ids: str | Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(direct, proxied) run pairs among the runs (labels ``proxy=none`` / ``proxy=<name>``)."""
    ids = runs.resolve_run_ids(con, run_ids)
    return _proxy_pairs([runs.run_meta(con, r) for r in ids])


def proxy_comparison(con: duckdb.DuckDBPyConnection, direct_id: str, proxied_id: str,
                     qs: Sequence[float] = (0.5, 0.9, 0.99, 0.999)):
    """The per-percentile table of a direct and a proxied run (see :func:`rootcause.proxy_table`)."""
    return rootcause.proxy_table(runs.percentiles(con, direct_id, qs=qs), runs.percentiles(con, proxied_id, qs=qs))


def diagnose(con: duckdb.DuckDBPyConnection, run_ids: str | Sequence[str] | None = None,
             gpu: bool = True) -> list[rootcause.Finding]:
    """Ranked findings over the runs (see :func:`perfkit.analyze.runs.resolve_run_ids`)."""
    ids = runs.resolve_run_ids(con, run_ids)
    metas = [runs.run_meta(con, r) for r in ids]
    found: list[rootcause.Finding] = []
    for rid in ids:
        found += run_findings(con, rid)
    for direct_id, proxied_id in _proxy_pairs(metas):
        found += proxy_findings(con, direct_id, proxied_id)
    if gpu:
        seen_run_gpu = False
        for rid in ids:
            frame, where = evidence.gpu_frame(con, rid)
            if where == "run":
                seen_run_gpu = True
                found += rootcause.gpu_memory(frame, where, [rid])
        if not seen_run_gpu:
            frame, where = evidence.gpu_frame(con, None)
            found += rootcause.gpu_memory(frame, where)
    return rootcause.rank(found)
