"""Total cost of ownership: the formulas, exactly, as pure functions.

Every function takes and returns plain numbers (or numpy arrays) whose unit is
in the name, so anyone can check a figure by hand:

- ``cost_per_query_usd     = hourly_price_usd / (3600 × qps_at_slo × utilization)``
- ``cost_per_1k_queries    = cost_per_query_usd × 1000``
- ``cost_per_1m_tokens_usd = hourly_price_usd / (3600 × output_tokens_per_s × utilization) × 1e6``
- ``energy_kwh             = mean_power_w × hours / 1000 × PUE``
- ``energy_cost_usd        = energy_kwh × price_per_kwh_usd``
- ``capex_per_hour_usd     = price_purchase_usd / (life_years × 8760)``
- ``joules_per_token       = mean_power_w / output_tokens_per_s``
- ``gflops_per_w           = tflops × 1000 / power_w``

``utilization`` is the fraction of the paid hours in which the device serves
at the measured rate (1.0 = flat out around the clock; production fleets often
run at 0.3–0.6). It defaults to 1.0 and is always a visible parameter.
A rented device's hourly price already includes its electricity; an owned one
pays capex (amortized straight-line over its life) plus energy at the
facility's PUE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

HOURS_PER_YEAR = 8760.0


def _scalar_or_array(values: np.ndarray):
    """A float for a 0-d result, else the array (so scalars in give scalars out)."""
    return float(values) if np.ndim(values) == 0 else values


def _check_fraction(utilization: float) -> None:
    if not (0 < utilization <= 1):
        raise ValueError(f"utilization must be in (0, 1], got {utilization}")


def cost_per_query_usd(hourly_price_usd: ArrayLike, qps_at_slo: ArrayLike, utilization: float = 1.0):
    """USD per query: ``hourly_price / (3600 × qps_at_slo × utilization)``."""
    _check_fraction(utilization)
    qps = np.asarray(qps_at_slo, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(hourly_price_usd, dtype=float) / (3600.0 * qps * utilization)
    return _scalar_or_array(np.where(qps > 0, out, np.nan))


def cost_per_1k_queries_usd(hourly_price_usd: ArrayLike, qps_at_slo: ArrayLike, utilization: float = 1.0):
    """USD per 1,000 queries: ``hourly_price / (3600 × qps_at_slo × utilization) × 1000``."""
    return cost_per_query_usd(hourly_price_usd, qps_at_slo, utilization) * 1000.0


def cost_per_1m_tokens_usd(hourly_price_usd: ArrayLike, output_tokens_per_s: ArrayLike,
                           utilization: float = 1.0):
    """USD per million output tokens: ``hourly_price / (3600 × tokens_per_s × utilization) × 1e6``."""
    return cost_per_query_usd(hourly_price_usd, output_tokens_per_s, utilization) * 1e6


def energy_kwh(mean_power_w: ArrayLike, hours: float, pue: float = 1.0):
    """Facility energy: ``mean_power_w × hours / 1000 × PUE`` (kWh)."""
    if pue < 1:
        raise ValueError(f"PUE is at least 1.0, got {pue}")
    return _scalar_or_array(np.asarray(mean_power_w, dtype=float) * hours / 1000.0 * pue)


def energy_cost_usd(mean_power_w: ArrayLike, hours: float, price_per_kwh_usd: float, pue: float = 1.0):
    """``energy_kwh(mean_power_w, hours, pue) × price_per_kwh_usd``."""
    return energy_kwh(mean_power_w, hours, pue) * price_per_kwh_usd


def capex_per_hour_usd(price_purchase_usd: ArrayLike, life_years: float):
    """Straight-line amortization: ``price_purchase_usd / (life_years × 8760)``."""
    if life_years <= 0:
        raise ValueError(f"life_years must be positive, got {life_years}")
    return _scalar_or_array(np.asarray(price_purchase_usd, dtype=float) / (life_years * HOURS_PER_YEAR))


def joules_per_token(mean_power_w: ArrayLike, output_tokens_per_s: ArrayLike):
    """Energy per output token: ``mean_power_w / output_tokens_per_s`` (J)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(mean_power_w, dtype=float) / np.asarray(output_tokens_per_s, dtype=float)
    return _scalar_or_array(out)


def gflops_per_w(tflops: ArrayLike, power_w: ArrayLike):
    """Peak efficiency: ``tflops × 1000 / power_w`` (GFLOPS per W, or GOPS/W for TOPS)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(tflops, dtype=float) * 1000.0 / np.asarray(power_w, dtype=float)
    return _scalar_or_array(out)


def breakeven_hours(price_purchase_usd: float, price_hour_usd: float, owned_running_usd_per_hour: float) -> float:
    """Hours of use after which buying is cheaper than renting:
    ``price_purchase / (price_hour − owned_running_per_hour)``; inf if renting is never dearer."""
    if any(math.isnan(v) for v in (price_purchase_usd, price_hour_usd, owned_running_usd_per_hour)):
        return math.nan
    margin = price_hour_usd - owned_running_usd_per_hour
    return price_purchase_usd / margin if margin > 0 else math.inf


@dataclass(frozen=True)
class CostParams:
    """The knobs of a TCO comparison (all visible in reports)."""

    mode: str = "rent"                 # rent: pay price_hour_usd; own: capex + energy
    utilization: float = 1.0           # fraction of paid hours serving at the measured rate
    pue: float = 1.4                   # facility power usage effectiveness (owned mode)
    price_per_kwh_usd: float = 0.12    # electricity price (owned mode)
    life_years: float = 4.0            # amortization life (owned mode)
    power_fraction_of_tdp: float = 1.0  # mean power as a fraction of TDP when not measured

    def with_mode(self, mode: str) -> "CostParams":
        """The same knobs, costed as ``rent`` or ``own``."""
        return CostParams(**{**self.__dict__, "mode": mode})

    def validate(self) -> None:
        if self.mode not in ("rent", "own"):
            raise ValueError(f"mode must be 'rent' or 'own', got {self.mode!r}")
        _check_fraction(self.utilization)
        if self.pue < 1:
            raise ValueError(f"PUE is at least 1.0, got {self.pue}")
        if self.life_years <= 0 or self.price_per_kwh_usd < 0:
            raise ValueError("life_years must be > 0 and price_per_kwh_usd >= 0")
        if not (0 < self.power_fraction_of_tdp <= 1.5):
            raise ValueError("power_fraction_of_tdp must be in (0, 1.5]")


def hourly_cost_breakdown(devices: pd.DataFrame, params: CostParams) -> pd.DataFrame:
    """Per device, what one device-hour costs, split into its parts.

    ``devices`` needs ``name``, ``price_hour_usd``, ``price_purchase_usd``, ``tdp_w``
    and may carry ``mean_power_w`` (measured; NaN → ``tdp_w × power_fraction_of_tdp``).
    Rent: ``rent_usd_per_h = price_hour_usd`` (energy included in the price).
    Own:  ``capex_usd_per_h = price_purchase_usd / (life_years × 8760)`` and
    ``energy_usd_per_h = mean_power_w / 1000 × PUE × price_per_kwh_usd``.
    """
    params.validate()
    out = pd.DataFrame({"name": devices["name"].to_numpy()})
    measured = devices["mean_power_w"].to_numpy(dtype=float) if "mean_power_w" in devices \
        else np.full(len(devices), np.nan)
    assumed = devices["tdp_w"].to_numpy(dtype=float) * params.power_fraction_of_tdp
    out["mean_power_w"] = np.where(np.isnan(measured), assumed, measured)
    out["power_basis"] = np.where(~np.isnan(measured), "measured",
                                  np.where(np.isnan(assumed), "unknown", f"TDP x {params.power_fraction_of_tdp:g}"))
    out["energy_kwh_per_h"] = energy_kwh(out["mean_power_w"].to_numpy(), 1.0, params.pue)
    if params.mode == "rent":
        out["rent_usd_per_h"] = devices["price_hour_usd"].to_numpy(dtype=float)
        out["capex_usd_per_h"] = 0.0
        out["energy_usd_per_h"] = 0.0
    else:
        out["rent_usd_per_h"] = 0.0
        out["capex_usd_per_h"] = capex_per_hour_usd(devices["price_purchase_usd"].to_numpy(dtype=float),
                                                    params.life_years)
        out["energy_usd_per_h"] = out["energy_kwh_per_h"] * params.price_per_kwh_usd
    out["total_usd_per_h"] = out["rent_usd_per_h"] + out["capex_usd_per_h"] + out["energy_usd_per_h"]
    return out


def tco_table(devices: pd.DataFrame, params: CostParams, hours: float = 24 * 30) -> pd.DataFrame:
    """The TCO breakdown per device, with unit costs where a throughput is known.

    ``devices`` as for :func:`hourly_cost_breakdown`, plus optional ``qps_at_slo``
    and ``output_tokens_per_s`` (measured within the SLO) and ``fp16_tflops_dense``.
    Costs over ``hours`` of operation, per 1,000 queries and per 1M tokens at
    ``params.utilization``; FLOPS per W from the datasheet rate and mean power.
    """
    table = hourly_cost_breakdown(devices, params)
    table["hours"] = hours
    for part in ("rent", "capex", "energy", "total"):
        table[f"{part}_usd"] = table[f"{part}_usd_per_h"] * hours
    table["energy_kwh"] = table["energy_kwh_per_h"] * hours
    nan = np.full(len(devices), np.nan)
    qps = devices["qps_at_slo"].to_numpy(dtype=float) if "qps_at_slo" in devices else nan
    tps = devices["output_tokens_per_s"].to_numpy(dtype=float) if "output_tokens_per_s" in devices else nan
    per_h = table["total_usd_per_h"].to_numpy(dtype=float)
    table["qps_at_slo"] = qps
    table["cost_per_1k_queries_usd"] = cost_per_1k_queries_usd(per_h, qps, params.utilization)
    table["output_tokens_per_s"] = tps
    table["cost_per_1m_tokens_usd"] = cost_per_1m_tokens_usd(per_h, tps, params.utilization)
    table["joules_per_token"] = joules_per_token(table["mean_power_w"].to_numpy(), tps)
    tflops = devices["fp16_tflops_dense"].to_numpy(dtype=float) if "fp16_tflops_dense" in devices else nan
    table["fp16_gflops_per_w"] = gflops_per_w(tflops, table["mean_power_w"].to_numpy())
    return table


def devices_frame(catalog: pd.DataFrame, names: Sequence[str],
                  price_hour_overrides: Mapping[str, float] | None = None,
                  purchase_overrides: Mapping[str, float] | None = None,
                  throughput: pd.DataFrame | None = None) -> pd.DataFrame:
    """Catalog rows for ``names`` (in that order) with price overrides and throughput attached.

    A name outside the catalog is kept, with unknown figures, when ``throughput``
    lists it (a measured label such as ``cpu-demo``); otherwise it is a UsageError.
    """
    from perfkit.analyze.catalog import catalog_row, match_hardware

    known = set(throughput["name"]) if throughput is not None else set()
    rows = [catalog_row(catalog, n) if (match_hardware(catalog, n) is not None or n not in known)
            else pd.Series({"name": n, "kind": "measured"}) for n in names]
    frame = pd.DataFrame(rows).reset_index(drop=True).reindex(columns=catalog.columns)
    for column in ("tdp_w", "fp16_tflops_dense", "int8_tops_dense", "price_hour_usd", "price_purchase_usd"):
        frame[column] = frame[column].astype(float)
    for column, overrides in (("price_hour_usd", price_hour_overrides), ("price_purchase_usd", purchase_overrides)):
        for key, value in (overrides or {}).items():
            frame.loc[frame["name"].str.casefold() == key.casefold(), column] = float(value)
    if throughput is not None:
        frame = frame.merge(throughput, on="name", how="left")
    return frame


def rent_vs_own(devices: pd.DataFrame, params: CostParams) -> pd.DataFrame:
    """Per device: hourly rent against owning (amortized capex + energy), and the break-even.

    ``breakeven_hours = price_purchase_usd / (price_hour_usd − energy_usd_per_h)``: hours of
    use after which buying has cost less than renting (inf if renting is never dearer).
    """
    own = hourly_cost_breakdown(devices, params.with_mode("own"))
    out = pd.DataFrame({"name": devices["name"].to_numpy(),
                        "rent_usd_per_h": devices["price_hour_usd"].to_numpy(dtype=float),
                        "own_capex_usd_per_h": own["capex_usd_per_h"].to_numpy(),
                        "own_energy_usd_per_h": own["energy_usd_per_h"].to_numpy(),
                        "own_total_usd_per_h": own["total_usd_per_h"].to_numpy()})
    out["breakeven_hours"] = [breakeven_hours(p, r, e) for p, r, e in zip(
        devices["price_purchase_usd"].to_numpy(dtype=float), out["rent_usd_per_h"], out["own_energy_usd_per_h"])]
    out["breakeven_years_at_utilization"] = out["breakeven_hours"] / (HOURS_PER_YEAR * params.utilization)
    return out


def headline_figures(table: pd.DataFrame, params: CostParams) -> dict[str, str]:
    """The TCO report's index figures: cheapest device per 1k queries and its basis."""
    costed = table.dropna(subset=["cost_per_1k_queries_usd"])
    figures = {"mode": f"{params.mode}, utilization {params.utilization:g}, PUE {params.pue:g}"}
    if costed.empty:
        figures["cheapest per 1k queries"] = "none costed (no price or no throughput)"
        return figures
    best = costed.loc[costed["cost_per_1k_queries_usd"].idxmin()]
    figures["cheapest per 1k queries"] = (f"{best['name']}: ${best['cost_per_1k_queries_usd']:.3g} "
                                          f"at {best['qps_at_slo']:,.1f} req/s")
    figures["devices costed"] = f"{len(costed)} of {len(table)}"
    return figures
