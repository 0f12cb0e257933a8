"""The mixed-fleet MILP against brute force on small instances, and the article's example."""
from __future__ import annotations

import itertools
import math
import numpy as np
import pytest
from scipy.optimize import linprog

from perfkit.analyze.hardware import fleet
from perfkit.analyze.hardware.catalog import load_catalog
from perfkit.cli import main
from perfkit.paths import PACKAGED_CATALOG


def _brute_dedicated(cost, cap, demand, limit):
    """Enumerate integer devices per (type, class): the cheapest feasible assignment."""
    H, C = cap.shape
    best = math.inf
    for counts in itertools.product(range(limit + 1), repeat=H * C):
        y = np.array(counts).reshape(H, C)
        if np.all((cap * y).sum(axis=0) >= demand - 1e-9):
            best = min(best, float((cost[:, None] * y).sum()))
    return best


def _brute_split(cost, cap, demand, limit):
    """Enumerate device counts; feasibility of splitting them across classes is an LP."""
    H, C = cap.shape
    best = math.inf
    for n in itertools.product(range(limit + 1), repeat=H):
        total = float(np.dot(cost, n))
        if total >= best:
            continue
        # variables x[h, c] >= 0, sum_c x[h, c] <= n_h, sum_h cap[h, c] x[h, c] >= D_c
        a_ub, b_ub = [], []
        for h in range(H):
            row = np.zeros(H * C); row[h * C:(h + 1) * C] = 1; a_ub.append(row); b_ub.append(n[h])
        for c in range(C):
            row = np.zeros(H * C)
            for h in range(H):
                row[h * C + c] = -cap[h, c]
            a_ub.append(row); b_ub.append(-demand[c])
        res = linprog(np.zeros(H * C), A_ub=np.array(a_ub), b_ub=b_ub, bounds=(0, None), method="highs")
        if res.status == 0:
            best = total
    return best


@pytest.mark.parametrize("seed", range(8))
def test_milp_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    H, C = 3, 2
    cost = rng.uniform(0.5, 5.0, H).round(2)
    cap = rng.uniform(5, 40, (H, C)).round(1)
    cap[rng.random((H, C)) < 0.25] = 0.0          # some hardware cannot serve some class
    cap[0, :] = np.maximum(cap[0, :], 5.0)        # keep every instance feasible
    demand = rng.uniform(10, 60, C).round(1)
    classes = [fleet.WorkloadClass(f"c{j}", float(demand[j])) for j in range(C)]
    names = [f"h{i}" for i in range(H)]
    capped = np.where(cap > 0, cap, 0)
    # Bounded enumeration is exact when every type that serves a class covers it alone with
    # at most 4 devices: an optimum then never has more than 4 of a type on one class
    # (dedicated) nor more than 4 x C of a type (split). Scale demand to make that so.
    min_cap = np.array([capped[:, j][capped[:, j] > 0].min() for j in range(C)])
    demand = np.minimum(demand, 4 * min_cap).round(1)
    classes = [fleet.WorkloadClass(f"c{j}", float(demand[j])) for j in range(C)]
    for split, brute, limit in ((False, _brute_dedicated, 4), (True, _brute_split, 4 * C)):
        got = fleet.solve_fleet(names, cost, cap, classes, split=split)
        expected = brute(cost, capped, demand, limit)
        assert got.feasible
        assert got.cost_usd_per_h == pytest.approx(expected, abs=1e-6), (split, cost, cap, demand)
        # the solution itself meets every demand and over-commits no device
        eff = (np.nan_to_num(cap) * got.shares.to_numpy()).sum(axis=0)
        assert np.all(eff >= demand - 1e-6)
        assert np.all(got.shares.sum(axis=1).to_numpy() <= np.array(list(got.devices.values())) + 1e-6)


def test_split_is_never_dearer_than_dedicated():
    cap = np.array([[30.0, 30.0]])
    classes = [fleet.WorkloadClass("a", 15), fleet.WorkloadClass("b", 15)]
    assert fleet.solve_fleet(["x"], [1.0], cap, classes, split=True).devices == {"x": 1}
    assert fleet.solve_fleet(["x"], [1.0], cap, classes, split=False).devices == {"x": 2}


def test_infeasible_and_unknown_cost():
    classes = [fleet.WorkloadClass("a", 10)]
    res = fleet.solve_fleet(["x"], [1.0], np.array([[0.0]]), classes)
    assert not res.feasible and "can serve" in res.message
    res = fleet.solve_fleet(["x", "y"], [np.nan, 2.0], np.array([[10.0], [5.0]]), classes)
    assert res.feasible and res.devices == {"x": 0, "y": 2}      # no price -> not bought
    res = fleet.solve_fleet(["x"], [1.0], np.array([[1.0]]), classes, max_devices={"x": 3})
    assert not res.feasible


def test_offline_demand_and_headroom():
    c = fleet.WorkloadClass.offline("batch", items_per_day=36000, window_hours=10)
    assert c.rate_rps == pytest.approx(1.0)                      # 36,000 / (3600 * 10)
    rt = fleet.WorkloadClass.realtime("rt", 90, 50, target_utilization=0.9)
    res = fleet.solve_fleet(["x"], [1.0], np.array([[50.0]]), [rt])
    assert res.devices == {"x": 2}                               # 90 / (50 * 0.9) = 2.0
    with pytest.raises(ValueError):
        fleet.WorkloadClass.offline("bad", 10, window_hours=30)


def test_article_example_a100_realtime_t4_offline():
    """A100 for real-time perception, T4 for offline planning, with the catalog's prices."""
    catalog = load_catalog(PACKAGED_CATALOG)
    classes = [fleet.WorkloadClass.realtime("perception", 2000, 50),
               fleet.WorkloadClass.offline("planning", 50e6, 8)]
    hw = ["A100 80GB", "T4"]
    cap = fleet.scaled_capacities(catalog, hw, classes, "T4", {"perception": 150, "planning": 200},
                                  {"perception": 80})
    # T4's scaled P99 (80 ms) misses 50 ms: it cannot take perception; A100 is 312/65 = 4.8x T4
    assert cap.loc["T4", "perception"] == 0
    assert cap.loc["A100 80GB", "perception"] == pytest.approx(150 * 312 / 65)
    prices = catalog.set_index("name").loc[hw, "price_hour_usd"].to_numpy()
    out = fleet.compare_fleets(hw, prices, cap, classes)
    mixed, single = out.mixed, out.single
    assert out.single_name == "A100 80GB"
    assert mixed.devices["A100 80GB"] > 0 and mixed.devices["T4"] > 0
    assert mixed.cost_usd_per_h < single.cost_usd_per_h and out.saving_percent > 0


def test_cli_fleet(capsys):
    args = ["fleet", "--hardware", "A100 80GB", "--hardware", "T4", "--realtime", "perception=2000@50",
            "--offline", "planning=50000000@8", "--reference", "T4",
            "--ref-capacity", "perception=150@80", "--ref-capacity", "planning=200", "--use-estimates"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mixed fleet:" in out and "saving of the mix" in out and "(basis: estimate (datasheet TFLOPS" in out
    assert main(args[:-1]) == 2                                    # estimates only when asked for
    assert main(args + ["--window-rent"]) == 0
    assert "(offline window)" in capsys.readouterr().out
    assert main(["fleet", "--realtime", "bad"]) == 2
    assert main(["fleet", "--hardware", "T4", "--realtime", "rt=10@5", "--capacity", "T4:rt=0"]) == 2
    assert main(["fleet", "--hardware", "T4", "--realtime", "rt=10@5", "--capacity", "T4:rt=5",
                 "--pue", "0.5"]) == 2
    # a fleet that cannot be built (no price in own mode) is a failed check: exit 1
    assert main(["fleet", "--hardware", "T4", "--realtime", "rt=10@5", "--capacity", "T4:rt=5",
                 "--mode", "own"]) == 1
    assert "basis: given (--capacity, measured)" in capsys.readouterr().out


def test_window_rental_hand_example():
    # one type at $1/h; real-time 10 req/s (cap 10) all day; offline 20 items/s for 6 h (cap 10)
    classes = [fleet.WorkloadClass.realtime("rt", 10, 50), fleet.WorkloadClass.offline("batch", 20 * 6 * 3600, 6)]
    cap = np.array([[10.0, 10.0]])
    always = fleet.solve_fleet(["x"], [1.0], cap, classes)
    assert always.devices == {"x": 3} and always.cost_usd_per_h == 3.0
    windowed = fleet.solve_fleet(["x"], [1.0], cap, classes, window_fraction=6 / 24)
    assert windowed.devices == {"x": 1} and windowed.window_devices == {"x": 2}
    assert windowed.cost_usd_per_h == pytest.approx(1 + 2 * 0.25)
    assert "for the offline window only" in windowed.describe()
    table = fleet.fleet_table(windowed, {"x": 1.0})
    assert list(table["hardware"]) == ["x", "x (offline window)"]
    assert table["cost_usd_per_h"].tolist() == pytest.approx([1.0, 0.5])
    # window devices never serve the real-time class
    assert windowed.window_shares.loc["x", "rt"] == 0
    with pytest.raises(ValueError):
        fleet.solve_fleet(["x"], [1.0], cap, classes, window_fraction=0)


@pytest.mark.parametrize("seed", range(4))
def test_window_rental_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    cost = rng.uniform(0.5, 4.0, 2).round(2)
    cap = rng.uniform(10, 30, (2, 2)).round(1)
    demand = np.minimum(rng.uniform(10, 60, 2), 3 * cap.min(axis=0)).round(1)
    frac = 0.25
    classes = [fleet.WorkloadClass("rt", float(demand[0])),
               fleet.WorkloadClass("off", float(demand[1]), kind="offline")]
    got = fleet.solve_fleet(["a", "b"], cost, cap, classes, split=False, window_fraction=frac)
    best = math.inf
    # y: always-on devices per (type, class); z: window devices per type (offline class only)
    for counts in itertools.product(range(4), repeat=6):
        y, z = np.array(counts[:4]).reshape(2, 2), np.array(counts[4:])
        served = (cap * y).sum(axis=0) + np.array([0.0, (cap[:, 1] * z).sum()])
        if np.all(served >= demand - 1e-9):
            best = min(best, float((cost[:, None] * y).sum() + frac * (cost * z).sum()))
    assert got.cost_usd_per_h == pytest.approx(best, abs=1e-6)
