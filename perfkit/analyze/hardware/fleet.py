"""Mixed-fleet optimizer: the cheapest integer fleet for several workload classes.

The model (solved with ``scipy.optimize.milp``):

- hardware types ``h`` with an hourly cost ``cost_h`` (rent, or capex + energy),
  workload classes ``c`` with a demand ``D_c`` in requests/s. A real-time class is
  ``Q`` req/s that must be served with P99 ≤ ``L`` ms; an offline class is
  ``N`` items a day that must be done within a window of ``W`` hours, i.e.
  ``D_c = N / (3600 × W)`` items/s while the window is open.
- ``cap[h, c]``: requests/s one device of type ``h`` sustains on class ``c``
  within that class's latency bound (measured, or MLPerf rows; scaled from the
  catalog by :func:`scaled_capacities` only as the estimate tier the user opts
  into); 0 or NaN means ``h`` cannot serve ``c``.
  ``target_utilization_c`` ≤ 1 keeps headroom: usable capacity is
  ``cap[h, c] × target_utilization_c``.
- variables: ``n_h`` ∈ ℤ≥0, devices of type ``h``; ``x[h, c]`` ≥ 0, device
  equivalents of type ``h`` given to class ``c`` (continuous when devices may
  split their time between classes, integer when each device serves one class).
- minimize ``Σ_h cost_h · n_h`` subject to
  ``Σ_h cap[h, c] · u_c · x[h, c] ≥ D_c`` for every class (demand met) and
  ``Σ_c x[h, c] ≤ n_h`` for every type (no device over-committed),
  ``x[h, c] = 0`` where ``h`` cannot serve ``c``, and optional ``n_h ≤ max_h``.

The cheapest single-type fleet is the same problem restricted to one ``h``.

Assumption, stated: every device in ``n_h`` is paid around the clock (owned,
reserved, or rented for the whole day), and the offline window may coincide with
the real-time peak, so both demands are met at once. With ``window_fraction``
(``W / 24``), integer ``m_h`` devices may also be rented only while the offline
window is open: shares ``z[h, c]`` (offline classes only, ``Σ_c z[h, c] ≤ m_h``)
add to the demand rows, at ``cost_h × W / 24`` per hour averaged over the day.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from perfkit.analyze.hardware.catalog import rate_column
from perfkit.analyze.hardware.tco import CostParams, hourly_cost_breakdown


@dataclass(frozen=True)
class WorkloadClass:
    """One class of work. ``rate_rps`` is the demand while it runs."""

    name: str
    rate_rps: float
    kind: str = "realtime"                 # realtime | offline
    p99_ms: float = math.nan              # latency bound (real-time classes)
    target_utilization: float = 1.0       # usable fraction of a device's capacity
    window_hours: float = 24.0            # hours a day the class runs (offline: its window)

    @staticmethod
    def realtime(name: str, rate_rps: float, p99_ms: float, target_utilization: float = 1.0) -> "WorkloadClass":
        """``rate_rps`` all day, each request within ``p99_ms`` at the 99th percentile."""
        return WorkloadClass(name, float(rate_rps), "realtime", float(p99_ms), target_utilization)

    @staticmethod
    def offline(name: str, items_per_day: float, window_hours: float = 24.0,
                target_utilization: float = 1.0) -> "WorkloadClass":
        """``items_per_day`` done within ``window_hours``: demand ``N / (3600 × W)`` items/s."""
        if not (0 < window_hours <= 24):
            raise ValueError(f"window_hours must be in (0, 24], got {window_hours}")
        return WorkloadClass(name, items_per_day / (3600.0 * window_hours), "offline", math.nan,
                             target_utilization, window_hours)


def offline_window_fraction(classes: Sequence[WorkloadClass]) -> float | None:
    """The longest offline window as a fraction of the day (what window-only rental pays), or None."""
    windows = [c.window_hours for c in classes if c.kind == "offline"]
    return max(windows) / 24.0 if windows else None


@dataclass
class FleetResult:
    """A solved fleet: devices per type, load shares, cost; ``feasible`` False if none exists.

    ``window_devices``/``window_shares``: devices rented only for the offline window
    (when the model allows them), paid ``window_fraction`` of their hourly cost.
    """

    feasible: bool
    cost_usd_per_h: float
    devices: dict[str, int] = field(default_factory=dict)
    shares: pd.DataFrame = field(default_factory=pd.DataFrame)  # device-equivalents per (h, c)
    message: str = ""
    window_devices: dict[str, int] = field(default_factory=dict)
    window_shares: pd.DataFrame = field(default_factory=pd.DataFrame)
    window_fraction: float | None = None

    def parts(self, cost_usd_per_h: Mapping[str, float]) -> dict[str, tuple[int, float]]:
        """``{label: (devices, USD per hour)}``: always-on types, then window-only ones."""
        out = {h: (n, n * cost_usd_per_h[h]) for h, n in self.devices.items() if n}
        for h, n in self.window_devices.items():
            if n:
                out[f"{h} (offline window)"] = (n, n * cost_usd_per_h[h] * (self.window_fraction or 1.0))
        return out

    def describe(self) -> str:
        """One line: devices per type and the hourly cost (or why there is no fleet)."""
        if not self.feasible:
            return f"infeasible ({self.message})"
        used = ", ".join(f"{n}× {h}" for h, n in self.devices.items() if n) or "no always-on device"
        extra = ", ".join(f"{n}× {h}" for h, n in self.window_devices.items() if n)
        if extra:
            used += f" + {extra} for the offline window only"
        return f"{used} at ${self.cost_usd_per_h:,.2f}/h"


def solve_fleet(hardware: Sequence[str], cost_usd_per_h: Sequence[float], capacity_rps: np.ndarray,
                classes: Sequence[WorkloadClass], split: bool = True,
                max_devices: Mapping[str, int] | None = None,
                window_fraction: float | None = None) -> FleetResult:
    """The cheapest integer fleet (see the module docstring for the model).

    ``capacity_rps[i, j]`` is one device of ``hardware[i]`` on ``classes[j]``.
    ``split=False`` makes every device serve a single class (integer shares).
    ``window_fraction`` (e.g. ``8 / 24``) also allows devices ``m_h`` rented only while
    the offline window is open: they serve offline classes only and cost
    ``window_fraction × cost_h`` per hour averaged over the day.
    """
    hardware = list(hardware)
    cost = np.asarray(cost_usd_per_h, dtype=float)
    cap = np.nan_to_num(np.asarray(capacity_rps, dtype=float), nan=0.0)
    H, C = len(hardware), len(classes)
    if cap.shape != (H, C):
        raise ValueError(f"capacity must be {H}x{C}, got {cap.shape}")
    if window_fraction is not None and not (0 < window_fraction <= 1):
        raise ValueError(f"window_fraction must be in (0, 1], got {window_fraction}")
    usable = np.array([np.isfinite(cost[i]) and cost[i] >= 0 for i in range(H)], dtype=bool)
    if not usable.any():
        return FleetResult(False, math.nan, message="no hardware with a known cost")
    demand = np.array([c.rate_rps for c in classes], dtype=float)
    util = np.array([c.target_utilization for c in classes], dtype=float)
    eff = cap * util[None, :] * usable[:, None]
    for j, c in enumerate(classes):
        if demand[j] > 0 and not (eff[:, j] > 0).any():
            return FleetResult(False, math.nan, message=f"no hardware can serve class {c.name!r}")
    offline = np.array([c.kind == "offline" for c in classes], dtype=bool)
    window = window_fraction if window_fraction is not None else 0.0
    windowed = window_fraction is not None
    # variable layout: n[H], x[H*C], then (windowed) m[H], z[H*C]
    n_at, x_at = 0, H
    m_at, z_at = H + H * C, 2 * H + H * C
    nvar = 2 * (H + H * C) if windowed else H + H * C
    safe_cost = np.where(usable, cost, 0.0)
    objective = np.zeros(nvar)
    objective[n_at:n_at + H] = safe_cost
    if windowed:
        objective[m_at:m_at + H] = safe_cost * window
    rows, lo, hi = [], [], []
    for j in range(C):                      # demand: sum_i eff[i,j] (x[i,j] + z[i,j]) >= D_j
        row = np.zeros(nvar)
        for i in range(H):
            row[x_at + i * C + j] = eff[i, j]
            if windowed:
                row[z_at + i * C + j] = eff[i, j]
        rows.append(row); lo.append(demand[j]); hi.append(np.inf)
    for i in range(H):                      # no over-commitment: sum_j x[i,j] <= n_i (same for z, m)
        for shares_at, count_at in ((x_at, n_at),) + (((z_at, m_at),) if windowed else ()):
            row = np.zeros(nvar)
            row[count_at + i] = -1.0
            row[shares_at + i * C: shares_at + (i + 1) * C] = 1.0
            rows.append(row); lo.append(-np.inf); hi.append(0.0)
    ub = np.full(nvar, np.inf)
    for i in range(H):
        if not usable[i]:
            ub[n_at + i] = 0.0
            if windowed:
                ub[m_at + i] = 0.0
        elif max_devices and hardware[i] in max_devices:
            ub[n_at + i] = float(max_devices[hardware[i]])
        for j in range(C):
            if eff[i, j] <= 0:
                ub[x_at + i * C + j] = 0.0
            if windowed and (eff[i, j] <= 0 or not offline[j]):
                ub[z_at + i * C + j] = 0.0
    integrality = np.ones(nvar, dtype=int)
    if split:
        integrality[x_at:x_at + H * C] = 0
        if windowed:
            integrality[z_at:z_at + H * C] = 0
    res = milp(objective, integrality=integrality, bounds=Bounds(np.zeros(nvar), ub),
               constraints=LinearConstraint(np.array(rows), lo, hi))
    if res.status != 0 or res.x is None:
        return FleetResult(False, math.nan, message=res.message)
    names = [c.name for c in classes]
    n = np.round(res.x[n_at:n_at + H]).astype(int)
    shares = pd.DataFrame(res.x[x_at:x_at + H * C].reshape(H, C), index=hardware, columns=names).clip(lower=0.0)
    total = float(np.dot(safe_cost, n))
    result = FleetResult(True, total, {hardware[i]: int(n[i]) for i in range(H)}, shares, res.message)
    if windowed:
        m = np.round(res.x[m_at:m_at + H]).astype(int)
        result.window_devices = {hardware[i]: int(m[i]) for i in range(H)}
        result.window_fraction = window_fraction
        result.window_shares = pd.DataFrame(res.x[z_at:z_at + H * C].reshape(H, C), index=hardware,
                                            columns=names).clip(lower=0.0)
        result.cost_usd_per_h = total + float(np.dot(safe_cost, m)) * window
    return result


def cheapest_single_type(hardware: Sequence[str], cost_usd_per_h: Sequence[float], capacity_rps: np.ndarray,
                         classes: Sequence[WorkloadClass], split: bool = True,
                         window_fraction: float | None = None) -> tuple[str | None, FleetResult, pd.DataFrame]:
    """Every one-type fleet, and the cheapest: ``(name, result, table of all types)``."""
    cap = np.asarray(capacity_rps, dtype=float)
    rows, best, best_name = [], None, None
    for i, hw in enumerate(hardware):
        result = solve_fleet([hw], [cost_usd_per_h[i]], cap[i:i + 1, :], classes, split=split,
                             window_fraction=window_fraction)
        rows.append({"hardware": hw, "feasible": result.feasible,
                     "devices": result.devices.get(hw, 0) if result.feasible else np.nan,
                     "cost_usd_per_h": result.cost_usd_per_h,
                     "note": "" if result.feasible else result.message})
        if result.feasible and (best is None or result.cost_usd_per_h < best.cost_usd_per_h):
            best, best_name = result, hw
    if best is None:
        best = FleetResult(False, math.nan, message="no single type can serve every class")
    return best_name, best, pd.DataFrame(rows)


def scaled_capacities(catalog: pd.DataFrame, hardware: Sequence[str], classes: Sequence[WorkloadClass],
                      reference: str, reference_capacity_rps: Mapping[str, float],
                      reference_p99_ms: Mapping[str, float], precision: str = "fp16") -> pd.DataFrame:
    """Capacity of each device on each class, scaled from one measured reference device: an estimate.

    The estimate tier (:data:`~perfkit.analyze.hardware.catalog.ESTIMATE_BASIS`): callers plan on it
    only when the user opts in (``use_estimates`` / ``--use-estimates``) and say so.

    Stated scaling (compute-bound assumption): with ``r = tflops_h / tflops_ref``
    (peak dense, from the catalog), ``cap[h, c] = cap[ref, c] × r`` and the P99 at
    that load ``p99[h, c] = p99[ref, c] / r``. A real-time class is only served by
    devices whose scaled P99 meets its bound; devices without a TFLOPS figure get 0.
    """
    column = rate_column(precision)
    by_name = catalog.set_index("name")[column]
    ref_tflops = float(by_name[reference])
    out = pd.DataFrame(0.0, index=list(hardware), columns=[c.name for c in classes])
    for h in hardware:
        tflops = float(by_name.get(h, math.nan))
        if not (tflops > 0):
            continue
        r = tflops / ref_tflops
        for c in classes:
            cap = reference_capacity_rps[c.name] * r
            if c.kind == "realtime":
                p99 = reference_p99_ms[c.name] / r
                if not (p99 <= c.p99_ms):
                    cap = 0.0
            out.at[h, c.name] = cap
    return out


@dataclass
class FleetComparison:
    """The cheapest mixed fleet beside the cheapest one-type fleet.

    ``fleets``: the feasible ones by title (for a figure); ``costs``: USD per hour
    of one device of each type; ``single_table``: every one-type fleet;
    ``saving_percent``: how much cheaper the mix is per hour (NaN if either is infeasible).
    """

    mixed: FleetResult
    single_name: str | None
    single: FleetResult
    single_table: pd.DataFrame
    saving_percent: float
    fleets: dict[str, FleetResult]
    costs: dict[str, float]
    capacity: pd.DataFrame


def compare_fleets(hardware: Sequence[str], cost_usd_per_h: Sequence[float], capacity: pd.DataFrame,
                   classes: Sequence[WorkloadClass], split: bool = True,
                   window_fraction: float | None = None) -> FleetComparison:
    """Mixed optimum vs. cheapest single type, with the saving in percent.

    ``capacity``: requests/s of one device (rows: ``hardware``) on each class (columns).
    """
    cap = capacity.loc[list(hardware), [c.name for c in classes]].to_numpy(dtype=float)
    mixed = solve_fleet(hardware, cost_usd_per_h, cap, classes, split=split, window_fraction=window_fraction)
    single_name, single, table = cheapest_single_type(hardware, cost_usd_per_h, cap, classes, split=split,
                                                      window_fraction=window_fraction)
    saving = (1 - mixed.cost_usd_per_h / single.cost_usd_per_h) * 100 \
        if mixed.feasible and single.feasible and single.cost_usd_per_h > 0 else math.nan
    fleets = {"mixed (optimized)": mixed}
    if single.feasible:
        fleets[f"only {single_name}"] = single
    return FleetComparison(mixed, single_name, single, table, saving, fleets,
                           {h: float(c) for h, c in zip(hardware, cost_usd_per_h)}, capacity)


def plan_fleet(devices: pd.DataFrame, capacity: pd.DataFrame, classes: Sequence[WorkloadClass],
               params: CostParams, split: bool = True, window_rent: bool = False) -> FleetComparison:
    """The cheapest fleet of ``devices`` (rows of the catalog, with any price overrides).

    Each device type costs its ``total_usd_per_h`` under ``params`` (rent, or capex +
    energy); ``window_rent`` also allows devices rented only for the longest offline
    window (:func:`offline_window_fraction`). The command line and the TCO notebook
    both plan through here.
    """
    cost = hourly_cost_breakdown(devices, params)["total_usd_per_h"].to_numpy(dtype=float)
    window = offline_window_fraction(classes) if window_rent else None
    return compare_fleets(list(devices["name"]), list(cost), capacity, classes, split=split,
                          window_fraction=window)


def capacity_frame(hardware: Sequence[str], classes: Sequence[WorkloadClass],
                   measured_rps: Mapping[tuple[str, str], float]) -> pd.DataFrame:
    """Capacities from measurements: ``measured_rps[(hardware, class)]``, 0 where not measured.

    A pair whose hardware or class is not among ``hardware`` / ``classes`` is a KeyError.
    """
    out = pd.DataFrame(0.0, index=list(hardware), columns=[c.name for c in classes])
    for (hw, cls), rps in measured_rps.items():
        if hw not in out.index or cls not in out.columns:
            raise KeyError((hw, cls))
        out.at[hw, cls] = float(rps)
    return out


def fleet_table(result: FleetResult, cost_usd_per_h: Mapping[str, float]) -> pd.DataFrame:
    """A solved fleet as rows: devices per type, its share of each class, its cost per hour.

    Devices rented only for the offline window are rows of their own, costed at the
    window's fraction of the day.
    """
    if not result.feasible:
        return pd.DataFrame(columns=["hardware", "devices", "cost_usd_per_h"])
    parts = result.parts(cost_usd_per_h)
    frames = [result.shares.assign(hardware=result.shares.index)]
    if not result.window_shares.empty:
        frames.append(result.window_shares.assign(hardware=[f"{h} (offline window)"
                                                            for h in result.window_shares.index]))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame["hardware"].isin(list(parts))]
    frame.insert(0, "devices", [parts[h][0] for h in frame["hardware"]])
    frame["cost_usd_per_h"] = [parts[h][1] for h in frame["hardware"]]
    return frame[["hardware", "devices", *result.shares.columns, "cost_usd_per_h"]].reset_index(drop=True)


def summary_line(result: FleetComparison, claimed_percent: float | None = None, basis: str | None = None) -> str:
    """One sentence: the mix, the cheapest single type, the saving (and a claim to compare).

    ``basis`` (e.g. :func:`~perfkit.analyze.hardware.evidence.capacity_basis`) leads the sentence.
    """
    mixed, single = result.mixed, result.single
    lead = f"{basis[0].upper()}{basis[1:]}. " if basis else ""
    if not mixed.feasible:
        return f"{lead}No feasible fleet: {mixed.message}."
    text = f"{lead}Optimized mix: {mixed.describe()}."
    if single.feasible:
        text += (f" Cheapest single type: {single.describe()}."
                 f" Our numbers give a {result.saving_percent:.1f} % lower hourly cost for the mix")
        text += f" (the article claims {claimed_percent:g} %)." if claimed_percent is not None else "."
    else:
        text += " No single type can serve every class."
    return text
