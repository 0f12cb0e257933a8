"""Mixed-fleet optimizer: the cheapest integer fleet for several workload classes.

The model (solved with ``scipy.optimize.milp``):

- hardware types ``h`` with an hourly cost ``cost_h`` (rent, or capex + energy),
  workload classes ``c`` with a demand ``D_c`` in requests/s. A real-time class is
  ``Q`` req/s that must be served with P99 ≤ ``L`` ms; an offline class is
  ``N`` items a day that must be done within a window of ``W`` hours, i.e.
  ``D_c = N / (3600 × W)`` items/s while the window is open.
- ``cap[h, c]``: requests/s one device of type ``h`` sustains on class ``c``
  within that class's latency bound (measured, imported, or scaled from the
  catalog by :func:`scaled_capacities`); 0 or NaN means ``h`` cannot serve ``c``.
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

Assumption, stated: every device is paid around the clock (owned, reserved, or
rented for the whole day), and the offline window may coincide with the
real-time peak, so both demands are met at once. A fleet that rents the offline
devices only for their window would pay ``W / 24`` of their hourly cost; that
case is not modelled here and would favour dedicated offline devices further.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from perfkit.analyze.catalog import rate_column


@dataclass(frozen=True)
class WorkloadClass:
    """One class of work. ``rate_rps`` is the demand while it runs."""

    name: str
    rate_rps: float
    kind: str = "realtime"                 # realtime | offline
    p99_ms: float = math.nan              # latency bound (real-time classes)
    target_utilization: float = 1.0       # usable fraction of a device's capacity

    @staticmethod
    def realtime(name: str, rate_rps: float, p99_ms: float, target_utilization: float = 1.0) -> "WorkloadClass":
        return WorkloadClass(name, float(rate_rps), "realtime", float(p99_ms), target_utilization)

    @staticmethod
    def offline(name: str, items_per_day: float, window_hours: float = 24.0,
                target_utilization: float = 1.0) -> "WorkloadClass":
        """``items_per_day`` done within ``window_hours``: demand ``N / (3600 × W)`` items/s."""
        if not (0 < window_hours <= 24):
            raise ValueError(f"window_hours must be in (0, 24], got {window_hours}")
        return WorkloadClass(name, items_per_day / (3600.0 * window_hours), "offline", math.nan,
                             target_utilization)


@dataclass
class FleetResult:
    """A solved fleet: devices per type, load shares, cost; ``feasible`` False if none exists."""

    feasible: bool
    cost_usd_per_h: float
    devices: dict[str, int] = field(default_factory=dict)
    shares: pd.DataFrame = field(default_factory=pd.DataFrame)  # device-equivalents per (h, c)
    message: str = ""

    def describe(self) -> str:
        if not self.feasible:
            return f"infeasible ({self.message})"
        used = ", ".join(f"{n}× {h}" for h, n in self.devices.items() if n)
        return f"{used} at ${self.cost_usd_per_h:,.2f}/h"


def solve_fleet(hardware: Sequence[str], cost_usd_per_h: Sequence[float], capacity_rps: np.ndarray,
                classes: Sequence[WorkloadClass], split: bool = True,
                max_devices: Mapping[str, int] | None = None) -> FleetResult:
    """The cheapest integer fleet (see the module docstring for the model).

    ``capacity_rps[i, j]`` is one device of ``hardware[i]`` on ``classes[j]``.
    ``split=False`` makes every device serve a single class (integer shares).
    """
    hardware = list(hardware)
    cost = np.asarray(cost_usd_per_h, dtype=float)
    cap = np.nan_to_num(np.asarray(capacity_rps, dtype=float), nan=0.0)
    H, C = len(hardware), len(classes)
    if cap.shape != (H, C):
        raise ValueError(f"capacity must be {H}x{C}, got {cap.shape}")
    usable_types = [i for i in range(H) if np.isfinite(cost[i]) and cost[i] >= 0]
    if not usable_types:
        return FleetResult(False, math.nan, message="no hardware with a known cost")
    demand = np.array([c.rate_rps for c in classes], dtype=float)
    util = np.array([c.target_utilization for c in classes], dtype=float)
    eff = cap * util[None, :]
    for j, c in enumerate(classes):
        if demand[j] > 0 and not any(eff[i, j] > 0 for i in usable_types):
            return FleetResult(False, math.nan, message=f"no hardware can serve class {c.name!r}")
    # variable vector: n_0..n_{H-1}, then x_{i,j} at H + i*C + j
    nvar = H + H * C
    objective = np.zeros(nvar)
    objective[:H] = np.where(np.isfinite(cost), cost, 0.0)
    rows, lo, hi = [], [], []
    for j in range(C):                      # demand: sum_i eff[i,j] x[i,j] >= D_j
        row = np.zeros(nvar)
        for i in range(H):
            row[H + i * C + j] = eff[i, j]
        rows.append(row); lo.append(demand[j]); hi.append(np.inf)
    for i in range(H):                      # split: sum_j x[i,j] - n_i <= 0
        row = np.zeros(nvar)
        row[i] = -1.0
        row[H + i * C: H + (i + 1) * C] = 1.0
        rows.append(row); lo.append(-np.inf); hi.append(0.0)
    ub = np.full(nvar, np.inf)
    for i in range(H):
        if i not in usable_types:
            ub[i] = 0.0
        elif max_devices and hardware[i] in max_devices:
            ub[i] = float(max_devices[hardware[i]])
        for j in range(C):
            if eff[i, j] <= 0 or i not in usable_types:
                ub[H + i * C + j] = 0.0
    integrality = np.ones(nvar, dtype=int)
    if split:
        integrality[H:] = 0
    res = milp(objective, integrality=integrality, bounds=Bounds(np.zeros(nvar), ub),
               constraints=LinearConstraint(np.array(rows), lo, hi))
    if res.status != 0 or res.x is None:
        return FleetResult(False, math.nan, message=res.message)
    n = np.round(res.x[:H]).astype(int)
    shares = pd.DataFrame(res.x[H:].reshape(H, C), index=hardware, columns=[c.name for c in classes])
    devices = {hardware[i]: int(n[i]) for i in range(H)}
    total = float(sum(cost[i] * n[i] for i in usable_types))
    return FleetResult(True, total, devices, shares.clip(lower=0.0), res.message)


def cheapest_single_type(hardware: Sequence[str], cost_usd_per_h: Sequence[float], capacity_rps: np.ndarray,
                         classes: Sequence[WorkloadClass],
                         split: bool = True) -> tuple[str | None, FleetResult, pd.DataFrame]:
    """Every one-type fleet, and the cheapest: ``(name, result, table of all types)``."""
    cap = np.asarray(capacity_rps, dtype=float)
    rows, best, best_name = [], None, None
    for i, hw in enumerate(hardware):
        result = solve_fleet([hw], [cost_usd_per_h[i]], cap[i:i + 1, :], classes, split=split)
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
    """Capacity of each device on each class, scaled from one measured reference device.

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


def compare_fleets(hardware: Sequence[str], cost_usd_per_h: Sequence[float], capacity: pd.DataFrame,
                   classes: Sequence[WorkloadClass], split: bool = True) -> dict:
    """Mixed optimum vs. cheapest single type, with the saving in percent."""
    cap = capacity.loc[list(hardware), [c.name for c in classes]].to_numpy(dtype=float)
    mixed = solve_fleet(hardware, cost_usd_per_h, cap, classes, split=split)
    single_name, single, table = cheapest_single_type(hardware, cost_usd_per_h, cap, classes, split=split)
    saving = (1 - mixed.cost_usd_per_h / single.cost_usd_per_h) * 100 \
        if mixed.feasible and single.feasible and single.cost_usd_per_h > 0 else math.nan
    fleets = {"mixed (optimized)": mixed}
    if single.feasible:
        fleets[f"only {single_name}"] = single
    return {"mixed": mixed, "single_name": single_name, "single": single, "single_table": table,
            "saving_percent": saving, "fleets": fleets, "costs": dict(zip(hardware, cost_usd_per_h))}


def fleet_table(result: FleetResult, cost_usd_per_h: Mapping[str, float]) -> pd.DataFrame:
    """A solved fleet as rows: devices per type, its share of each class, its cost per hour."""
    if not result.feasible:
        return pd.DataFrame(columns=["hardware", "devices", "cost_usd_per_h"])
    frame = result.shares.copy()
    frame.insert(0, "devices", [result.devices[h] for h in frame.index])
    frame["cost_usd_per_h"] = [result.devices[h] * cost_usd_per_h[h] for h in frame.index]
    frame = frame[frame["devices"] > 0]
    return frame.rename_axis("hardware").reset_index()


def summary_line(result: dict, claimed_percent: float | None = None) -> str:
    """One sentence: the mix, the cheapest single type, the saving (and a claim to compare)."""
    mixed, single = result["mixed"], result["single"]
    if not mixed.feasible:
        return f"No feasible fleet: {mixed.message}."
    text = f"Optimized mix: {mixed.describe()}."
    if single.feasible:
        text += (f" Cheapest single type: {single.describe()}."
                 f" Our numbers give a {result['saving_percent']:.1f} % lower hourly cost for the mix")
        text += f" (the article claims {claimed_percent:g} %)." if claimed_percent is not None else "."
    else:
        text += " No single type can serve every class."
    return text
