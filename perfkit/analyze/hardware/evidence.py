"""Hardware comparison, ratings, TCO and fleet capacities from MLPerf rows (the reference table).

Pure: frames in, frames out. Every figure carries its basis, ``MLPerf <round>
<location>`` of the row it comes from; devices with no row for a figure get NaN
and, in ratings, "no evidence" (never a star). Throughput per accelerator =
result / accelerators (system result divided by its accelerator count); the
best valid closed-division result per accelerator and scenario is kept.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from perfkit.analyze.hardware.catalog import ESTIMATE_BASIS
from perfkit.analyze.hardware.compare import capacity_at_slo
from perfkit.analyze.hardware.ratings import ARTICLE_STARS

EVIDENCE_FORMULA = (
    "per profile, m = the evidence metric per accelerator, score = m / max(m) over devices with evidence, "
    "stars = max(1, ceil(5 * score)); latency-sensitive: MLPerf Server result per accelerator (throughput "
    "that meets the round's latency bounds); throughput-first: MLPerf Offline result per accelerator; "
    "cost-sensitive: Server result per accelerator per USD/hour of rent. No MLPerf row (or no price): "
    "'no evidence'.")
NO_EVIDENCE = "no evidence"
#: The rows of the user's own runs in an evidence table: other workload, so shown but not rated.
MEASURED_HERE = "measured here"
NOT_RATED_OWN = "not rated (own workload)"


def _basis(rows: pd.DataFrame) -> pd.Series:
    return "MLPerf " + rows["round"].astype(str) + " " + rows["location"].astype(str)


def mlperf_evidence(reference: pd.DataFrame, model: str, catalog: pd.DataFrame | None = None,
                    division: str = "closed") -> pd.DataFrame:
    """One row per accelerator for ``model``: Server and Offline result per accelerator, TTFT/TPOT P99
    against the bounds (Server row), measured perf/W, each with its basis; datasheet columns as context."""
    rows = reference[(reference["model"] == model) & (reference["division"] == division)
                     & reference["scenario"].isin(["Server", "Offline"]) & (reference["valid"] == True)  # noqa: E712
                     & reference["accelerator"].fillna("").ne("") & (reference["accelerators"] > 0)].copy()
    rows["basis"] = _basis(rows)
    out = pd.DataFrame(index=pd.Index(sorted(rows["accelerator"].unique()), name="accelerator"))
    for scenario in ("Server", "Offline"):
        best = (rows[rows["scenario"] == scenario].sort_values("result_per_accelerator")
                .drop_duplicates("accelerator", keep="last").set_index("accelerator"))
        key = scenario.lower()
        out[f"{key}_per_accelerator"] = best["result_per_accelerator"]
        out[f"{key}_basis"] = best["basis"]
        if scenario == "Server":
            for col in ("units", "ttft_p99_ms", "ttft_bound_ms", "tpot_p99_ms", "tpot_bound_ms",
                        "latency_p99_ms", "latency_bound_ms"):
                out[col] = best[col]
    powered = rows.dropna(subset=["power_w"]).copy()
    powered["perf_per_w"] = powered["result"] / powered["power_w"]
    powered = powered.sort_values("perf_per_w").drop_duplicates("accelerator", keep="last").set_index("accelerator")
    out["perf_per_w"] = powered["perf_per_w"]
    out["power_w_per_accelerator"] = powered["power_w"] / powered["accelerators"]
    out["power_basis"] = powered["basis"]
    if catalog is not None:
        context = catalog.set_index("name")[["memory_gib", "tdp_w", "fp16_tflops_dense", "price_hour_usd", "as_of"]]
        out = out.join(context)
    out.attrs["model"] = model
    return out


def measured_points(runs: pd.DataFrame, units: str | None = None) -> pd.DataFrame:
    """The user's runs (``measured_runs``: per device) as points for the MLPerf axes: one row per run.

    ``value`` is the run's output tokens/s per device where ``units`` is Tokens/s and the run has
    them, else its achieved req/s per device; ``label`` = "measured here: <run id>".
    """
    columns = ["hardware", "run_id", "value", "value_units", "label"]
    if runs is None or runs.empty:
        return pd.DataFrame(columns=columns)
    tokens = units == "Tokens/s" and "output_tokens_per_s" in runs and runs["output_tokens_per_s"].notna().any()
    value = runs["output_tokens_per_s"] if tokens else runs["achieved_rate_rps"]
    out = pd.DataFrame({"hardware": runs["hardware"].astype(str), "run_id": runs["run_id"].astype(str),
                        "value": pd.to_numeric(value, errors="coerce"),
                        "value_units": "output tokens/s per device" if tokens else "req/s per device"})
    out["label"] = MEASURED_HERE + ": " + out["run_id"]
    return out.dropna(subset=["value"]).reset_index(drop=True)[columns]


def with_measured(evidence: pd.DataFrame, runs: pd.DataFrame, slo_p99_ms: float) -> pd.DataFrame:
    """``evidence`` plus one row per hardware label of the user's runs, named "<label> (measured here)".

    Server column = the highest achieved rate per device with P99 <= ``slo_p99_ms``, Offline column =
    the peak achieved rate; each basis is the run id it comes from. The user's workload is not MLPerf's,
    so these rows are set beside the MLPerf rows, never rated among them.
    """
    if runs is None or runs.empty:
        return evidence
    cap = capacity_at_slo(runs, slo_p99_ms)
    rows = pd.DataFrame({
        "server_per_accelerator": cap["qps_at_slo"].to_numpy(),
        "server_basis": ["measured run " + r if r else "no run within the SLO" for r in cap["run_at_capacity"]],
        "offline_per_accelerator": cap["peak_throughput"].to_numpy(),
        "offline_basis": ["measured run " + r if r else "" for r in cap["run_at_peak"]],
        "units": f"req/s (own workload, P99 <= {slo_p99_ms:g} ms)",
        "power_w_per_accelerator": cap["mean_power_w"].to_numpy(),
    }, index=pd.Index([f"{h} ({MEASURED_HERE})" for h in cap["hardware"]], name=evidence.index.name))
    out = pd.concat([evidence, rows])
    out.attrs = dict(evidence.attrs)
    return out


def _own_rows(evidence: pd.DataFrame) -> pd.Series:
    """True on the rows :func:`with_measured` added."""
    return evidence["server_basis"].fillna("").astype(str).str.startswith(("measured run", "no run within"))


def evidence_ratings(evidence: pd.DataFrame) -> pd.DataFrame:
    """Stars per profile by :data:`EVIDENCE_FORMULA`; "no evidence" where a device lacks the metric.

    The user's own rows (:func:`with_measured`) are "not rated (own workload)" and take no part in the maxima.
    """
    own = _own_rows(evidence)
    mlperf_rows = evidence[~own]
    out = _rate(mlperf_rows).reindex(evidence.index)
    return out.fillna(NOT_RATED_OWN)


def profile_metrics(evidence: pd.DataFrame) -> dict[str, pd.Series]:
    """Per profile, the evidence metric of :data:`EVIDENCE_FORMULA` per accelerator (higher is better)."""
    return {"latency-sensitive": evidence["server_per_accelerator"],
            "throughput-first": evidence["offline_per_accelerator"],
            "cost-sensitive": evidence["server_per_accelerator"] / evidence.get(
                "price_hour_usd", pd.Series(np.nan, index=evidence.index))}


def _rate(evidence: pd.DataFrame) -> pd.DataFrame:
    """:data:`EVIDENCE_FORMULA` over MLPerf rows."""
    out = pd.DataFrame(index=evidence.index)
    for profile, m in profile_metrics(evidence).items():
        m = m.where(m > 0)
        score = m / m.max()
        out[profile] = [("★" * max(1, math.ceil(5 * s - 1e-9))) if pd.notna(s) else NO_EVIDENCE for s in score]
    return out


def mlperf_tco(evidence: pd.DataFrame, utilization: float, per: str) -> pd.DataFrame:
    """Cost per unit of work from the MLPerf Server result per accelerator and the dated hourly rent.

    ``per`` is ``"1M tokens"`` (LLMs: cost = price / (3600 x tokens/s x utilization) x 1e6) or
    ``"1k queries"`` (x 1000). Energy per unit from measured power where a power run exists:
    kWh = W per accelerator / (rate per accelerator) x units / 3.6e6 (the Server figure when measured,
    else the Offline one, as named in ``energy_basis``).
    """
    units = 1e6 if per == "1M tokens" else 1e3
    out = pd.DataFrame(index=evidence.index)
    rate = evidence["server_per_accelerator"]
    out["price_hour_usd"] = evidence["price_hour_usd"]
    out["price_as_of"] = evidence["as_of"]
    out["server_per_accelerator"] = rate
    out[f"usd_per_{per.replace(' ', '_')}"] = evidence["price_hour_usd"] / (3600 * rate * utilization) * units
    out["basis"] = evidence["server_basis"]
    power_rate = rate.where(evidence["power_basis"].str.contains("/Server", na=False),
                            evidence["offline_per_accelerator"])
    out[f"kwh_per_{per.replace(' ', '_')}"] = evidence["power_w_per_accelerator"] / power_rate * units / 3.6e6
    out["energy_basis"] = evidence["power_basis"]
    return out.dropna(subset=[f"usd_per_{per.replace(' ', '_')}"]).sort_values(f"usd_per_{per.replace(' ', '_')}")


def sensitivity(evidence: pd.DataFrame, per: str, price_factors: Sequence[float] = (0.5, 0.75, 1.0, 1.5, 2.0),
                utilizations: Sequence[float] = (0.2, 0.4, 0.6, 0.8, 1.0), pues: Sequence[float] = (1.1, 1.3, 1.5, 1.8),
                kwh_price_usd: float = 0.12, utilization: float = 0.5, pue: float = 1.4) -> pd.DataFrame:
    """Cost per unit and rank per accelerator as one parameter moves and the others stay at the base.

    Cost = (rent x price_factor + W per accelerator / 1000 x PUE x kWh price) / (3600 x rate x utilization)
    x units: rent for the device plus facility energy paid apart (colocation). Power is MLPerf's measured
    W per accelerator where there is a power run, else the TDP (``power_basis`` says which).
    """
    units = 1e6 if per == "1M tokens" else 1e3
    rate = evidence["server_per_accelerator"]
    watts = evidence["power_w_per_accelerator"].fillna(evidence["tdp_w"])
    rows = []
    grid = ([("price factor", v, v, utilization, pue) for v in price_factors]
            + [("utilization", v, 1.0, v, pue) for v in utilizations]
            + [("PUE", v, 1.0, utilization, v) for v in pues])
    for parameter, value, factor, util, p in grid:
        cost = ((evidence["price_hour_usd"] * factor + watts / 1000 * p * kwh_price_usd)
                / (3600 * rate * util) * units).dropna()
        for name, c in cost.items():
            rows.append({"parameter": parameter, "value": value, "accelerator": name, "cost": c,
                         "rank": int((cost < c).sum()) + 1})
    return pd.DataFrame(rows, columns=["parameter", "value", "accelerator", "cost", "rank"])


def fleet_capacities(realtime: pd.DataFrame, offline: pd.DataFrame, names: Sequence[str],
                     realtime_class: str, offline_class: str,
                     estimates: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-device capacities for the fleet: real-time = Server result per accelerator, offline = Offline
    result per accelerator (0 where there is no row), and the basis of each.

    ``estimates`` (e.g. :func:`~perfkit.analyze.hardware.fleet.scaled_capacities`, same classes as
    columns) fill only the cells with no MLPerf row, labelled :data:`ESTIMATE_BASIS`; pass them only
    when the user opted in (``use_estimates`` / ``--use-estimates``).
    """
    caps = pd.DataFrame(0.0, index=list(names), columns=[realtime_class, offline_class])
    basis = pd.DataFrame("no MLPerf row", index=list(names), columns=[realtime_class, offline_class])
    for cls, frame, column in ((realtime_class, realtime, "server"), (offline_class, offline, "offline")):
        known = frame[f"{column}_per_accelerator"].dropna()
        for name in caps.index.intersection(known.index):
            caps.at[name, cls] = float(known[name])
            basis.at[name, cls] = str(frame.at[name, f"{column}_basis"])
    if estimates is not None:
        for name in caps.index.intersection(estimates.index):
            for cls in caps.columns:
                value = float(estimates.at[name, cls]) if cls in estimates else 0.0
                if caps.at[name, cls] == 0 and value > 0:
                    caps.at[name, cls] = value
                    basis.at[name, cls] = ESTIMATE_BASIS
    return caps, basis


def capacity_basis(basis: pd.DataFrame) -> str:
    """One line naming what a fleet's capacities rest on (said with every fleet that is printed)."""
    kinds = sorted({"estimate" if b == ESTIMATE_BASIS else b.split(" closed/")[0].split(" open/")[0]
                    for b in basis.to_numpy().ravel() if b != "no MLPerf row"})
    if not kinds:
        return "capacities: none (no MLPerf row for these devices)"
    text = "capacities: " + ", ".join(k if k != "estimate" else ESTIMATE_BASIS for k in kinds)
    return text + (" (estimates opted in)" if "estimate" in kinds else "")


def article_comparison(evidence: pd.DataFrame) -> pd.DataFrame:
    """The article's stars next to ours for its three devices, ours from MLPerf evidence only.

    Ours are rated among those three (as the article's table is) by :data:`EVIDENCE_FORMULA`; a device
    without an MLPerf row for a profile gets "no evidence" (datasheet figures never give a star).
    """
    three = evidence.reindex(list(ARTICLE_STARS))
    ours = _rate(three)
    rows = []
    for name, claimed in ARTICLE_STARS.items():
        for profile, stars_claimed in claimed.items():
            rows.append({"hardware": name, "profile": profile, "article_stars": "★" * stars_claimed,
                         "our_stars": ours.at[name, profile]})
    return pd.DataFrame(rows).pivot(index="hardware", columns="profile", values=["article_stars", "our_stars"])


def evidence_headline(tco: pd.DataFrame, per: str) -> dict[str, str]:
    """The index figure: the cheapest accelerator per unit from MLPerf Server rows, with its basis."""
    column = f"usd_per_{per.replace(' ', '_')}"
    if tco.empty:
        return {f"cheapest per {per}": "no MLPerf row with a price"}
    best = tco.iloc[0]
    return {f"cheapest per {per} (MLPerf Server)": f"{best.name}: ${best[column]:.3g} (basis: {best['basis']}; "
                                                     f"price as of {best['price_as_of']})"}
