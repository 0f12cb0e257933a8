"""How much faster is the fleet MILP than enumerating fleets, at the same answer?

    .venv/bin/python benchmarks/hardware_fleet_milp.py [--types 4 --classes 2 --limit 4 --repeat 2]

Random instances (seeded): T hardware types with hourly costs, C workload classes
with demands, per-device capacities; devices dedicated to one class. perfkit's
``solve_fleet`` (scipy.optimize.milp, HiGHS) against exhaustive enumeration of
every integer assignment y[h, c] in 0..LIMIT (the obvious alternative). Prints
both times, the ratio, and checks the costs agree.
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perfkit.analyze.hardware.fleet import WorkloadClass, solve_fleet  # noqa: E402


def enumerate_fleets(cost: np.ndarray, cap: np.ndarray, demand: np.ndarray, limit: int) -> float:
    H, C = cap.shape
    best = math.inf
    for counts in itertools.product(range(limit + 1), repeat=H * C):
        y = np.array(counts).reshape(H, C)
        if np.all((cap * y).sum(axis=0) >= demand - 1e-9):
            best = min(best, float((cost[:, None] * y).sum()))
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", type=int, default=4)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--limit", type=int, default=4, help="enumeration bound per (type, class)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    t_milp = t_enum = 0.0
    for _ in range(args.repeat):
        cost = rng.uniform(0.5, 5, args.types).round(2)
        cap = rng.uniform(10, 40, (args.types, args.classes)).round(1)
        demand = (args.limit * cap.min(axis=0)).round(1)   # so the enumeration bound is exact
        classes = [WorkloadClass(f"c{j}", float(d)) for j, d in enumerate(demand)]
        t0 = time.perf_counter()
        got = solve_fleet([f"h{i}" for i in range(args.types)], cost, cap, classes, split=False)
        t1 = time.perf_counter()
        expected = enumerate_fleets(cost, cap, demand, args.limit)
        t2 = time.perf_counter()
        t_milp += t1 - t0
        t_enum += t2 - t1
        assert abs(got.cost_usd_per_h - expected) < 1e-6, (got.cost_usd_per_h, expected)
    space = (args.limit + 1) ** (args.types * args.classes)
    print(f"{args.repeat} instances, {args.types} types x {args.classes} classes, {space:,} fleets enumerated each")
    print(f"milp (HiGHS):  {t_milp / args.repeat * 1e3:9.2f} ms per instance")
    print(f"enumeration:   {t_enum / args.repeat * 1e3:9.2f} ms per instance")
    print(f"ratio: enumeration / milp = {t_enum / t_milp:,.0f}x, same optimal cost on every instance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
