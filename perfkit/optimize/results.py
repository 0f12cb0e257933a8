"""The tables of notebook 08 from a ``perfkit optimize`` record and its stored runs.

Accuracy: the share of the held-out test split classified right, with its exact
Clopper–Pearson interval; "kept" is that share over FP32's (FP32's own point
value as the denominator), and "within 99 %" is MLPerf's bar on the point value.
Latency: P50/P99 of every request of the variant's runs pooled, with the exact
order-statistic interval; the faster/slower/same verdict against FP32 is the
replicated A/B judge (:func:`perfkit.analyze.abtest.compare_runs`), whose
intervals do take the run-to-run variation into account. Kernel: the model
call alone on one 32-image batch in-process (median), which shows what the
serving path's overheads hide.
Throughput: the CPU-bound capacity of one core, 1 / (server CPU seconds per
request) over the benchmark, since a run at a fixed open-loop rate does not
saturate the server. Cost per 1,000 queries: the machine's hourly price shared
by its cores, times the CPU time of 1,000 queries.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from perfkit.quantiles import Estimate, proportion_ci, quantile_ci

MLPERF_KEPT = 0.99


def _pooled(con: Any, run_ids: list[str], q: float) -> Estimate:
    from perfkit.store import runs

    values = np.concatenate([runs.values(con, rid) for rid in run_ids]) if run_ids else np.array([])
    if len(values) == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0.95, "order-statistic", "ms", "no data")
    return quantile_ci(values, q)


def variant_table(con: Any, record: Mapping[str, Any], price_per_hour: float) -> pd.DataFrame:
    """One row per variant: accuracy and its interval, kept share, P50/P99 with intervals, size, RSS,
    CPU per request, capacity and cost per 1,000 queries, the ratios to FP32 and Pareto membership."""
    cores = int(record.get("machine_cores") or 1)
    rows = []
    for v in record["variants"]:
        acc = proportion_ci(v["correct"], v["tested"])
        p50, p99 = _pooled(con, v["run_ids"], 0.5), _pooled(con, v["run_ids"], 0.99)
        cpu = v["cpu_s"] / v["requests"] if v["requests"] else math.nan
        rows.append({
            "variant": v["name"], "technique": v["technique"], "about": v["about"],
            "hidden": "x".join(str(h) for h in v["hidden"]), "size_kb": v["size_bytes"] / 1024,
            "accuracy": acc.value, "acc_lo": acc.lo, "acc_hi": acc.hi, "tested": acc.n,
            "p50_ms": p50.value, "p50_lo": p50.lo, "p50_hi": p50.hi,
            "p99_ms": p99.value, "p99_lo": p99.lo, "p99_hi": p99.hi, "requests": p99.n,
            "peak_rss_mb": v["peak_rss_bytes"] / 2**20, "kernel_ms": v["kernel_ms"],
            "cpu_ms_per_request": 1000 * cpu,
            "capacity_rps_per_core": 1.0 / cpu if cpu > 0 else math.nan,
            "cost_per_1k_queries": price_per_hour / cores * 1000 * cpu / 3600.0,
        })
    frame = pd.DataFrame(rows)
    return with_ratios(frame)


def with_ratios(frame: pd.DataFrame, reference: str = "fp32") -> pd.DataFrame:
    """Add accuracy kept (with interval), the 99 % bar, ratios to ``reference`` and the Pareto flag."""
    out = frame.copy()
    ref = out.loc[out["variant"] == reference].iloc[0]
    out["kept_pct"] = 100 * out["accuracy"] / ref["accuracy"]
    out["kept_lo"] = 100 * out["acc_lo"] / ref["accuracy"]
    out["kept_hi"] = 100 * out["acc_hi"] / ref["accuracy"]
    out["within_99"] = out["accuracy"] >= MLPERF_KEPT * ref["accuracy"]
    for col, ratio in (("p50_ms", "p50_ratio"), ("p99_ms", "p99_ratio"), ("peak_rss_mb", "rss_ratio"),
                       ("size_kb", "size_ratio"), ("capacity_rps_per_core", "throughput_ratio"),
                       ("kernel_ms", "kernel_ratio")):
        out[ratio] = out[col] / ref[col]
    out["pareto"] = pareto(out["p99_ms"].to_numpy(), out["accuracy"].to_numpy())
    return out


def pareto(latency: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """True where no other point is at least as fast and as accurate, and strictly better in one."""
    flags = []
    for i in range(len(latency)):
        better = ((latency <= latency[i]) & (accuracy >= accuracy[i])
                  & ((latency < latency[i]) | (accuracy > accuracy[i])))
        flags.append(not better.any())
    return np.array(flags, dtype=bool)


#: The (low, high) columns of each interval in :func:`comparison_frame` and :func:`edge_table`
#: (``perfkit.report.table(frame, intervals=INTERVALS)`` merges them into their value's cell).
INTERVALS = {"accuracy_pct": ("accuracy_lo_pct", "accuracy_hi_pct"), "kept_pct": ("kept_lo", "kept_hi"),
             "p99_ms": ("p99_lo", "p99_hi"), "p90_ms": ("p90_lo_ms", "p90_hi_ms")}


def comparison_frame(table: pd.DataFrame, verdict_table: pd.DataFrame) -> pd.DataFrame:
    """Each variant against FP32 as notebook 08 shows it: accuracy (%) and the share of FP32's kept, with
    their intervals, MLPerf's 99 % bar, P50 and P99 (with its interval), the P99 and throughput ratios,
    the frontier, and the replicated A/B's reading of P99 and its verdict (none for FP32 itself)."""
    out = table[["variant", "technique"]].assign(
        accuracy_pct=100 * table["accuracy"], accuracy_lo_pct=100 * table["acc_lo"],
        accuracy_hi_pct=100 * table["acc_hi"])
    out = out.join(table[["kept_pct", "kept_lo", "kept_hi", "within_99", "p50_ms", "p99_ms", "p99_lo", "p99_hi",
                          "p99_ratio", "throughput_ratio", "pareto"]])
    out = out.rename(columns={"within_99": "within 99 %", "pareto": "on the frontier"})
    judged = verdict_table[["variant", "p99", "verdict", "runs"]].rename(columns={"p99": "P99 vs FP32 (A/B)"})
    return out.merge(judged, on="variant", how="left")


def verdicts(con: Any, record: Mapping[str, Any], reference: str = "fp32") -> pd.DataFrame:
    """Each variant against ``reference`` by the replicated A/B judge on P50 and P99 latency."""
    from perfkit.analyze import abtest

    base = f"optimize={record['optimize_id']},variant={reference}"
    rows = []
    for v in record["variants"]:
        if v["name"] == reference:
            continue
        verdict = abtest.compare_runs(con, base, f"optimize={record['optimize_id']},variant={v['name']}")
        p99 = next(m for m in verdict.metrics if m.statistic == "p99")
        rows.append({"variant": v["name"], "p99": direction(p99.decision, p99.difference, p99.margin),
                     "verdict": verdict.verdict,
                     "runs": f"{len(verdict.baseline.runs)} + {len(verdict.candidate.runs)}",
                     "why": abtest.sentence(verdict)})
    return pd.DataFrame(rows, columns=["variant", "p99", "verdict", "runs", "why"])


def direction(decision: str, difference: Estimate, margin: float) -> str:
    """The judge's P99 decision said as faster, slower, same (within the margin), not slower, or inconclusive."""
    if decision == "fail":
        return "slower"
    if decision != "pass":
        return "inconclusive"
    if difference.hi < -margin:
        return "faster"
    return "same" if difference.lo > -margin else "not slower"


def recommended(table: pd.DataFrame, verdict_table: pd.DataFrame | None = None) -> pd.Series | None:
    """The variant to recommend among those within 99 % of FP32 accuracy (FP32 itself excluded): one the
    replicated A/B finds faster at P99 first, then the one whose model call costs least (``kernel_ms``), since
    a pooled P99 on a shared machine can rank noise."""
    keep = table[(table["variant"] != "fp32") & table["within_99"]].copy()
    if keep.empty:
        return None
    faster: set[str] = set()
    if verdict_table is not None and not verdict_table.empty:
        faster = set(verdict_table.loc[verdict_table["p99"] == "faster", "variant"])
    keep["not_faster"] = ~keep["variant"].isin(faster)
    return keep.sort_values(["not_faster", "kernel_ms", "p99_ms"]).iloc[0]


def conclusion(table: pd.DataFrame, verdict_table: pd.DataFrame | None = None) -> str:
    """The measured conclusion: the recommended variant (see :func:`recommended`), its accuracy kept, its P99,
    throughput, memory and model-call ratios to FP32, and what the replicated A/B says of its P99."""
    best = recommended(table, verdict_table)
    if best is None:
        return "No variant kept 99 % of FP32 accuracy on the held-out digits; FP32 stays the choice."
    said = ""
    if verdict_table is not None and not verdict_table.empty:
        match = verdict_table.loc[verdict_table["variant"] == best["variant"], "p99"]
        said = f"; its P99 against FP32's by the replicated A/B: {match.iloc[0]}" if len(match) else ""
    return (f"{best['about']} ({best['variant']}) keeps {best['kept_pct']:.1f} % "
            f"[{best['kept_lo']:.1f}, {best['kept_hi']:.1f}] of FP32 accuracy at {best['p99_ratio']:.2f}x the P99 "
            f"({best['p99_ms']:.2f} ms), {best['kernel_ratio']:.2f}x the model-call time, "
            f"{best['throughput_ratio']:.2f}x the CPU-bound throughput and {best['rss_ratio']:.2f}x the peak RSS"
            f"{said}.")


def headline_figures(table: pd.DataFrame, record: Mapping[str, Any],
                     verdict_table: pd.DataFrame | None = None) -> dict[str, str]:
    """The index's figures for notebook 08."""
    ref = table.loc[table["variant"] == "fp32"].iloc[0]
    best = recommended(table, verdict_table)
    out = {"FP32 accuracy": f"{100 * ref['accuracy']:.1f} % [{100 * ref['acc_lo']:.1f}, {100 * ref['acc_hi']:.1f}] "
                            f"(n={int(ref['tested'])})",
           "FP32 P99": f"{ref['p99_ms']:.2f} ms (n={int(ref['requests']):,})",
           "variants": f"{len(table)} ({int(table['pareto'].sum())} on the frontier)"}
    if best is not None:
        out["best within 99 %"] = (f"{best['variant']}: {best['kept_pct']:.1f} % kept, {best['p99_ratio']:.2f}x P99, "
                                   f"{best['kernel_ratio']:.2f}x model call")
    out["load"] = f"{record['rate_rps']:g} req/s open loop, {record['duration_s']:g} s x {record['repeats']}"
    return out


def edge_table(record: Mapping[str, Any], reference: str = "fp32") -> pd.DataFrame:
    """The edge profile's rows (one thread, memory cap, SingleStream) with FPS and P90 ratios to ``reference``;
    empty when the record has none. A variant that could not load has no frames or FPS (NaN)."""
    frame = pd.DataFrame(record.get("edge") or [])
    if frame.empty:
        return frame
    frame.loc[~frame["loaded"].astype(bool), ["frames", "fps"]] = math.nan  # not measured, not zero
    ref = frame.loc[frame["variant"] == reference]
    if len(ref) and bool(ref["loaded"].iloc[0]):
        frame["fps_ratio"] = frame["fps"] / float(ref["fps"].iloc[0])
        frame["p90_ratio"] = frame["p90_ms"] / float(ref["p90_ms"].iloc[0])
    return frame
