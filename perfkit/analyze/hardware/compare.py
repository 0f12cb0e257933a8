"""Hardware comparison: per-device metrics from measured runs, MLPerf results or the catalog.

Three sources of per-hardware performance, all reduced to the same columns
(then rated by :mod:`perfkit.analyze.hardware.ratings`):

- measured runs in the store, tagged ``--label hardware=NAME`` (read by
  :mod:`perfkit.analyze.hardware.queries`): each run is one (offered load,
  achieved rate, P99) point; :func:`capacity_at_slo` takes the highest achieved
  rate whose P99 met the SLO, :func:`p99_at_load` interpolates P99 at a fixed load;
- MLPerf Inference results (:mod:`perfkit.analyze.hardware.mlperf`),
  compared by :func:`mlperf_metrics`;
- the catalog alone (datasheet peak TFLOPS), :func:`catalog_metrics`.

Pure functions: frames in, frames out.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from perfkit.analyze.hardware.catalog import ESTIMATE_BASIS, match_hardware, rate_column

#: The columns every measured-runs frame has, even an empty one.
RUN_COLUMNS = ("run_id", "hardware", "achieved_rate_rps", "p99_ms", "ok_fraction")


def per_device_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs as recorded (``labelled_runs``) turned into per-device figures.

    A run of several devices says so with a ``devices=N`` label (``--label
    hardware=H100 SXM,devices=8``): rates and power are then divided by N so that
    every figure is per device, like the catalog's prices. The run's rate as
    measured stays in ``server_rate_rps``; ``ok_fraction = ok / requests``.
    """
    frame = runs.copy()
    devices = pd.to_numeric(frame.pop("devices_label"), errors="coerce")
    frame["devices"] = devices.where(devices >= 1).fillna(1.0)
    frame["server_rate_rps"] = frame["achieved_rate_rps"]
    frame["achieved_rate_rps"] = frame["achieved_rate_rps"] / frame["devices"]
    frame["output_tokens_per_s"] = frame["output_tokens_per_s"] / frame["devices"]
    frame["ok_fraction"] = frame["ok"] / frame["requests"].where(frame["requests"] > 0)
    frame["mean_power_w"] = frame["mean_power_w"] / frame["devices"]
    return frame


def _value(row: pd.Series | None, key: str) -> float:
    """``row[key]`` as a float; NaN when there is no row, no such key, or no value."""
    if row is None or key not in row or pd.isna(row[key]):
        return math.nan
    return float(row[key])


def _power_at(best: pd.Series | None, group: pd.DataFrame) -> float:
    """Mean power of the run at capacity; else the mean over the hardware's runs; else NaN."""
    if "mean_power_w" not in group or not group["mean_power_w"].notna().any():
        return math.nan
    at_best = _value(best, "mean_power_w")
    return at_best if not math.isnan(at_best) else float(group["mean_power_w"].mean())


def capacity_at_slo(runs: pd.DataFrame, slo_p99_ms: float, min_ok_fraction: float = 0.99,
                    conservative: bool = False, require_valid: bool = False) -> pd.DataFrame:
    """Per hardware: the highest achieved rate among runs with P99 ≤ SLO and enough successes.

    ``conservative``: a run passes only if the upper end of its P99 confidence
    interval (``p99_ci_high_ms``) meets the SLO (a run too short to bound its P99
    never passes). ``require_valid``: runs the engine marked ``valid: false``
    (too short, load generator behind schedule) do not count. Also the peak
    achieved rate regardless of the SLO, the P99 interval at capacity, and how
    many runs were seen and passed. ``runs`` needs hardware, achieved_rate_rps,
    p99_ms, ok_fraction (optionally p99_ci_*_ms, valid, requests,
    output_tokens_per_s, mean_power_w).
    """
    rows = []
    for hw, group in runs.groupby("hardware", sort=True):
        ok = group["ok_fraction"].fillna(0) >= min_ok_fraction
        bound = group["p99_ci_high_ms"] if conservative and "p99_ci_high_ms" in group else group["p99_ms"]
        ok &= bound.notna() & (bound <= slo_p99_ms)
        valid = group["valid"].fillna(True).astype(bool) if "valid" in group else None
        if require_valid and valid is not None:
            ok &= valid
        passing = group[ok]
        best = passing.loc[passing["achieved_rate_rps"].idxmax()] if not passing.empty else None
        requests = _value(best, "requests")
        peak = group.loc[group["achieved_rate_rps"].idxmax()] if group["achieved_rate_rps"].notna().any() else None
        rows.append({
            "hardware": hw,
            "runs": len(group),
            "run_at_capacity": str(best["run_id"]) if best is not None and "run_id" in best else "",
            "run_at_peak": str(peak["run_id"]) if peak is not None and "run_id" in peak else "",
            "runs_within_slo": len(passing),
            "qps_at_slo": _value(best, "achieved_rate_rps"),
            "p99_ms_at_capacity": _value(best, "p99_ms"),
            "p99_ci_low_ms": _value(best, "p99_ci_low_ms"),
            "p99_ci_high_ms": _value(best, "p99_ci_high_ms"),
            "runs_invalid": int((~valid).sum()) if valid is not None else 0,
            "requests_at_capacity": 0 if math.isnan(requests) else int(requests),
            "output_tokens_per_s": _value(best, "output_tokens_per_s"),
            "peak_throughput": _value(peak, "achieved_rate_rps"),
            "mean_power_w": _power_at(best, group),
        })
    return pd.DataFrame(rows)


def p99_at_load(runs: pd.DataFrame, load_rps: float) -> pd.Series:
    """Per hardware: P99 at ``load_rps`` by linear interpolation between runs' achieved rates.

    NaN when ``load_rps`` is outside the measured range of that hardware (no extrapolation).
    """
    out = {}
    for hw, group in runs.groupby("hardware", sort=True):
        g = group.dropna(subset=["achieved_rate_rps", "p99_ms"]).sort_values("achieved_rate_rps")
        x, y = g["achieved_rate_rps"].to_numpy(), g["p99_ms"].to_numpy()
        if len(x) == 0 or load_rps < x.min() or load_rps > x.max():
            out[hw] = math.nan
        elif len(x) == 1:
            out[hw] = float(y[0])
        else:
            out[hw] = float(np.interp(load_rps, x, y))
    return pd.Series(out, name="p99_at_load_ms", dtype=float)


def _override_values(names: Sequence[Sequence[object]], current: np.ndarray,
                    overrides: Mapping[str, float] | None) -> np.ndarray:
    """``current`` with ``overrides`` applied: row i takes the value of a key equal
    (case-insensitively) to any of ``names[i]`` (e.g. its run label and its catalog name)."""
    out = np.array(current, dtype=float)
    for key, value in (overrides or {}).items():
        for i, aliases in enumerate(names):
            if key.casefold() in {str(a).casefold() for a in aliases if a is not None}:
                out[i] = float(value)
    return out


def _attach_catalog(frame: pd.DataFrame, catalog: pd.DataFrame, throughput_col: str,
                    price_hour_overrides: Mapping[str, float] | None, source: str) -> pd.DataFrame:
    """Catalog TDP, rate and price beside each row, then perf/W and perf per $/h of ``throughput_col``."""
    frame = frame.copy()
    names = [match_hardware(catalog, hw) for hw in frame.index]
    frame["catalog_name"] = names
    cat = catalog.set_index("name")

    def col(c: str) -> np.ndarray:
        return np.array([cat.at[n, c] if n is not None else np.nan for n in names], dtype=float)

    frame["tdp_w"] = col("tdp_w")
    frame["fp16_tflops_dense"] = col("fp16_tflops_dense")
    price = _override_values([[hw, n] for hw, n in zip(frame.index, names)], col("price_hour_usd"),
                            price_hour_overrides)
    frame["price_hour_usd"] = price
    if "mean_power_w" not in frame:
        frame["mean_power_w"] = np.nan
    measured = frame["mean_power_w"].to_numpy(dtype=float)
    power = np.where(np.isnan(measured), frame["tdp_w"].to_numpy(dtype=float), measured)
    frame["power_basis"] = np.where(np.isnan(measured), np.where(np.isnan(power), "none", "TDP"), "measured")
    thr = frame[throughput_col].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["perf_per_w"] = thr / power
        frame["perf_per_usd_hour"] = thr / price
    frame["source"] = source
    return frame


def measured_metrics(runs: pd.DataFrame, catalog: pd.DataFrame, slo_p99_ms: float, load_rps: float,
                     price_hour_overrides: Mapping[str, float] | None = None,
                     conservative: bool = False, require_valid: bool = False) -> pd.DataFrame:
    """The comparison table from measured runs: one row per hardware label.

    ``perf_per_w = qps_at_slo / mean_power_w`` (measured power, else catalog TDP:
    ``power_basis`` says which); ``perf_per_usd_hour = qps_at_slo / price_hour_usd``
    (queries per second bought by one dollar per hour; ×3600 gives queries per dollar).
    """
    cap = capacity_at_slo(runs, slo_p99_ms, conservative=conservative,
                          require_valid=require_valid).set_index("hardware")
    cap["p99_at_load_ms"] = p99_at_load(runs, load_rps)
    cap["basis"] = [f"measured run {r}" if r else "measured runs: none within the SLO" for r in cap["run_at_capacity"]]
    return _attach_catalog(cap, catalog, throughput_col="qps_at_slo",
                           price_hour_overrides=price_hour_overrides, source="measured runs")


def catalog_metrics(catalog: pd.DataFrame, precision: str = "fp16",
                    price_hour_overrides: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Datasheet-only comparison: peak dense TFLOPS (or TOPS) as throughput, TDP as power.

    Every row's ``basis`` is the estimate tier (:data:`~perfkit.analyze.hardware.catalog.ESTIMATE_BASIS`):
    :func:`~perfkit.analyze.hardware.ratings.rate_profiles` gives it no star.
    ``perf_per_usd_hour`` divides by the hourly price (``price_hour_overrides``
    replace the catalog's, by name or alias). No latency can be derived from a
    datasheet, so the latency-sensitive profile stays unrated here.
    """
    column = rate_column(precision)
    frame = catalog.set_index("name")[[column, "tdp_w", "price_hour_usd"]].copy()
    frame = frame.rename(columns={column: "peak_throughput"})
    frame["price_hour_usd"] = _override_values([[n] for n in frame.index], frame["price_hour_usd"].to_numpy(),
                                              price_hour_overrides)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["perf_per_w"] = frame["peak_throughput"] / frame["tdp_w"]
        frame["perf_per_usd_hour"] = frame["peak_throughput"] / frame["price_hour_usd"]
    frame["power_basis"] = "TDP"
    frame["source"] = f"catalog ({column})"
    frame["basis"] = f"{ESTIMATE_BASIS}: peak {column}"
    return frame


def mlperf_metrics(results: pd.DataFrame, catalog: pd.DataFrame, model: str,
                   price_hour_overrides: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Per catalog device, for one MLPerf ``model``: best per-accelerator Server and Offline results.

    ``qps_at_slo`` = best Server-scenario result per accelerator (throughput under
    MLPerf's latency bound); ``peak_throughput`` = best Offline result per
    accelerator; perf/W from MLPerf's measured power where a result has it,
    else the Offline throughput over the catalog TDP.
    """
    sel = results[results["model"] == model].copy()
    sel["hardware"] = [match_hardware(catalog, a) for a in sel["accelerator"]]
    sel = sel.dropna(subset=["hardware", "perf_per_accelerator"])
    rows = []
    for hw, group in sel.groupby("hardware", sort=True):
        server = group[group["scenario"].str.lower() == "server"]
        offline = group[group["scenario"].str.lower() == "offline"]
        powered = group.dropna(subset=["power_w"])
        rows.append({
            "hardware": hw,
            "results": len(group),
            "qps_at_slo": server["perf_per_accelerator"].max() if not server.empty else math.nan,
            "peak_throughput": offline["perf_per_accelerator"].max() if not offline.empty else math.nan,
            "units": ", ".join(sorted(set(group["performance_units"].astype(str)))),
            "mean_power_w": (float((powered["power_w"] / powered["accelerator_count"]).mean())
                             if not powered.empty else math.nan),
            "submitters": ", ".join(sorted(set(group["submitter"].astype(str)))),
            "basis": f"MLPerf {model}: " + "; ".join(
                f"{r['submitter']}/{r['system']}/{r['scenario']}"
                for part in (server, offline) if not part.empty
                for r in [part.loc[part["perf_per_accelerator"].idxmax()]]),
        })
    frame = pd.DataFrame(rows).set_index("hardware") if rows else pd.DataFrame(
        columns=["results", "qps_at_slo", "peak_throughput", "units", "mean_power_w"])
    frame["throughput_for_cost"] = frame["peak_throughput"].fillna(frame["qps_at_slo"])
    return _attach_catalog(frame, catalog, throughput_col="throughput_for_cost",
                           price_hour_overrides=price_hour_overrides, source=f"MLPerf {model}")


def comparison_headline(measured: pd.DataFrame | None, runs: pd.DataFrame,
                        evidence: Mapping[str, pd.DataFrame] | None = None) -> dict[str, str]:
    """The comparison report's index figures, each naming its basis (a measured run id or an MLPerf row).

    ``evidence``: per MLPerf model, :func:`~perfkit.analyze.hardware.evidence.mlperf_evidence`. Datasheet
    figures are an estimate tier and never appear here.
    """
    figures: dict[str, str] = {}
    if measured is not None and not measured.empty and measured["qps_at_slo"].notna().any():
        best = measured["qps_at_slo"].idxmax()
        n = int(measured.at[best, "requests_at_capacity"]) if "requests_at_capacity" in measured else 0
        figures["most req/s within SLO (measured)"] = (f"{best}: {measured.at[best, 'qps_at_slo']:,.1f} req/s "
                                                      f"(n={n:,} requests), basis: {measured.at[best, 'basis']}")
    figures["measured runs"] = f"{len(runs)} runs, {runs['hardware'].nunique() if len(runs) else 0} hardware labels"
    for model, ev in (evidence or {}).items():
        server = ev["server_per_accelerator"].dropna()
        if not server.empty:
            best = server.idxmax()
            figures[f"most {model} Server per accelerator"] = (
                f"{best}: {server[best]:,.0f} {ev.at[best, 'units']} (basis: {ev.at[best, 'server_basis']})")
    return figures
