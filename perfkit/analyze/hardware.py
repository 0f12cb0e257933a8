"""Hardware comparison: measured runs and MLPerf results, per-device metrics, ratings.

Three sources of per-hardware performance, all reduced to the same columns:

- measured runs in the store, tagged ``--label hardware=NAME``: each run is one
  (offered load, achieved rate, P99) point; :func:`capacity_at_slo` takes the
  highest achieved rate whose P99 met the SLO, :func:`p99_at_load` interpolates
  P99 at a fixed load;
- MLPerf Inference results (``summary_results.json`` or a submitter's
  ``summary.csv``), read by :func:`load_mlperf_results`: the *Server* scenario
  is throughput under the benchmark's latency bound, *Offline* is raw
  throughput; results are divided by the accelerator count;
- the catalog alone (datasheet peak TFLOPS), when nothing was measured.

Ratings (:func:`rate_profiles`) are computed, never typed in. For each metric
``m`` a device gets a normalized score ``s = m / max(m)`` (higher is better) or
``s = min(m) / m`` (lower is better), in (0, 1]. A profile's score is the
weighted geometric mean ``exp(Σ w·ln s / Σ w)`` over the metrics that device has,
and its stars are ``max(1, ceil(5 × score))``: 5 stars within 20 % of the best,
one star below 20 % of it. Missing metrics are left out of the mean (the
``basis`` column says which were used); a profile with none is not rated.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from perfkit.analyze.catalog import match_hardware, rate_column

if TYPE_CHECKING:
    import duckdb
from perfkit.errors import InputError

# -- ratings ---------------------------------------------------------------------------

#: profile -> {metric: (weight, higher_is_better)}. The article's three columns.
PROFILES: dict[str, dict[str, tuple[float, bool]]] = {
    "latency-sensitive": {"p99_at_load_ms": (0.5, False), "qps_at_slo": (0.5, True)},
    "throughput-first": {"peak_throughput": (0.7, True), "perf_per_w": (0.3, True)},
    "cost-sensitive": {"perf_per_usd_hour": (0.7, True), "perf_per_w": (0.3, True)},
}

#: A profile is rated only when a device has at least one of these metrics (else NaN):
#: a cost rating without a price, or a latency rating without any latency-bounded figure,
#: would only restate another profile.
PROFILE_REQUIRES: dict[str, tuple[str, ...]] = {
    "latency-sensitive": ("p99_at_load_ms", "qps_at_slo"),
    "throughput-first": ("peak_throughput",),
    "cost-sensitive": ("perf_per_usd_hour",),
}

RATING_FORMULA = (
    "s = m / max(m) (higher better) or min(m) / m (lower better); "
    "score = exp(sum(w * ln s) / sum(w)) over the metrics present; "
    "stars = max(1, ceil(5 * score)). Weights: "
    + "; ".join(f"{p}: " + ", ".join(f"{w:g}·{m}{'' if hi else ' (lower better)'}"
                                     for m, (w, hi) in spec.items())
                for p, spec in PROFILES.items())
)


def normalized_scores(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """Each value relative to the best one, in (0, 1]; NaN (or non-positive) stays NaN."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    v = v.where(v > 0)
    if v.notna().sum() == 0:
        return v
    return v / v.max() if higher_is_better else v.min() / v


def stars(score: float) -> float:
    """``max(1, ceil(5 × score))`` for a score in (0, 1]; NaN for NaN."""
    if score is None or not np.isfinite(score):
        return math.nan
    return float(max(1, math.ceil(5 * score - 1e-9)))


def star_text(n: float) -> str:
    return "" if not np.isfinite(n) else "★" * int(n) + "☆" * (5 - int(n))


def rate_profiles(metrics: pd.DataFrame,
                  profiles: Mapping[str, Mapping[str, tuple[float, bool]]] = PROFILES) -> pd.DataFrame:
    """Per hardware (row of ``metrics``, indexed by name): score, stars and basis per profile."""
    out = pd.DataFrame(index=metrics.index)
    for profile, spec in profiles.items():
        num = pd.Series(0.0, index=metrics.index)
        den = pd.Series(0.0, index=metrics.index)
        basis = pd.Series("", index=metrics.index, dtype=object)
        for metric, (weight, higher) in spec.items():
            if metric not in metrics:
                continue
            s = normalized_scores(metrics[metric], higher)
            have = s.notna()
            num[have] += weight * np.log(s[have])
            den[have] += weight
            basis[have] = basis[have].map(lambda b, m=metric: f"{b}+{m}" if b else m)
        score = np.exp(num / den.where(den > 0))
        needed = [m for m in PROFILE_REQUIRES.get(profile, ()) if m in metrics]
        if PROFILE_REQUIRES.get(profile):
            has_needed = metrics[needed].notna().any(axis=1) if needed else pd.Series(False, index=metrics.index)
            score = score.where(has_needed)
            basis = basis.where(has_needed, "")
        out[f"{profile}_score"] = score
        out[f"{profile}_stars"] = score.map(stars)
        out[f"{profile}_basis"] = basis
    return out


# -- measured runs ---------------------------------------------------------------------

_RUNS_SQL = """
SELECT run_id,
       json_extract_string(labels, '$.' || ?) AS hardware,
       started_at, status, intended_rate_rps, duration_s,
       CAST(json_extract(summary, '$.achieved_rate_rps') AS DOUBLE) AS achieved_rate_rps,
       CAST(json_extract(summary, '$.latency_ms.p99') AS DOUBLE) AS p99_ms,
       CAST(json_extract(summary, '$.latency_ms.p50') AS DOUBLE) AS p50_ms,
       CAST(json_extract(summary, '$.latency_ci_ms.p99[0]') AS DOUBLE) AS p99_ci_low_ms,
       CAST(json_extract(summary, '$.latency_ci_ms.p99[1]') AS DOUBLE) AS p99_ci_high_ms,
       CAST(json_extract(summary, '$.requests') AS BIGINT) AS requests,
       CAST(json_extract(summary, '$.ok') AS BIGINT) AS ok,
       CAST(json_extract(summary, '$.output_tokens_per_s') AS DOUBLE) AS output_tokens_per_s,
       CAST(json_extract(summary, '$.valid') AS BOOLEAN) AS valid,
       json_extract_string(labels, '$.devices') AS devices_label
FROM runs
WHERE json_extract_string(labels, '$.' || ?) IS NOT NULL
ORDER BY hardware, intended_rate_rps, started_at
"""

_POWER_SQL = """
WITH r AS (SELECT t0_unix_s AS t0, t0_unix_s + duration_s AS t1 FROM runs WHERE run_id = ?),
per_series AS (
    SELECT se.series_id, avg(sa.value) AS mean_w, count(*) AS n
    FROM sources so
    JOIN series se ON se.source_id = so.source_id
    JOIN samples sa ON sa.series_id = se.series_id
    CROSS JOIN r
    WHERE so.run_id = ? AND se.name = ?
      AND sa.value IS NOT NULL AND NOT isnan(sa.value)
      AND (r.t0 IS NULL OR r.t1 IS NULL OR sa.ts_unix_s IS NULL OR sa.ts_unix_s BETWEEN r.t0 AND r.t1)
    GROUP BY se.series_id
)
SELECT sum(mean_w) AS mean_power_w, sum(n) AS samples, count(*) AS series FROM per_series
"""

#: The normalized name every power importer writes (NVML, nvidia-smi, dcgm-exporter), in W.
POWER_SERIES = "gpu_power_w"


def measured_runs(con: "duckdb.DuckDBPyConnection", label_key: str = "hardware",
                  power_series: str = POWER_SERIES) -> pd.DataFrame:
    """Runs tagged ``label_key=NAME`` with their load, P99 and throughput, one row each.

    A run of several devices says so with a ``devices=N`` label (``--label
    hardware=H100 SXM,devices=8``): rates and power are then divided by N so that
    every figure is per device, like the catalog's prices. The run's rates as
    measured stay in ``server_rate_rps``.
    """
    frame = con.execute(_RUNS_SQL, [label_key, label_key]).df()
    if frame.empty:
        return frame
    devices = pd.to_numeric(frame.pop("devices_label"), errors="coerce")
    frame["devices"] = devices.where(devices >= 1).fillna(1.0)
    frame["server_rate_rps"] = frame["achieved_rate_rps"]
    frame["achieved_rate_rps"] = frame["achieved_rate_rps"] / frame["devices"]
    frame["output_tokens_per_s"] = frame["output_tokens_per_s"] / frame["devices"]
    frame["ok_fraction"] = frame["ok"] / frame["requests"].where(frame["requests"] > 0)
    power = [run_power_w(con, rid, power_series) for rid in frame["run_id"]]
    frame["mean_power_w"] = [p[0] for p in power] / frame["devices"]
    frame["power_samples"] = [p[1] for p in power]
    return frame


def run_power_w(con: "duckdb.DuckDBPyConnection", run_id: str,
                power_series: str = POWER_SERIES) -> tuple[float, int]:
    """Mean power of a run from its telemetry: the sum over devices of each series' mean (W).

    Only ``power_series`` samples of sources attached to the run and inside its
    window ``[t0, t0 + duration]`` count (limits and averaged duplicates have other
    names). ``(nan, 0)`` when the run has no power telemetry.
    """
    row = con.execute(_POWER_SQL, [run_id, run_id, power_series]).fetchone()
    if row is None or row[0] is None:
        return math.nan, 0
    return float(row[0]), int(row[1])


def capacity_at_slo(runs: pd.DataFrame, slo_p99_ms: float, min_ok_fraction: float = 0.99,
                    conservative: bool = False, require_valid: bool = False) -> pd.DataFrame:
    """Per hardware: the highest achieved rate among runs with P99 ≤ SLO and enough successes.

    ``conservative``: a run passes only if the upper end of its P99 confidence
    interval (``p99_ci_high_ms``) meets the SLO (a run too short to bound its P99
    never passes). ``require_valid``: runs the engine marked ``valid: false``
    (too short, load generator behind schedule) do not count. Also the peak
    achieved rate regardless of the SLO, the P99 interval at capacity, and how
    many runs were seen and passed. Pure: ``runs`` needs hardware,
    achieved_rate_rps, p99_ms, ok_fraction (optionally p99_ci_*_ms, valid,
    requests, output_tokens_per_s, mean_power_w).
    """
    rows = []
    for hw, group in runs.groupby("hardware", sort=True):
        ok = group["ok_fraction"].fillna(0) >= min_ok_fraction
        bound = group["p99_ci_high_ms"] if conservative and "p99_ci_high_ms" in group else group["p99_ms"]
        ok &= bound.notna() & (bound <= slo_p99_ms)
        if require_valid and "valid" in group:
            ok &= group["valid"].fillna(True).astype(bool)
        passing = group[ok]
        best = passing.loc[passing["achieved_rate_rps"].idxmax()] if not passing.empty else None
        rows.append({
            "hardware": hw,
            "runs": len(group),
            "runs_within_slo": len(passing),
            "qps_at_slo": float(best["achieved_rate_rps"]) if best is not None else math.nan,
            "p99_ms_at_capacity": float(best["p99_ms"]) if best is not None else math.nan,
            "p99_ci_low_ms": _get(best, "p99_ci_low_ms"),
            "p99_ci_high_ms": _get(best, "p99_ci_high_ms"),
            "runs_invalid": int((~group["valid"].fillna(True).astype(bool)).sum()) if "valid" in group else 0,
            "requests_at_capacity": (int(best["requests"]) if best is not None and "requests" in best
                                     and pd.notna(best["requests"]) else 0),
            "output_tokens_per_s": (float(best["output_tokens_per_s"]) if best is not None
                                    and "output_tokens_per_s" in best else math.nan),
            "peak_throughput": float(group["achieved_rate_rps"].max()),
            "mean_power_w": _power_at(best, group),
        })
    return pd.DataFrame(rows)


def _get(row, key: str) -> float:
    if row is None or key not in row or pd.isna(row[key]):
        return math.nan
    return float(row[key])


def _power_at(best, group: pd.DataFrame) -> float:
    """Mean power of the run at capacity; else the mean over the hardware's runs; else NaN."""
    if "mean_power_w" not in group or not group["mean_power_w"].notna().any():
        return math.nan
    if best is not None and pd.notna(best.get("mean_power_w", math.nan)):
        return float(best["mean_power_w"])
    return float(group["mean_power_w"].mean())


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
    return _attach_catalog(cap, catalog, throughput_col="qps_at_slo",
                           price_hour_overrides=price_hour_overrides, source="measured runs")


def _attach_catalog(frame: pd.DataFrame, catalog: pd.DataFrame, throughput_col: str,
                    price_hour_overrides: Mapping[str, float] | None, source: str) -> pd.DataFrame:
    frame = frame.copy()
    names = [match_hardware(catalog, hw) for hw in frame.index]
    frame["catalog_name"] = names
    cat = catalog.set_index("name")
    def col(c):
        return np.array([cat.at[n, c] if n is not None else np.nan for n in names], dtype=float)
    frame["tdp_w"] = col("tdp_w")
    frame["fp16_tflops_dense"] = col("fp16_tflops_dense")
    price = col("price_hour_usd")
    for i, hw in enumerate(frame.index):
        for key, value in (price_hour_overrides or {}).items():
            if key.casefold() in (str(hw).casefold(), str(names[i] or "").casefold()):
                price[i] = float(value)
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


# -- the catalog alone -------------------------------------------------------------------

def catalog_metrics(catalog: pd.DataFrame, precision: str = "fp16") -> pd.DataFrame:
    """Datasheet-only comparison: peak dense TFLOPS (or TOPS) as throughput, TDP as power.

    No latency can be derived from a datasheet, so the latency-sensitive profile
    stays unrated here.
    """
    column = rate_column(precision)
    frame = catalog.set_index("name")[[column, "tdp_w", "price_hour_usd"]].copy()
    frame = frame.rename(columns={column: "peak_throughput"})
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["perf_per_w"] = frame["peak_throughput"] / frame["tdp_w"]
        frame["perf_per_usd_hour"] = frame["peak_throughput"] / frame["price_hour_usd"]
    frame["power_basis"] = "TDP"
    frame["source"] = f"catalog ({column})"
    return frame


# -- MLPerf results ------------------------------------------------------------------------

_MLPERF_JSON_FIELDS = {
    "ID": "id", "Submitter": "submitter", "System": "system", "Platform": "platform",
    "Model": "model", "Scenario": "scenario", "Accuracy": "accuracy", "Accelerator": "accelerator",
    "a#": "accelerator_count", "Software": "software", "has_power": "has_power",
    "Performance_Result": "performance", "Performance_Units": "performance_units",
    "Power_Result": "power_w", "Power_Units": "power_units", "Category": "division",
    "Availability": "availability",
}
_MLPERF_CSV_FIELDS = {
    "Organization": "submitter", "SystemName": "system", "Platform": "platform", "Model": "model",
    "Scenario": "scenario", "Accuracy": "accuracy", "accelerator_model_name": "accelerator",
    "accelerators_per_node": "accelerator_count", "framework": "software", "has_power": "has_power",
    "Result": "performance", "Units": "performance_units", "Division": "division",
    "Availability": "availability", "number_of_nodes": "nodes",
}
_MLPERF_REQUIRED = ("system", "model", "scenario", "accelerator", "accelerator_count", "performance",
                    "performance_units")


def _as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _as_float(value, path, line, field) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(path, line, f"{field}: {value!r} is not a number") from None
    if out < 0:
        raise InputError(path, line, f"{field}: {value!r} is negative")
    return out


def _normalize_mlperf(record: dict, path: str, line: int | None, where: str) -> dict:
    row = dict(record)
    missing = [f for f in _MLPERF_REQUIRED if f not in row]
    if missing:
        raise InputError(path, line, f"{where}missing field(s): {', '.join(missing)}")
    row["performance"] = _as_float(row["performance"], path, line, f"{where}performance")
    count = _as_float(row["accelerator_count"], path, line, f"{where}accelerator count")
    row["accelerator_count"] = count
    row["has_power"] = _as_bool(row.get("has_power", False))
    power = _as_float(row.get("power_w"), path, line, f"{where}Power_Result") if row["has_power"] else math.nan
    if row["has_power"] and str(row.get("power_units", "Watts")).lower() not in ("watts", "w"):
        power = math.nan  # energy-per-stream results (Joules) are not comparable as perf/W
    row["power_w"] = power
    return row


def load_mlperf_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """MLPerf Inference results, from ``summary_results.json`` or a ``summary.csv``.

    Columns: id, submitter, system, platform, model, scenario, accuracy,
    accelerator, accelerator_count, software, has_power, performance,
    performance_units, power_w, plus ``perf_per_accelerator`` (performance /
    accelerator count) and ``perf_per_w`` (performance / power_w where has_power).
    A malformed file raises ``InputError`` naming the line (CSV, JSON syntax)
    or the entry (JSON records).
    """
    spath = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(spath, None, f"cannot read: {exc.strerror}") from None
    rows = []
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(spath, exc.lineno, f"not valid JSON: {exc.msg}") from None
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise InputError(spath, None, f"entry {i}: expected an object")
            row = {_MLPERF_JSON_FIELDS[k]: v for k, v in rec.items() if k in _MLPERF_JSON_FIELDS}
            rows.append(_normalize_mlperf(row, spath, None, f"entry {i} ({rec.get('ID', '?')}): "))
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "Result" not in reader.fieldnames:
            raise InputError(spath, 1, "not an MLPerf summary: expected a JSON list or a CSV "
                                       "header with Organization, SystemName, ..., Result, Units")
        for rec in reader:
            line = reader.line_num
            row = {_MLPERF_CSV_FIELDS[k]: v for k, v in rec.items() if k in _MLPERF_CSV_FIELDS}
            rows.append(_normalize_mlperf(row, spath, line, ""))
    columns = ["id", "submitter", "system", "platform", "model", "scenario", "accuracy", "accelerator",
               "accelerator_count", "software", "has_power", "performance", "performance_units",
               "power_w", "division", "availability"]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["perf_per_accelerator"] = frame["performance"] / frame["accelerator_count"].where(
            frame["accelerator_count"] > 0)
        frame["perf_per_w"] = frame["performance"] / frame["power_w"]
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
        })
    frame = pd.DataFrame(rows).set_index("hardware") if rows else pd.DataFrame(
        columns=["results", "qps_at_slo", "peak_throughput", "units", "mean_power_w"])
    frame["throughput_for_cost"] = frame["peak_throughput"].fillna(frame["qps_at_slo"])
    out = _attach_catalog(frame, catalog, throughput_col="throughput_for_cost",
                          price_hour_overrides=price_hour_overrides, source=f"MLPerf {model}")
    return out


# -- helpers shared by the CLI and the notebooks ---------------------------------------------

def parse_overrides(text: str) -> dict[str, float]:
    """``"cpu-demo=0.10, T4:0.5"`` -> ``{"cpu-demo": 0.1, "T4": 0.5}`` (a notebook parameter).

    ``NAME=PRICE`` or ``NAME:PRICE``, comma-separated (papermill's parser dislikes ``=`` in comments,
    so notebooks document the ``:`` form).
    """
    from perfkit.errors import UsageError

    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        sep_at = max(part.rfind("="), part.rfind(":"))
        key, value = part[:sep_at], part[sep_at + 1:]
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if sep_at < 0 or not key.strip() or not (number >= 0):
            raise UsageError(f"expected NAME=NUMBER or NAME:NUMBER, got {part.strip()!r}")
        out[key.strip()] = number
    return out


def parse_names(text: str) -> list[str]:
    """``"T4, L4,A100 80GB"`` -> ``["T4", "L4", "A100 80GB"]`` (a notebook parameter)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def runs_from_store(db: str | None = None, label_key: str = "hardware") -> pd.DataFrame:
    """Measured runs tagged ``label_key=NAME``; an empty frame when there is no store yet."""
    from perfkit import store
    from perfkit.paths import db_path

    path = db_path(db or None)
    if str(path) != ":memory:" and not Path(path).exists():
        return pd.DataFrame(columns=["run_id", "hardware", "achieved_rate_rps", "p99_ms", "ok_fraction"])
    with store.connect(path, read_only=True, quiet=True) as con:
        return measured_runs(con, label_key)


def comparison_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics joined with their computed ratings, stars as text per profile."""
    table = metrics.join(rate_profiles(metrics))
    for profile in PROFILES:
        table[profile] = table[f"{profile}_stars"].map(star_text)
    return table


#: The columns a person reads first, in order (those a table has are kept).
SUMMARY_COLUMNS = ("runs", "results", "qps_at_slo", "p99_ci_low_ms", "p99_ci_high_ms", "requests_at_capacity",
                   "p99_at_load_ms", "peak_throughput", "units", "mean_power_w", "power_basis", "perf_per_w",
                   "price_hour_usd", "perf_per_usd_hour", *PROFILES)


def summary_view(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table cut to :data:`SUMMARY_COLUMNS` (ratings as stars)."""
    return table[[c for c in SUMMARY_COLUMNS if c in table.columns]]


def mlperf_from_paths(paths: str) -> pd.DataFrame:
    """Comma-separated MLPerf summary files read into one frame (empty for ``""``)."""
    files = [p.strip() for p in (paths or "").split(",") if p.strip()]
    if not files:
        return pd.DataFrame(columns=["model", "accelerator", "scenario", "perf_per_accelerator"])
    return pd.concat([load_mlperf_results(f) for f in files], ignore_index=True)


def throughput_for_tco(catalog: pd.DataFrame, names: Sequence[str], capacity: pd.DataFrame | None,
                       reference: str, reference_qps: float, precision: str = "fp16") -> pd.DataFrame:
    """Per device, the throughput within the SLO that costs are computed at, and where it came from.

    Measured (``capacity`` from :func:`capacity_at_slo`) wins, and brings its output
    tokens/s (LLM runs) and mean power where measured; otherwise the rate is scaled
    from ``reference_qps`` on ``reference`` by the ratio of peak dense rates in the
    catalog (compute-bound assumption, stated in ``qps_basis``). Measured hardware
    labels that are not in the catalog (e.g. ``cpu-demo``) are appended after ``names``.
    """
    from perfkit.analyze.catalog import catalog_row

    column = rate_column(precision)
    ref_rate = float(catalog_row(catalog, reference)[column])
    canonical = [str(catalog_row(catalog, n)["name"]) for n in names]   # unknown names: UsageError
    measured: dict[str, tuple[float, int, float, float]] = {}
    for _, row in (capacity if capacity is not None else pd.DataFrame()).iterrows():
        if np.isfinite(row["qps_at_slo"]):
            name = match_hardware(catalog, row["hardware"]) or str(row["hardware"])
            measured[name] = (float(row["qps_at_slo"]), int(row["runs"]),
                              float(row.get("output_tokens_per_s", math.nan)),
                              float(row.get("mean_power_w", math.nan)))
    rows = []
    for name in canonical + [m for m in measured if m not in canonical]:
        tokens = power = math.nan
        if name in measured:
            qps, n, tokens, power = measured[name]
            in_catalog = match_hardware(catalog, name) is not None
            basis = f"measured ({n} runs)" + ("" if in_catalog else ", not in the catalog")
        else:
            rate = float(catalog_row(catalog, name)[column])
            qps = reference_qps * rate / ref_rate if rate > 0 else math.nan
            basis = f"scaled from {reference} by {column}" if rate > 0 else f"no {column}"
        rows.append({"name": name, "qps_at_slo": qps, "qps_basis": basis,
                     "output_tokens_per_s": tokens, "mean_power_w": power})
    return pd.DataFrame(rows)


#: The source article's table (section 3.1), filled stars as printed: its claims, for comparison only.
ARTICLE_STARS = {
    "A100 80GB": {"latency-sensitive": 5, "throughput-first": 4, "cost-sensitive": 2},
    "MI250X": {"latency-sensitive": 4, "throughput-first": 5, "cost-sensitive": 3},
    "Gaudi2": {"latency-sensitive": 3, "throughput-first": 4, "cost-sensitive": 4},
}


def article_comparison(metrics: pd.DataFrame) -> pd.DataFrame:
    """The article's stars next to ours for its three devices.

    Ours are rated among those three only (as the article's table is), from ``metrics``
    (e.g. :func:`catalog_metrics`) by :func:`rate_profiles`.
    """
    table = rate_profiles(metrics.loc[[n for n in ARTICLE_STARS if n in metrics.index]])
    rows = []
    for name, claimed in ARTICLE_STARS.items():
        for profile, stars_claimed in claimed.items():
            ours = table.at[name, f"{profile}_stars"] if name in table.index else math.nan
            basis = table.at[name, f"{profile}_basis"] if name in table.index else ""
            rows.append({"hardware": name, "profile": profile, "article_stars": stars_claimed,
                         "our_stars": ours, "our_basis": basis or "not rated (metric missing)"})
    return pd.DataFrame(rows).pivot(index="hardware", columns="profile",
                                    values=["article_stars", "our_stars", "our_basis"])


def headline_figures(catalog_table: pd.DataFrame, measured: pd.DataFrame | None,
                     runs: pd.DataFrame) -> dict[str, str]:
    """The comparison report's index figures (values carry units and sample counts)."""
    figures: dict[str, str] = {}
    priced = catalog_table.dropna(subset=["perf_per_usd_hour"])
    if not priced.empty:
        best = priced["perf_per_usd_hour"].idxmax()
        figures["best datasheet TFLOPS per $/h"] = (f"{best}: {priced.at[best, 'perf_per_usd_hour']:,.1f} "
                                                   f"(n={len(priced)} priced devices)")
    eff = catalog_table.dropna(subset=["perf_per_w"])
    if not eff.empty:
        best = eff["perf_per_w"].idxmax()
        figures["best datasheet TFLOPS per W"] = f"{best}: {eff.at[best, 'perf_per_w']:.2f}"
    if measured is not None and not measured.empty and measured["qps_at_slo"].notna().any():
        best = measured["qps_at_slo"].idxmax()
        n = int(measured.at[best, "requests_at_capacity"]) if "requests_at_capacity" in measured else 0
        figures["most req/s within SLO (measured)"] = (f"{best}: {measured.at[best, 'qps_at_slo']:,.1f} req/s "
                                                      f"(n={n:,} requests)")
    figures["measured runs"] = f"{len(runs)} runs, {runs['hardware'].nunique() if len(runs) else 0} hardware labels"
    return figures
