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
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from perfkit.analyze.hardware.catalog import ESTIMATE_BASIS, catalog_row, is_estimate, match_hardware, rate_column
from perfkit.errors import UsageError

HOURS_PER_YEAR = 8760.0

#: What the formulas return: a float for scalar arguments, else an array.
FloatOrArray = Any


def _scalar_or_array(values: np.ndarray) -> FloatOrArray:
    """A float for a 0-d result, else the array (so scalars in give scalars out)."""
    return float(values) if np.ndim(values) == 0 else values


def _check_fraction(utilization: float) -> None:
    if not (0 < utilization <= 1):
        raise ValueError(f"utilization must be in (0, 1], got {utilization}")


def cost_per_query_usd(hourly_price_usd: ArrayLike, qps_at_slo: ArrayLike,
                       utilization: float = 1.0) -> FloatOrArray:
    """USD per query: ``hourly_price / (3600 × qps_at_slo × utilization)``."""
    _check_fraction(utilization)
    qps = np.asarray(qps_at_slo, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(hourly_price_usd, dtype=float) / (3600.0 * qps * utilization)
    return _scalar_or_array(np.where(qps > 0, out, np.nan))


def cost_per_1k_queries_usd(hourly_price_usd: ArrayLike, qps_at_slo: ArrayLike,
                            utilization: float = 1.0) -> FloatOrArray:
    """USD per 1,000 queries: ``hourly_price / (3600 × qps_at_slo × utilization) × 1000``."""
    return cost_per_query_usd(hourly_price_usd, qps_at_slo, utilization) * 1000.0


def cost_per_1m_tokens_usd(hourly_price_usd: ArrayLike, output_tokens_per_s: ArrayLike,
                           utilization: float = 1.0) -> FloatOrArray:
    """USD per million output tokens: ``hourly_price / (3600 × tokens_per_s × utilization) × 1e6``."""
    return cost_per_query_usd(hourly_price_usd, output_tokens_per_s, utilization) * 1e6


def energy_kwh(mean_power_w: ArrayLike, hours: float, pue: float = 1.0) -> FloatOrArray:
    """Facility energy: ``mean_power_w × hours / 1000 × PUE`` (kWh)."""
    if pue < 1:
        raise ValueError(f"PUE is at least 1.0, got {pue}")
    return _scalar_or_array(np.asarray(mean_power_w, dtype=float) * hours / 1000.0 * pue)


def energy_cost_usd(mean_power_w: ArrayLike, hours: float, price_per_kwh_usd: float,
                    pue: float = 1.0) -> FloatOrArray:
    """``energy_kwh(mean_power_w, hours, pue) × price_per_kwh_usd``."""
    return energy_kwh(mean_power_w, hours, pue) * price_per_kwh_usd


def capex_per_hour_usd(price_purchase_usd: ArrayLike, life_years: float) -> FloatOrArray:
    """Straight-line amortization: ``price_purchase_usd / (life_years × 8760)``."""
    if life_years <= 0:
        raise ValueError(f"life_years must be positive, got {life_years}")
    return _scalar_or_array(np.asarray(price_purchase_usd, dtype=float) / (life_years * HOURS_PER_YEAR))


def joules_per_token(mean_power_w: ArrayLike, output_tokens_per_s: ArrayLike) -> FloatOrArray:
    """Energy per output token: ``mean_power_w / output_tokens_per_s`` (J)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(mean_power_w, dtype=float) / np.asarray(output_tokens_per_s, dtype=float)
    return _scalar_or_array(out)


def gflops_per_w(tflops: ArrayLike, power_w: ArrayLike) -> FloatOrArray:
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
        """ValueError naming the first knob out of range."""
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
    given = devices["qps_basis"].to_numpy(dtype=object) if "qps_basis" in devices else np.full(len(devices), None)
    table["qps_basis"] = [str(b) if isinstance(b, str) else ("not measured" if np.isnan(q) else "given")
                          for b, q in zip(given, qps)]
    table["cost_per_1k_queries_usd"] = cost_per_1k_queries_usd(per_h, qps, params.utilization)
    table["output_tokens_per_s"] = tps
    table["cost_per_1m_tokens_usd"] = cost_per_1m_tokens_usd(per_h, tps, params.utilization)
    table["joules_per_token"] = joules_per_token(table["mean_power_w"].to_numpy(), tps)
    tflops = devices["fp16_tflops_dense"].to_numpy(dtype=float) if "fp16_tflops_dense" in devices else nan
    table["fp16_gflops_per_w"] = gflops_per_w(tflops, table["mean_power_w"].to_numpy())
    return table


#: The TCO table's columns a person reads first (the command line's text view).
TCO_COLUMNS = ("name", "total_usd_per_h", "rent_usd_per_h", "capex_usd_per_h", "energy_usd_per_h",
               "mean_power_w", "power_basis", "energy_kwh", "cost_per_1k_queries_usd",
               "cost_per_1m_tokens_usd", "qps_basis", "fp16_gflops_per_w")
#: :data:`TCO_COLUMNS` with the throughput and energy per token beside the costs (the notebook's view).
TCO_DETAIL_COLUMNS = (*TCO_COLUMNS[:8], "qps_at_slo", *TCO_COLUMNS[8:11], "joules_per_token", TCO_COLUMNS[11])
#: Per-device figures a caller may set by name (``--price``, ``--qps``... on the command line).
OVERRIDE_COLUMNS = ("price_hour_usd", "price_purchase_usd", "mean_power_w", "qps_at_slo", "output_tokens_per_s")


def tco_view(table: pd.DataFrame, columns: Sequence[str] = TCO_COLUMNS) -> pd.DataFrame:
    """The TCO table cut to ``columns``, indexed by device name."""
    return table[list(columns)].set_index("name")


def throughput_for_tco(catalog: pd.DataFrame, names: Sequence[str], capacity: pd.DataFrame | None,
                       reference: str | None = None, reference_qps: float = math.nan,
                       precision: str = "fp16", append_measured: bool = True) -> pd.DataFrame:
    """Per device, the throughput within the SLO that costs are computed at, and where it came from.

    Measured (``capacity`` from :func:`~perfkit.analyze.hardware.compare.capacity_at_slo`)
    wins, and brings its output tokens/s (LLM runs) and mean power where measured;
    otherwise, given a ``reference`` device, the rate is scaled from ``reference_qps``
    on it by the ratio of peak dense rates in the catalog (compute-bound assumption:
    the estimate tier, ``qps_basis`` says so); without one it is left unknown. Measured hardware
    labels that are not in ``names`` (e.g. ``cpu-demo``) are appended after them
    when ``append_measured``.
    """
    column = rate_column(precision)
    ref_rate = float(catalog_row(catalog, reference)[column]) if reference else math.nan
    # names as the catalog spells them; unknown names are kept only if measured (else UsageError below)
    canonical = [match_hardware(catalog, n) or str(n) for n in names]
    measured: dict[str, tuple[str, float, str, float, float]] = {}
    for _, row in (capacity if capacity is not None else pd.DataFrame()).iterrows():
        if np.isfinite(row["qps_at_slo"]):
            name = match_hardware(catalog, row["hardware"]) or str(row["hardware"])
            run = str(row.get("run_at_capacity") or "")
            basis = f"measured run {run} (of {int(row['runs'])} runs)" if run else f"measured ({int(row['runs'])} runs)"
            measured[name.casefold()] = (name, float(row["qps_at_slo"]), basis,
                                         float(row.get("output_tokens_per_s", math.nan)),
                                         float(row.get("mean_power_w", math.nan)))
    wanted = {n.casefold() for n in canonical}
    extra = [m[0] for key, m in measured.items() if key not in wanted] if append_measured else []
    rows = []
    for name in canonical + extra:
        tokens = power = math.nan
        if name.casefold() in measured:
            _, qps, basis, tokens, power = measured[name.casefold()]
            in_catalog = match_hardware(catalog, name) is not None
            basis += "" if in_catalog else ", not in the catalog"
        elif reference:
            rate = float(catalog_row(catalog, name)[column])   # an unknown name: UsageError
            qps = reference_qps * rate / ref_rate if rate > 0 else math.nan
            basis = f"{ESTIMATE_BASIS}: {reference_qps:g} req/s on {reference} x {column} ratio" if rate > 0 \
                else f"no {column}"
        else:
            qps, basis = math.nan, "not measured"
        rows.append({"name": name, "qps_at_slo": qps, "qps_basis": basis,
                     "output_tokens_per_s": tokens, "mean_power_w": power})
    return pd.DataFrame(rows, columns=["name", "qps_at_slo", "qps_basis", "output_tokens_per_s", "mean_power_w"])


def devices_frame(catalog: pd.DataFrame, names: Sequence[str],
                  overrides: Mapping[str, Mapping[str, float]] | None = None,
                  throughput: pd.DataFrame | None = None, strict: bool = False) -> pd.DataFrame:
    """Catalog rows for ``names`` (in that order) with ``throughput`` and per-device overrides.

    ``overrides`` maps a column of :data:`OVERRIDE_COLUMNS` to ``{device: value}``
    (device names case-insensitive, ``*`` for every device); they win over the
    catalog and over ``throughput`` (e.g. from :func:`throughput_for_tco`, merged on
    ``name``, where a value is not given). A name outside the catalog (e.g. the
    demo server's ``cpu-demo``) is kept, with unknown figures, when it has an
    hourly price or (unless ``strict``) a measured throughput; otherwise it is a
    UsageError. ``strict`` (the command line): an override naming no compared
    device is a UsageError too, where a notebook's shared price list just skips it.
    """
    overrides = overrides or {}
    known = {k.casefold() for k in overrides.get("price_hour_usd", {})}
    if throughput is not None and not strict:
        known |= {str(n).casefold() for n in throughput.loc[throughput["qps_at_slo"].notna(), "name"]}
    rows = [catalog_row(catalog, n) if match_hardware(catalog, n) is not None or n.casefold() not in known
            else pd.Series({"name": n, "kind": "measured"}) for n in names]
    frame = pd.DataFrame(rows).reset_index(drop=True).reindex(columns=catalog.columns)
    for column in ("tdp_w", "fp16_tflops_dense", "int8_tops_dense", "price_hour_usd", "price_purchase_usd"):
        frame[column] = frame[column].astype(float)
    if throughput is not None:
        frame = frame.merge(throughput, on="name", how="left")
    for column, values in overrides.items():
        if column not in OVERRIDE_COLUMNS:
            raise ValueError(f"cannot override {column!r}; one of {', '.join(OVERRIDE_COLUMNS)}")
        if column not in frame:
            frame[column] = np.nan
        for key, value in values.items():
            hit = (frame["name"].str.casefold() == key.casefold()) | (key == "*")
            if strict and not hit.any():
                raise UsageError(f"{key!r} is not among the compared hardware ({', '.join(frame['name'])})")
            frame.loc[hit, column] = float(value)
            if column == "qps_at_slo":
                frame.loc[hit, "qps_basis"] = "given (override)"
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


def tco_headline(table: pd.DataFrame, params: CostParams) -> dict[str, str]:
    """The TCO report's index figures: cheapest device per 1k queries and its basis (estimates left out)."""
    costed = table.dropna(subset=["cost_per_1k_queries_usd"])
    costed = costed[~is_estimate(costed["qps_basis"])]
    figures = {"mode": f"{params.mode}, utilization {params.utilization:g}, PUE {params.pue:g}"}
    if costed.empty:
        figures["cheapest per 1k queries"] = "none costed (no price or no throughput)"
        return figures
    best = costed.loc[costed["cost_per_1k_queries_usd"].idxmin()]
    figures["cheapest per 1k queries"] = (f"{best['name']}: ${best['cost_per_1k_queries_usd']:.3g} "
                                          f"at {best['qps_at_slo']:,.1f} req/s (basis: {best['qps_basis']})")
    figures["devices costed"] = f"{len(costed)} of {len(table)}"
    return figures
