"""Hardware comparison: ratings by formula, capacity at the SLO, MLPerf loader, runs from the store."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from analyze_synth import insert_series
from factories import make_run
from perfkit import store
from perfkit.analyze import hardware as hw
from perfkit.cli import main
from perfkit.errors import InputError, UsageError
from perfkit.paths import PACKAGED_CATALOG, PACKAGED_NOTEBOOKS

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "hardware"
MLPERF_JSON = FIXTURES / "mlperf_v4.1_summary_results_excerpt.json"
MLPERF_CSV = FIXTURES / "mlperf_v4.1_GigaComputing_summary_excerpt.csv"


@pytest.fixture(scope="module")
def catalog():
    return hw.load_catalog(PACKAGED_CATALOG)


# -- ratings ---------------------------------------------------------------------------

def test_rating_formula_on_a_hand_computed_example():
    metrics = pd.DataFrame({"peak_throughput": [100.0, 50.0, 10.0], "perf_per_w": [1.0, 2.0, 0.5],
                            "perf_per_usd_hour": [10.0, 40.0, np.nan]}, index=["a", "b", "c"])
    r = hw.rate_profiles(metrics)
    # throughput-first for b: s_thr = 0.5, s_w = 1 -> exp(0.7 ln 0.5) = 0.6156 -> ceil(3.08) = 4 stars
    assert r.loc["b", "throughput-first_score"] == pytest.approx(0.5 ** 0.7)
    assert r.loc["b", "throughput-first_stars"] == 4
    # a: s_thr = 1, s_w = 0.5 -> 0.5**0.3 = 0.812 -> 5 stars
    assert r.loc["a", "throughput-first_stars"] == 5
    # c: 0.1**0.7 * 0.25**0.3 = 0.1319 -> 1 star
    assert r.loc["c", "throughput-first_score"] == pytest.approx(0.1 ** 0.7 * 0.25 ** 0.3)
    assert r.loc["c", "throughput-first_stars"] == 1
    # cost-sensitive needs a price: c has none -> unrated, not rated on perf/W alone
    assert math.isnan(r.loc["c", "cost-sensitive_score"]) and r.loc["c", "cost-sensitive_basis"] == ""
    assert r.loc["a", "cost-sensitive_score"] == pytest.approx(0.25 ** 0.7 * 0.5 ** 0.3)
    # no latency metric at all -> latency-sensitive unrated for everyone
    assert r["latency-sensitive_score"].isna().all()
    assert r.loc["b", "throughput-first_basis"] == "peak_throughput+perf_per_w"


def test_lower_is_better_metric():
    metrics = pd.DataFrame({"p99_at_load_ms": [10.0, 40.0], "qps_at_slo": [100.0, 100.0]}, index=["x", "y"])
    r = hw.rate_profiles(metrics)
    assert r.loc["x", "latency-sensitive_score"] == 1.0
    assert r.loc["y", "latency-sensitive_score"] == pytest.approx(0.25 ** 0.5)   # (10/40)^0.5 * 1^0.5


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(0.1, 1000), min_size=2, max_size=6),
       i=st.integers(0, 5), factor=st.floats(1.0, 50.0))
def test_stars_are_monotone_in_the_metric(values, i, factor):
    i %= len(values)
    before = pd.DataFrame({"peak_throughput": values, "perf_per_w": [1.0] * len(values)})
    better = before.copy()
    better.loc[i, "peak_throughput"] *= factor
    s0 = hw.rate_profiles(before).loc[i, "throughput-first_stars"]
    s1 = hw.rate_profiles(better).loc[i, "throughput-first_stars"]
    assert s1 >= s0
    assert 1 <= s0 <= 5


# -- measured points ---------------------------------------------------------------------

def _points():
    return pd.DataFrame({
        "hardware": ["T4"] * 3 + ["L4"] * 2,
        "achieved_rate_rps": [10.0, 20.0, 30.0, 10.0, 40.0],
        "p99_ms": [20.0, 40.0, 90.0, 15.0, 45.0],
        "ok_fraction": [1.0, 1.0, 1.0, 1.0, 0.5],
        "requests": [600, 1200, 1800, 600, 2400],
    })


def test_capacity_at_slo_and_p99_at_load():
    cap = hw.capacity_at_slo(_points(), slo_p99_ms=50).set_index("hardware")
    assert cap.loc["T4", "qps_at_slo"] == 20.0 and cap.loc["T4", "runs_within_slo"] == 2
    assert cap.loc["T4", "peak_throughput"] == 30.0
    assert cap.loc["L4", "qps_at_slo"] == 10.0          # the 40 rps run lost half its requests
    p99 = hw.p99_at_load(_points(), 15.0)
    assert p99["T4"] == pytest.approx(30.0)              # halfway between (10, 20) and (20, 40)
    assert p99["L4"] == pytest.approx(15 + (45 - 15) * 5 / 30)
    assert math.isnan(hw.p99_at_load(_points(), 35.0)["T4"])   # no extrapolation


# -- MLPerf ---------------------------------------------------------------------------------

def test_load_mlperf_json_and_csv():
    js = hw.load_mlperf_results(MLPERF_JSON)
    assert len(js) == 6
    row = js[(js["platform"] == "8xMI300X_2xEPYC-9374F") & (js["scenario"] == "Server")].iloc[0]
    assert row["performance"] == 21028.2 and row["accelerator_count"] == 8
    assert row["perf_per_accelerator"] == pytest.approx(21028.2 / 8)
    assert not row["has_power"] and math.isnan(row["perf_per_w"])
    cpu = js[js["submitter"] == "NeuralMagic"].iloc[0]
    assert math.isnan(cpu["accelerator_count"]) and math.isnan(cpu["perf_per_accelerator"])
    cs = hw.load_mlperf_results(MLPERF_CSV)
    assert list(cs["accelerator"].unique()) == ["NVIDIA H200-SXM-141GB"]
    assert cs.loc[cs["scenario"] == "Offline", "performance"].max() == 73765.6


def test_mlperf_metrics_per_accelerator(catalog):
    results = pd.concat([hw.load_mlperf_results(MLPERF_JSON), hw.load_mlperf_results(MLPERF_CSV)])
    m = hw.mlperf_metrics(results, catalog, "llama2-70b-99")
    assert set(m.index) == {"MI300X", "H200"}
    assert m.loc["MI300X", "qps_at_slo"] == pytest.approx(21028.2 / 8)     # best Server per GPU
    assert m.loc["MI300X", "peak_throughput"] == pytest.approx(3062.72)     # best Offline per GPU
    assert m.loc["H200", "perf_per_w"] == pytest.approx(31263.8 / 8 / 700)  # catalog TDP basis
    assert m.loc["H200", "perf_per_usd_hour"] == pytest.approx(31263.8 / 8 / 5.408)
    assert math.isnan(m.loc["MI300X", "perf_per_usd_hour"])                  # no public price


def test_mlperf_power_results_give_perf_per_watt(tmp_path):
    # A constructed record (no real v4.1 row in the fixtures has power): the arithmetic only.
    rec = {"ID": "x", "Submitter": "S", "System": "s", "Platform": "p", "Model": "resnet",
           "Scenario": "Offline", "Accuracy": "", "Accelerator": "NVIDIA L4", "a#": 2,
           "Software": "", "has_power": True, "Performance_Result": 1000.0,
           "Performance_Units": "Samples/s", "Power_Result": 250.0, "Power_Units": "Watts"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps([rec]))
    row = hw.load_mlperf_results(path).iloc[0]
    assert row["perf_per_w"] == pytest.approx(4.0)


def test_bad_mlperf_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"ID": "a",\n  "Model": }\n]')
    with pytest.raises(InputError) as err:
        hw.load_mlperf_results(broken)
    assert err.value.line == 3
    text = MLPERF_CSV.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([text[0], text[1], text[2].replace("31263.8", "fast")]) + "\n")
    with pytest.raises(InputError) as err:
        hw.load_mlperf_results(bad)
    assert err.value.line == 3 and "performance: 'fast' is not a number" in err.value.problem


# -- runs in the store ------------------------------------------------------------------------

def _add_run(con, run_id, hardware, rate, p99, ok=1000, power_w=None, devices=None):
    summary = {"run_id": run_id, "status": "completed", "requests": 1000, "ok": ok,
               "achieved_rate_rps": rate, "latency_ms": {"p50": p99 / 3, "p99": p99}}
    labels = {"hardware": hardware, **({"devices": str(devices)} if devices else {})}
    make_run(con, run_id, labels=labels, summary=summary, intended_rate_rps=rate, duration_s=60, t0_unix_s=0)
    if power_w is not None:
        rows = []
        for gpu, watts in enumerate(power_w):
            rows += [("gpu_power_w", {"gpu": gpu}, float(t), float(w)) for t, w in enumerate(watts)]
            rows.append(("gpu_power_w", {"gpu": gpu}, 500.0, 999.0))      # after the run's window
            rows += [(other, {"gpu": gpu}, 0.0, 70.0)                      # same unit, not counted
                     for other in ("gpu_power_limit_w", "gpu_power_average_w")]
        insert_series(con, run_id, "nvml", rows, path=f"nvml-{run_id}")


def test_runs_from_the_store(tmp_db, catalog, capsys):
    with store.connect(tmp_db) as con:
        _add_run(con, "r1", "T4", 10, 20, power_w=[[60, 62, 64]])
        _add_run(con, "r2", "T4", 20, 40, power_w=[[66, 68, 70]])
        _add_run(con, "r3", "T4", 30, 90)
        _add_run(con, "r4", "cpu-demo", 5, 30)
        _add_run(con, "r5", "cpu-demo", 8, 60)
        _add_run(con, "r7", "H100 SXM", 800, 30, power_w=[[600, 600]] * 8, devices=8)
        make_run(con, "r6", labels={"batching": "fixed"})
        runs = hw.measured_runs(con)
    assert set(runs["run_id"]) == {"r1", "r2", "r3", "r4", "r5", "r7"}
    t4 = runs.set_index("run_id")
    assert t4.loc["r1", "mean_power_w"] == pytest.approx(62.0)   # limit series left out
    assert math.isnan(t4.loc["r3", "mean_power_w"])
    m = hw.measured_metrics(runs, catalog, slo_p99_ms=50, load_rps=6, price_hour_overrides={"cpu-demo": 0.1})
    assert m.loc["T4", "qps_at_slo"] == 20 and m.loc["T4", "power_basis"] == "measured"
    assert m.loc["T4", "basis"] == "measured run r2"
    assert m.loc["T4", "perf_per_w"] == pytest.approx(20 / 68.0)      # power of the run at capacity
    assert m.loc["T4", "perf_per_usd_hour"] == pytest.approx(20 / 0.526)
    assert m.loc["cpu-demo", "power_basis"] == "none" and m.loc["cpu-demo", "perf_per_usd_hour"] == 50
    assert m.loc["cpu-demo", "p99_at_load_ms"] == pytest.approx(40.0)
    # 8 GPUs at 800 req/s and 8 x 600 W: per device 100 req/s at 600 W
    assert m.loc["H100 SXM", "qps_at_slo"] == 100 and m.loc["H100 SXM", "mean_power_w"] == 600
    assert main(["hardware", "--compare", "runs", "--db", str(tmp_db), "--slo-p99-ms", "50",
                 "--load-rps", "12", "--price", "cpu-demo=0.1"]) == 0
    out = capsys.readouterr().out
    assert "cpu-demo" in out and "★" in out and "measured run r2" in out
    # the same runs on the MLPerf axes: rows named by hardware, basis = the run id, never rated
    ev = hw.with_measured(hw.mlperf_evidence(hw.load_reference(None), "resnet50", catalog), runs, 50.0)
    assert ev.loc["T4 (measured here)", "server_per_accelerator"] == 20
    assert ev.loc["T4 (measured here)", "server_basis"] == "measured run r2"
    assert ev.loc["T4 (measured here)", "offline_basis"] == "measured run r3"
    stars = hw.evidence_ratings(ev)
    assert stars.loc["T4 (measured here)", "latency-sensitive"] == "not rated (own workload)"
    assert stars.loc["H200", "latency-sensitive"] == "★★★★★"
    points = hw.measured_points(runs, "Queries/s")
    assert list(points.loc[points["run_id"] == "r7", "value"]) == [100.0]
    assert "measured here: r1" in set(points["label"])


# -- the notebook under papermill ---------------------------------------------------------------

def _headline(nb_path: Path) -> dict:
    import nbformat

    from perfkit.report.headline import HEADLINE_MIME

    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            if HEADLINE_MIME in out.get("data", {}):
                return out["data"][HEADLINE_MIME]
    raise AssertionError("no headline in the executed notebook")


def test_notebook_05_with_runs_and_mlperf(tmp_db, tmp_path):
    import papermill

    with store.connect(tmp_db) as con:
        _add_run(con, "r1", "T4", 10, 20, power_w=[[60, 62, 64]])
        _add_run(con, "r2", "T4", 20, 40)
        _add_run(con, "r3", "cpu-demo", 5, 30)
        _add_run(con, "r4", "cpu-demo", 8, 60)
    out = tmp_path / "05.ipynb"
    papermill.execute_notebook(
        str(PACKAGED_NOTEBOOKS / "05_hardware_comparison.ipynb"), str(out), kernel_name="python3",
        progress_bar=False, cwd=str(tmp_path),
        parameters={"db": str(tmp_db), "slo_p99_ms": 50.0, "load_rps": 6.0, "price_overrides": "cpu-demo:0.1",
                    "mlperf_paths": f"{MLPERF_JSON},{MLPERF_CSV}", "mlperf_model": "llama2-70b-99"})
    head = _headline(out)
    assert head["figures"]["measured runs"] == "4 runs, 2 hardware labels"
    assert head["figures"]["most req/s within SLO (measured)"].endswith("basis: measured run r2")
    import nbformat

    html = "".join(str(o.get("data", {}).get("text/html", "")) for c in nbformat.read(out, as_version=4).cells
                   for o in c.get("outputs", []))
    assert "T4 (measured here)" in html and "measured run r2" in html and "★" in html
    assert "not rated (estimate)" in html and "not rated (own workload)" in html
    assert head["figures"]["most req/s within SLO (measured)"].startswith("T4: 20.0 req/s (n=1,000 requests)")
    # datasheet figures are an estimate tier: never on the index; MLPerf rows name their basis
    assert not [k for k in head["figures"] if "datasheet" in k]
    assert head["figures"]["most llama2-70b-99 Server per accelerator"].startswith("B200: 10,756 Tokens/s (basis: MLPerf v4.1 closed/")
    first = next(o for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    said = first["data"]["application/vnd.perfkit.conclusion+json"]["lines"]
    assert said[0].startswith("Latency-sensitive: B200 for llama2-70b-99 (10,756 Tokens/s Server per accelerator; "
                              "MLPerf v4.1 row NVIDIA/B200-SXM-180GBx1_TRT, best of 8 devices)")
    assert "Measured here: T4, 20 req/s within the 50 ms P99 SLO (measured run r2, n=1,000 requests; " \
        "2 hardware labels measured)." in said


def test_conservative_capacity_uses_the_p99_interval():
    pts = _points()
    pts["p99_ci_high_ms"] = [25.0, 60.0, 120.0, np.nan, 50.0]
    pts["valid"] = [True, True, True, True, False]
    cap = hw.capacity_at_slo(pts, slo_p99_ms=50, conservative=True).set_index("hardware")
    assert cap.loc["T4", "qps_at_slo"] == 10.0            # the 20 rps run's P99 may be up to 60 ms
    assert cap.loc["T4", "p99_ci_high_ms"] == 25.0
    assert math.isnan(cap.loc["L4", "qps_at_slo"])        # too few requests to bound its P99
    plain = hw.capacity_at_slo(pts, slo_p99_ms=50, require_valid=True).set_index("hardware")
    assert plain.loc["T4", "qps_at_slo"] == 20.0 and plain.loc["L4", "runs_invalid"] == 1


def test_article_table_beside_stars_from_evidence_only(catalog):
    """Ours come from MLPerf rows only: v4.1 has none for the article's three devices, so no star."""
    reference = hw.load_reference(None)
    table = hw.article_comparison(hw.mlperf_evidence(reference, "resnet50", catalog))
    assert table.loc["A100 80GB", ("article_stars", "latency-sensitive")] == "★★★★★"
    assert set(table["our_stars"].to_numpy().ravel()) == {"no evidence"}
    # given an MLPerf-shaped row for one of them, it is rated among the three
    ev = pd.DataFrame({"server_per_accelerator": [100.0, 50.0], "offline_per_accelerator": [np.nan, 80.0],
                       "price_hour_usd": [2.0, np.nan]}, index=["A100 80GB", "Gaudi2"])
    ours = hw.article_comparison(ev)["our_stars"]
    assert ours.loc["A100 80GB", "latency-sensitive"] == "★★★★★" and ours.loc["Gaudi2", "latency-sensitive"] == "★★★"
    assert ours.loc["A100 80GB", "throughput-first"] == "no evidence"
    assert ours.loc["MI250X", "cost-sensitive"] == "no evidence"


def test_no_star_from_an_estimate(catalog, capsys):
    """Datasheet figures are the estimate tier: numbers with their label, never a star."""
    table = hw.comparison_table(hw.catalog_metrics(catalog, "fp16", {"T4": 0.2}))
    assert table["basis"].str.startswith(hw.ESTIMATE_BASIS).all()
    for profile in hw.PROFILES:
        assert (table[profile] == "not rated (estimate)").all()
        assert table[f"{profile}_stars"].isna().all()
    # a measured row among estimate rows is rated as if the estimates were not there
    mixed = pd.DataFrame({"peak_throughput": [10.0, 1000.0], "basis": ["measured run r1", hw.ESTIMATE_BASIS]},
                         index=["cpu-demo", "H100 SXM"])
    rated = hw.comparison_table(mixed)
    assert rated.loc["cpu-demo", "throughput-first"] == "★★★★★"
    assert rated.loc["H100 SXM", "throughput-first"] == "not rated (estimate)"
    assert main(["hardware", "--compare", "catalog"]) == 0
    out = capsys.readouterr().out
    assert "★" not in out and "estimate (datasheet TFLOPS scaling)" in out


def test_cli_and_notebook_compare_the_catalog_alike(catalog, capsys):
    """`perfkit hardware --compare catalog --price ...` and notebook 05's calls: the same table."""
    assert main(["hardware", "--compare", "catalog", "--price", "T4=0.2", "--price", "MI300X=3", "--json"]) == 0
    cli = pd.DataFrame(json.loads(capsys.readouterr().out)).set_index("name")
    nb = hw.comparison_table(hw.catalog_metrics(catalog, "fp16", hw.parse_overrides("T4:0.2,MI300X=3")))
    assert cli.loc["T4", "perf_per_usd_hour"] == pytest.approx(65 / 0.2)
    assert cli["perf_per_usd_hour"].to_numpy() == pytest.approx(nb["perf_per_usd_hour"].to_numpy(), nan_ok=True)
    assert list(cli["cost-sensitive"]) == list(nb["cost-sensitive"]) == ["not rated (estimate)"] * len(nb)
    assert list(cli["basis"]) == list(nb["basis"])


def test_one_parser_for_flags_and_notebook_parameters():
    assert hw.parse_overrides("cpu-demo:0.1, T4=0.5,") == {"cpu-demo": 0.1, "T4": 0.5}
    assert hw.parse_overrides(["A100 80GB=2"], "--price", separators="=") == {"A100 80GB": 2.0}
    for bad in ("T4", "T4:-1", "=3", "T4:inf"):
        with pytest.raises(UsageError, match="expected NAME=NUMBER or NAME:NUMBER"):
            hw.parse_overrides(bad)
    with pytest.raises(UsageError, match=r"^--price: expected NAME=NUMBER \(>= 0\), got 'T4:1'$"):
        hw.parse_overrides(["T4:1"], "--price", separators="=")
    assert hw.parse_names(" T4, L4,,A100 80GB") == ["T4", "L4", "A100 80GB"]
