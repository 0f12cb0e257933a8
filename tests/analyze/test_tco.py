"""TCO formulas on hand-computed examples."""
from __future__ import annotations

import json
import math

import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest

from factories import make_run
from perfkit import store
from perfkit.analyze import hardware as hw
from perfkit.analyze.hardware import tco
from perfkit.cli import main
from perfkit.errors import UsageError
from perfkit.paths import PACKAGED_CATALOG, PACKAGED_NOTEBOOKS
from perfkit.report.headline import HEADLINE_MIME


@pytest.fixture(scope="module")
def catalog():
    return hw.load_catalog(PACKAGED_CATALOG)


def test_cost_per_query_and_per_1k():
    # $2.00/h at 50 req/s: 2 / (3600 * 50) = 1.111e-5 $/query, 0.01111 $/1k
    assert tco.cost_per_query_usd(2.0, 50) == pytest.approx(2 / 180000)
    assert tco.cost_per_1k_queries_usd(2.0, 50) == pytest.approx(0.0111111, rel=1e-5)
    # half the hours serving -> twice the cost per query
    assert tco.cost_per_1k_queries_usd(2.0, 50, utilization=0.5) == pytest.approx(0.0222222, rel=1e-5)
    assert math.isnan(tco.cost_per_1k_queries_usd(2.0, 0))
    with pytest.raises(ValueError):
        tco.cost_per_query_usd(1.0, 10, utilization=0)


def test_cost_per_million_tokens():
    # $3.60/h at 1,000 tokens/s = 3.6e6 tokens/h -> $1.00 per 1M tokens
    assert tco.cost_per_1m_tokens_usd(3.6, 1000) == pytest.approx(1.0)
    assert tco.cost_per_1m_tokens_usd(3.6, 1000, utilization=0.4) == pytest.approx(2.5)
    out = tco.cost_per_1m_tokens_usd(np.array([3.6, 7.2]), np.array([1000, 1000]))
    assert out == pytest.approx([1.0, 2.0])


def test_energy_capex_and_efficiency():
    assert tco.energy_kwh(300, 10, pue=1.5) == pytest.approx(4.5)       # 300 W * 10 h / 1000 * 1.5
    assert tco.energy_cost_usd(300, 10, 0.2, pue=1.5) == pytest.approx(0.9)
    assert tco.capex_per_hour_usd(35040, 4) == pytest.approx(1.0)        # 35,040 / (4 * 8760)
    assert tco.joules_per_token(400, 200) == pytest.approx(2.0)
    assert tco.gflops_per_w(312, 400) == pytest.approx(780.0)
    assert tco.breakeven_hours(10000, 2.0, 1.0) == pytest.approx(10000)
    assert tco.breakeven_hours(10000, 1.0, 2.0) == math.inf
    assert math.isnan(tco.breakeven_hours(10000, math.nan, 0.1))       # no public rent: unknown
    with pytest.raises(ValueError):
        tco.energy_kwh(100, 1, pue=0.9)


def _devices():
    return pd.DataFrame({
        "name": ["A", "B"], "price_hour_usd": [2.0, np.nan], "price_purchase_usd": [35040.0, 17520.0],
        "tdp_w": [500.0, 250.0], "mean_power_w": [np.nan, 200.0], "qps_at_slo": [100.0, 50.0],
        "output_tokens_per_s": [1000.0, np.nan], "fp16_tflops_dense": [500.0, 100.0]})


def test_breakdown_rent_and_own():
    rent = tco.tco_table(_devices(), tco.CostParams(mode="rent", utilization=0.5), hours=10)
    a = rent.set_index("name").loc["A"]
    assert a["total_usd_per_h"] == 2.0 and a["total_usd"] == 20.0
    assert a["cost_per_1k_queries_usd"] == pytest.approx(2 / (3600 * 100 * 0.5) * 1000)
    assert a["cost_per_1m_tokens_usd"] == pytest.approx(2 / (3600 * 1000 * 0.5) * 1e6)
    assert a["power_basis"] == "TDP x 1" and a["fp16_gflops_per_w"] == pytest.approx(1000.0)
    assert math.isnan(rent.set_index("name").loc["B", "total_usd_per_h"])   # no public price

    own = tco.tco_table(_devices(), tco.CostParams(mode="own", pue=1.5, price_per_kwh_usd=0.1,
                                                   life_years=4), hours=10)
    b = own.set_index("name").loc["B"]
    assert b["power_basis"] == "measured" and b["mean_power_w"] == 200.0
    assert b["capex_usd_per_h"] == pytest.approx(0.5)                  # 17,520 / 35,040 h
    assert b["energy_usd_per_h"] == pytest.approx(0.2 * 1.5 * 0.1)     # 200 W -> 0.3 kWh/h at PUE 1.5
    parts = own[["rent_usd_per_h", "capex_usd_per_h", "energy_usd_per_h"]].sum(axis=1)
    assert np.allclose(parts, own["total_usd_per_h"])


def test_cli_tco_json(capsys):
    assert main(["tco", "--hardware", "T4", "--qps", "T4=100", "--utilization", "0.5", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "T4" and row["qps_basis"] == "given (override)"
    assert row["cost_per_1k_queries_usd"] == pytest.approx(0.526 / (3600 * 100 * 0.5) * 1000, rel=1e-6)
    assert main(["tco", "--hardware", "T4", "--utilization", "1.5"]) == 2
    assert main(["tco", "--hardware", "nope"]) == 2


# The notebook's parameters in the small test below, and the same inputs as flags.
NB_PARAMS = {"hardware_names": "T4,L4,MI250X", "mode": "own", "purchase_overrides": "T4:2000,L4:2500",
             "utilization": 0.4, "realtime_rps": 300.0, "offline_items_per_day": 1000000.0,
             "fleet_hardware": "A100 80GB,T4", "rent_offline_window_only": True}


def _tco_cli(capsys, *extra: str) -> pd.DataFrame:
    """`perfkit tco` for the notebook's devices, throughput and costs, as a frame by name."""
    qps = hw.throughput_for_tco(hw.load_catalog(PACKAGED_CATALOG), ["T4", "L4", "MI250X"], None, "T4", 100.0)
    args = ["tco", "--mode", "own", "--purchase", "T4=2000", "--purchase", "L4=2500", "--utilization", "0.4",
            "--json", *extra]
    for name, rate in zip(qps["name"], qps["qps_at_slo"]):
        args += ["--hardware", name, "--qps", f"{name}={rate!r}"]
    assert main(args) == 0
    return pd.DataFrame(json.loads(capsys.readouterr().out)).set_index("name")


def test_cli_and_notebook_cost_the_same(catalog, capsys):
    """Notebook 06's calls and `perfkit tco` / `perfkit fleet` on the same inputs give the same figures."""
    params = hw.CostParams(mode="own", utilization=0.4)
    overrides = {"price_hour_usd": hw.parse_overrides(""),
                 "price_purchase_usd": hw.parse_overrides(NB_PARAMS["purchase_overrides"])}
    throughput = hw.throughput_for_tco(catalog, hw.parse_names(NB_PARAMS["hardware_names"]), None, "T4", 100.0)
    table = hw.tco_table(hw.devices_frame(catalog, throughput["name"], overrides, throughput), params, 720.0)
    cli = _tco_cli(capsys)
    nb = hw.tco_view(table, hw.TCO_DETAIL_COLUMNS)
    for column in ("total_usd_per_h", "cost_per_1k_queries_usd", "energy_kwh"):
        assert cli[column].to_numpy() == pytest.approx(nb[column].to_numpy(), rel=1e-12, nan_ok=True)
    assert cli.loc["L4", "cost_per_1k_queries_usd"] > 0 and math.isnan(cli.loc["MI250X", "total_usd_per_h"])

    classes = [hw.WorkloadClass.realtime("perception", 300.0, 50.0),
               hw.WorkloadClass.offline("planning", 1e6, 8.0)]
    names = hw.parse_names(NB_PARAMS["fleet_hardware"])
    caps = hw.scaled_capacities(catalog, names, classes, "T4", {"perception": 150.0, "planning": 200.0},
                                {"perception": 80.0})
    # rent mode (the fleet command takes no purchase prices; in rent mode they do not count)
    plan = hw.plan_fleet(hw.devices_frame(catalog, names, overrides), caps, classes, params.with_mode("rent"),
                         window_rent=True)
    fleet_args = ["fleet", "--hardware", "A100 80GB", "--hardware", "T4", "--realtime", "perception=300@50",
                  "--offline", "planning=1000000@8", "--reference", "T4", "--ref-capacity", "perception=150@80",
                  "--ref-capacity", "planning=200", "--window-rent"]
    assert main(fleet_args + ["--use-estimates"]) == 0
    out = capsys.readouterr().out
    assert plan.mixed.feasible and f"mixed fleet:  {plan.mixed.describe()}" in out
    assert f"${plan.mixed.cost_usd_per_h:,.2f}/h" in out
    assert "basis: estimate (datasheet TFLOPS scaling) from T4, opted in with --use-estimates" in out
    # without the opt-in, the estimate feeds no fleet: a usage error naming the flag
    assert main(fleet_args) == 2
    assert "--use-estimates" in capsys.readouterr().err


def test_no_estimate_feeds_a_fleet_or_a_headline_unless_opted_in(catalog):
    """Fleet capacities come from MLPerf rows (or measurements); estimates only fill gaps when passed."""
    reference = hw.load_reference(None)
    vision = hw.mlperf_evidence(reference, "resnet50", catalog)
    names = ["H100 SXM", "T4"]
    classes = [hw.WorkloadClass.realtime("perception", 1000.0, math.inf),
               hw.WorkloadClass.offline("planning", 1e6, 8.0)]
    caps, basis = hw.fleet_capacities(vision, vision, names, "perception", "planning")
    assert (caps.loc["T4"] == 0).all() and (basis.loc["T4"] == "no MLPerf row").all()
    assert basis.loc["H100 SXM", "perception"].startswith("MLPerf v4.1 closed/")
    assert hw.capacity_basis(basis) == "capacities: MLPerf v4.1"
    estimates = hw.scaled_capacities(catalog, names, classes, "T4", {"perception": 150.0, "planning": 200.0},
                                     {"perception": 1.0})
    caps2, basis2 = hw.fleet_capacities(vision, vision, names, "perception", "planning", estimates)
    assert caps2.loc["T4", "planning"] == 200.0 and basis2.loc["T4", "planning"] == hw.ESTIMATE_BASIS
    assert caps2.loc["H100 SXM", "perception"] == caps.loc["H100 SXM", "perception"]   # evidence wins
    assert "estimates opted in" in hw.capacity_basis(basis2)
    # the TCO headline skips estimate rows; the evidence headline names its MLPerf row
    thr = hw.throughput_for_tco(catalog, ["T4", "L4"], None, "T4", 100.0)
    assert thr["qps_basis"].str.startswith(hw.ESTIMATE_BASIS).all()
    table = hw.tco_table(hw.devices_frame(catalog, thr["name"], None, thr), hw.CostParams())
    assert hw.tco_headline(table, hw.CostParams())["cheapest per 1k queries"].startswith("none costed")
    head = hw.evidence_headline(hw.mlperf_tco(vision, 0.5, "1k queries"), "1k queries")
    assert "basis: MLPerf v4.1 closed/" in next(iter(head.values()))


def test_notebook_06_small_parameters(tmp_path, capsys):
    out = tmp_path / "06.ipynb"
    papermill.execute_notebook(
        str(PACKAGED_NOTEBOOKS / "06_tco.ipynb"), str(out), kernel_name="python3", progress_bar=False,
        cwd=str(tmp_path), parameters={"db": str(tmp_path / "absent.duckdb"), "use_estimates": True, **NB_PARAMS})
    nb = nbformat.read(out, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    # the estimate fleets run only because use_estimates is set, and say so; the MLPerf fleet names its rows
    assert "Capacities: estimate (datasheet TFLOPS scaling) from T4, opted in with use_estimates." in printed
    assert "Capacities: MLPerf v4.1 resnet50 Server/Offline rows." in printed
    heads = [o["data"][HEADLINE_MIME] for c in nb.cells for o in c.get("outputs", [])
             if HEADLINE_MIME in o.get("data", {})]
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    (head,) = heads
    # the index figures come from MLPerf Server rows and dated prices, never from the TFLOPS estimate
    assert "cheapest per 1k queries" not in head["figures"]
    assert "estimate" not in " ".join(head["figures"].values())
    first = next(o for c in nb.cells for o in c.get("outputs", []))["data"]["application/vnd.perfkit.conclusion+json"]
    assert first["lines"][0].startswith("Per 1M tokens: H200 is cheapest at $") and "MLPerf v4.1 row " in first["lines"][0]
    assert first["lines"][2].startswith("Fleet: ")
    assert head["figures"]["fleet on MLPerf capacities (mix vs one type)"].endswith(
        "(basis: MLPerf v4.1 resnet50 Server/Offline rows)")
    llm = head["figures"]["cheapest per 1M tokens (MLPerf Server)"]
    assert llm.startswith("H200: $") and "basis: MLPerf v4.1 closed/" in llm and "price as of" in llm
    # the estimate tier stays in the notebook's table, the same figure as the command line prints
    per_h = 2500 / (4 * 8760) + 0.072 * 1.4 * 0.12
    expected = per_h / (3600 * 100 * 121 / 65 * 0.4) * 1000
    assert _tco_cli(capsys).loc["L4", "cost_per_1k_queries_usd"] == pytest.approx(expected, rel=2e-3)


def test_cli_tco_from_measured_runs(tmp_db, capsys):
    with store.connect(tmp_db) as con:
        for run_id, rate, p99 in (("a", 30.0, 20.0), ("b", 60.0, 45.0), ("c", 90.0, 120.0)):
            summary = {"requests": 600, "ok": 600, "achieved_rate_rps": rate, "latency_ms": {"p99": p99}}
            make_run(con, run_id, labels={"hardware": "cpu-demo"}, summary=summary)
    args = ["tco", "--db", str(tmp_db), "--slo-p99-ms", "50", "--hardware", "cpu-demo",
            "--price", "cpu-demo=0.36", "--json"]
    assert main(args) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["qps_at_slo"] == 60.0                                   # the 90 req/s run missed the SLO
    assert row["qps_basis"] == "measured run b (of 3 runs), not in the catalog"
    assert row["cost_per_1k_queries_usd"] == pytest.approx(0.36 / (3600 * 60) * 1000)
    # outside the catalog and without a price, a measured device cannot be costed on the command line
    assert main(args[:-3]) == 2


def test_throughput_for_tco_measured_scaled_and_outside_the_catalog(catalog):
    capacity = pd.DataFrame({"hardware": ["cpu-demo", "t4"], "qps_at_slo": [60.0, 20.0], "runs": [3, 2],
                             "output_tokens_per_s": [np.nan, 400.0], "mean_power_w": [np.nan, 65.0]})
    thr = hw.throughput_for_tco(catalog, ["T4", "L4"], capacity, "T4", 100.0).set_index("name")
    assert list(thr.index) == ["T4", "L4", "cpu-demo"]
    assert thr.loc["T4", "qps_at_slo"] == 20.0 and thr.loc["T4", "qps_basis"] == "measured (2 runs)"
    assert thr.loc["L4", "qps_at_slo"] == pytest.approx(100.0 * 121 / 65)
    assert thr.loc["L4", "qps_basis"].startswith("estimate (datasheet TFLOPS scaling)")
    assert thr.loc["cpu-demo", "qps_basis"] == "measured (3 runs), not in the catalog"
    devices = tco.devices_frame(catalog, list(thr.index), {"price_hour_usd": {"cpu-demo": 0.2}}, thr.reset_index())
    table = tco.tco_table(devices, tco.CostParams(), hours=1).set_index("name")
    assert table.loc["cpu-demo", "cost_per_1k_queries_usd"] == pytest.approx(0.2 / (3600 * 60) * 1000)
    assert table.loc["T4", "cost_per_1m_tokens_usd"] == pytest.approx(0.526 / (3600 * 400) * 1e6)
    assert table.loc["T4", "joules_per_token"] == pytest.approx(65 / 400)
    assert table.loc["cpu-demo", "power_basis"] == "unknown"
    with pytest.raises(UsageError):
        hw.throughput_for_tco(catalog, ["T5"], capacity, "T4", 100.0)
    # without a reference, what was not measured stays unknown (the command line's case)
    plain = hw.throughput_for_tco(catalog, ["L4", "cpu-demo"], capacity, append_measured=False)
    assert list(plain["qps_basis"]) == ["not measured", "measured (3 runs), not in the catalog"]


def test_devices_frame_overrides():
    catalog = hw.load_catalog(PACKAGED_CATALOG)
    frame = tco.devices_frame(catalog, ["t4", "L4"], {"qps_at_slo": {"*": 5.0}, "price_hour_usd": {"l4": 1.0},
                                                      "mean_power_w": {"MI300X": 9.0}})
    assert list(frame["name"]) == ["T4", "L4"] and list(frame["qps_at_slo"]) == [5.0, 5.0]
    assert frame.loc[1, "price_hour_usd"] == 1.0 and frame["mean_power_w"].isna().all()
    with pytest.raises(UsageError, match="'MI300X' is not among the compared hardware"):
        tco.devices_frame(catalog, ["T4"], {"mean_power_w": {"MI300X": 9.0}}, strict=True)
    with pytest.raises(UsageError, match="not in the catalog"):
        tco.devices_frame(catalog, ["cpu-demo"])
