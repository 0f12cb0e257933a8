"""Every root-cause rule on data where its cause is present and where it is absent."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analyze_synth import insert_run, insert_series
from perfkit import quantiles, store
from perfkit.analyze import changepoints, rootcause, twosample
from perfkit.analyze.rootcause import evidence, gpu, rules
from perfkit.plots.diagnosis import finding_figure


def _check(findings, rule):
    assert [f.rule for f in findings] == [rule]
    f = findings[0]
    assert f.title and f.action and f.numbers and f.severity in rootcause.SEVERITY_RANK
    fig = finding_figure(f)
    assert fig is None or isinstance(fig, Figure)
    return f


# a. queueing -----------------------------------------------------------------------------------

BREAKDOWN = {"n": 1000, "mean_latency_ms": 40.0, "mean_service_ms": 39.0, "mean_schedule_lag_ms": 1.0}


def test_queueing_present_and_absent():
    queued = {"queue_time_sum": 30.0, "queue_time_count": 1000, "compute_time_sum": 5.0,
              "compute_time_count": 1000, "server_time_sum": 36.0, "server_time_count": 1000}
    f = _check(rules.queueing("r", BREAKDOWN, queued), "queueing")
    assert f.numbers["queue_share"] == pytest.approx(0.75) and f.severity == "high"
    computing = dict(queued, queue_time_sum=2.0)
    assert rules.queueing("r", BREAKDOWN, computing) == []
    assert rules.queueing("r", BREAKDOWN, {}) == []   # no server data: no claim


def test_latency_against_load_present_and_absent():
    rng = np.random.default_rng(0)
    rate = np.repeat([20, 40, 80, 160], 8).astype(float)
    w = pd.DataFrame({"window_s": np.arange(32.0), "requests": rate,
                      "p99_ms": 10 + rate * 0.5 + rng.normal(0, 2, 32)})
    _check(rules.load_latency("r", w), "load_latency")
    flat = w.assign(p99_ms=rng.normal(30, 2, 32))
    assert rules.load_latency("r", flat) == []
    steady = w.assign(requests=100.0)
    assert rules.load_latency("r", steady) == []


def test_littles_law_present_and_absent():
    totals = {"mean_in_flight": 2.0, "n_in_flight": 30}
    f = _check(rules.littles_law("r", 100.0, 50.0, totals), "littles_law")  # lambda W = 5
    assert f.numbers["relative_gap"] == pytest.approx(-0.6)
    assert rules.littles_law("r", 100.0, 50.0, {"mean_in_flight": 5.2, "n_in_flight": 30}) == []
    assert rules.littles_law("r", 100.0, 50.0, {"mean_in_flight": 2.0, "n_in_flight": 3}) == []


# b. batching -----------------------------------------------------------------------------------

def _intervals(rate, executed_rows_per_call, real_per_call, qwait_ms, server_ms, padding=True):
    rate = np.asarray(rate, float)
    dt = 2.0
    reqs = rate * dt
    calls = reqs / np.asarray(real_per_call, float)
    rows = reqs
    pad = np.asarray(executed_rows_per_call, float) * calls - rows
    frame = pd.DataFrame({"ts_unix_s": 1000 + dt * np.arange(len(rate) + 1)})
    data = {"inferences": reqs, "executions": calls, "queue_time_sum": reqs * np.asarray(qwait_ms) / 1000,
            "queue_time_count": reqs, "server_time_sum": reqs * np.asarray(server_ms) / 1000,
            "server_time_count": reqs}
    if padding:
        data.update(batch_rows=rows, padding_rows=pad)
    for k, v in data.items():
        frame[k] = np.concatenate([[np.nan], v])
    return frame


def test_fixed_batching_present_and_dynamic_absent():
    rate = [20, 20, 20, 80, 80, 80]
    fixed = _intervals(rate, [8] * 6, [1.5] * 3 + [4.5] * 3, [35] * 3 + [28] * 3, [37] * 3 + [30] * 3)
    f = _check(rules.fixed_batching("r", fixed, {}, 8), "fixed_batching")
    assert f.numbers["executed_batch_median"] == 8 and f.numbers["queue_share_low_load"] > 0.9
    # dynamic: the batch follows the load, no padding
    dynamic = _intervals(rate, [1.2] * 3 + [3.5] * 3, [1.2] * 3 + [3.5] * 3, [5] * 6, [6] * 6)
    assert rules.fixed_batching("r", dynamic, {}, 8) == []
    # dynamic at loads too low to batch: flat at 1, no padding, not at max -> no claim
    low = _intervals(rate, [1.0] * 6, [1.0] * 6, [5] * 6, [5.5] * 6, padding=False)
    assert rules.fixed_batching("r", low, {}, 8) == []
    # fixed, but the load never changed: the data cannot show "flat while the load changes"
    steady = _intervals([50] * 6, [8] * 6, [2] * 6, [30] * 6, [32] * 6)
    assert rules.fixed_batching("r", steady, {}, 8) == []


def test_padding_waste_present_and_absent():
    f = _check(rules.padding_waste("r", {"batch_rows": 250.0, "padding_rows": 550.0, "inferences": 250.0,
                                             "executions": 100.0}, 8), "padding")
    assert f.numbers["padding_share"] == pytest.approx(550 / 800)
    assert rules.padding_waste("r", {"batch_rows": 250.0, "padding_rows": 0.0}, 8) == []


# c. proxy ---------------------------------------------------------------------------------------

def _pct(x):
    return {q: quantiles.quantile_ci(x, q) for q in (0.5, 0.9, 0.99)}


def test_proxy_overhead_present_and_absent():
    rng = np.random.default_rng(1)
    direct = rng.gamma(4, 0.25, 3000)              # ~1 ms
    proxied = rng.gamma(4, 0.25, 3000) + 0.23      # a sidecar adding ~23%
    f = _check(rules.proxy_overhead("d", "p", _pct(direct), _pct(proxied),
                                        twosample.hodges_lehmann(proxied, direct)), "proxy_overhead")
    assert f.numbers["added_share_p50"] == pytest.approx(0.23, abs=0.05)
    assert f.numbers["per_percentile"]["p99"]["n_direct"] == 3000
    same = rng.gamma(4, 0.25, 3000)
    assert rules.proxy_overhead("d", "p", _pct(direct), _pct(same),
                                    twosample.hodges_lehmann(same, direct)) == []


# d. GPU -------------------------------------------------------------------------------------------

GIB = 1024 ** 3
FRAGMENTED = pd.DataFrame([{"gpu": "0", "model": "A10G", "util_percent": 35.0, "fb_used_bytes": 20 * GIB,
                            "fb_total_bytes": 24 * GIB, "torch_reserved_bytes": 20 * GIB,
                            "torch_allocated_bytes": 6.4 * GIB, "samples": 60}])


def test_gpu_memory_pressure_from_fragmentation_underuse_only_and_absent():
    f = _check(gpu.gpu_memory(FRAGMENTED, "run", ["r"]), "gpu_memory")
    assert f.severity == "high" and "fragmentation 68%" in f.title
    assert f.numbers["fragmentation_1_minus_alloc_over_reserved"] == pytest.approx(0.68)
    # low utilization, no allocator figures, little memory used: under-use only, pressure not claimed
    idle = FRAGMENTED.drop(columns=["torch_reserved_bytes", "torch_allocated_bytes"]).assign(fb_used_bytes=2 * GIB)
    g = _check(gpu.gpu_memory(idle, "run"), "gpu_underuse")
    assert "not assessed" in g.title and math.isnan(g.numbers["fragmentation_1_minus_alloc_over_reserved"])
    busy = FRAGMENTED.assign(util_percent=92.0)
    assert gpu.gpu_memory(busy, "run") == []


def test_preallocated_memory_with_low_utilization_is_no_high_finding():
    """vLLM / TensorRT hold ~90% of the framebuffer whatever the load: context, not pressure."""
    vllm = pd.DataFrame([{"gpu": "0", "model": "H100", "util_percent": 20.0, "fb_used_bytes": 72 * GIB,
                          "fb_total_bytes": 80 * GIB, "fb_free_bytes": 8 * GIB, "samples": 30}])
    g = _check(gpu.gpu_memory(vllm, "run"), "gpu_underuse")
    assert g.severity == "low" and "framebuffer 90% used" in g.title and "not assessed" in g.title
    # the same with the allocator's figures: the pool is allocated, not fragmented, nothing failed
    allocator = vllm.assign(torch_reserved_bytes=70 * GIB, torch_allocated_bytes=68 * GIB,
                            torch_peak_allocated_bytes=69 * GIB, ooms=0.0, preemptions=0.0)
    g = _check(gpu.gpu_memory(allocator, "run"), "gpu_underuse")
    assert g.severity == "low" and "no sign of memory pressure" in g.title


@pytest.mark.parametrize("evidence_columns, sign", [
    ({"ooms": 2.0}, "2 out-of-memory error(s)"),
    ({"preemptions": 15.0}, "15 KV-cache preemption(s)"),
    ({"alloc_retries": 4.0}, "4 allocator retries"),
    ({"torch_reserved_bytes": 20 * GIB, "torch_allocated_bytes": 18 * GIB,
      "torch_inactive_split_bytes": 7 * GIB}, "35% of reserved memory in inactive split blocks"),
    ({"torch_reserved_bytes": 20 * GIB, "torch_allocated_bytes": 19 * GIB, "fb_free_bytes": 0.5 * GIB,
      "torch_peak_allocated_bytes": 22 * GIB}, "1.50 GiB free, below the 3.00 GiB a batch needs"),
])
def test_gpu_memory_pressure_from_allocator_evidence(evidence_columns, sign):
    full = pd.DataFrame([{"gpu": "0", "model": "A10G", "util_percent": 30.0, "fb_used_bytes": 23 * GIB,
                          "fb_total_bytes": 24 * GIB, "samples": 10, **evidence_columns}])
    f = _check(gpu.gpu_memory(full, "run", ["r"]), "gpu_memory")
    assert f.severity == "high" and sign in f.title


def test_gpu_figures_counters_and_process_wide_allocator_series():
    """Counters become their increase over the window (a reset counts from 0); a server's
    allocator series without a GPU label fill in the GPU that dcgm describes."""
    dcgm = '{"gpu":"0","UUID":"GPU-1","modelName":"Tesla T4"}'
    long = pd.DataFrame(
        [(1, "gpu_utilization_percent", dcgm, "percent", t, 10.0) for t in (0, 1, 2)]
        + [(2, "torch_cuda_memory_num_ooms_total", "{}", None, t, v) for t, v in ((0, 5), (1, 7), (2, 1))]
        + [(3, "torch_cuda_memory_reserved_bytes", "{}", "bytes", t, 10 * GIB) for t in (0, 1, 2)],
        columns=["series_id", "name", "labels", "unit", "ts_unix_s", "value"])
    frame = evidence.gpu_figures(long)
    assert frame["gpu"].tolist() == ["GPU-1"] and frame["model"].tolist() == ["Tesla T4"]
    row = frame.iloc[0]
    assert row["ooms"] == 3.0 and row["torch_reserved_bytes"] == 10 * GIB and row["util_percent"] == 10.0


def _ingest(db, path, *flags) -> int:
    from perfkit.cli import main

    return main(["ingest", "dcgm", str(path), "--db", str(db), *flags])


DCGM_FIXTURE = Path(__file__).parent.parent / "data" / "analyze" / "dcgm-exporter_T4_A10G_datadog-fixture.txt"


def test_gpu_from_the_real_dcgm_fixture(tmp_db):
    """The recorded dcgm-exporter export, named by its source id: util 0% on idle T4s, FB in MiB ->
    bytes, no pressure claimed."""
    assert _ingest(tmp_db, DCGM_FIXTURE) == 0
    with store.connect(tmp_db, read_only=True) as con:
        (sid,), = con.execute("SELECT source_id FROM sources").fetchall()
        frame, where = evidence.gpu_frame(con, source_ids=[sid])
    assert where == f"source {sid}" and not frame.empty
    assert (frame["fb_total_bytes"] > GIB).all()
    found = gpu.gpu_memory(frame, where)
    assert found and all(f.rule == "gpu_underuse" for f in found)
    assert all("not assessed" in f.title for f in found)


def test_an_unrelated_gpu_export_is_not_used_one_inside_the_run_window_is(tmp_db, tmp_path):
    """A GPU export from another time (however recent) says nothing about a run; one whose
    samples fall inside the run's window does, and so does one named explicitly."""
    lat = np.random.default_rng(0).gamma(4, 1, 600)
    with store.connect(tmp_db) as con:
        insert_run(con, "old", lat, t0=1.7e9)                 # 2023; the export is stamped now
    assert _ingest(tmp_db, DCGM_FIXTURE) == 0
    with store.connect(tmp_db, read_only=True) as con:
        frame, where = evidence.gpu_frame(con, "old")
        assert frame.empty and where == "none"
        assert not [f for f in rootcause.diagnose(con, "old") if f.rule.startswith("gpu")]
        (sid,), = con.execute("SELECT source_id FROM sources").fetchall()
        named = rootcause.diagnose(con, "old", gpu_sources=[sid])
    assert {f.rule for f in named} == {"gpu_underuse"} and all(f.run_ids == ["old"] for f in named)
    inside = tmp_path / "dcgm-inside.txt"   # other bytes: the same file would be skipped as already stored
    inside.write_text(DCGM_FIXTURE.read_text() + "\n")
    assert _ingest(tmp_db, inside, "--at", "1700000002") == 0
    with store.connect(tmp_db, read_only=True) as con:
        frame, where = evidence.gpu_frame(con, "old")
        found = [f for f in rootcause.diagnose(con, "old") if f.rule.startswith("gpu")]
    assert where == f"export {inside}" and not frame.empty
    assert found and all(f.run_ids == ["old"] and f.numbers["data"] == where for f in found)


def test_gpu_series_recorded_with_the_run_come_first(tmp_db):
    with store.connect(tmp_db) as con:
        insert_run(con, "r", np.full(300, 5.0), t0=1.7e9)
        insert_series(con, "r", "nvml", [("gpu_utilization_percent", {"gpu": "0"}, 1.8e9, 20.0),
                                         ("torch_cuda_memory_reserved_bytes", {}, 1.8e9, 20.0 * GIB),
                                         ("torch_cuda_memory_allocated_bytes", {}, 1.8e9, 5.0 * GIB)])
        frame, where = evidence.gpu_frame(con, "r")
        found = rootcause.diagnose(con, "r")
    assert where == "run" and frame["torch_reserved_bytes"].tolist() == [20.0 * GIB]
    assert [f.rule for f in found] == ["gpu_memory"]


# e. correlation and change points ------------------------------------------------------------------

def test_lagged_correlation_present_and_absent():
    rng = np.random.default_rng(3)
    n = 60
    driver = np.cumsum(rng.normal(0, 1, n)) + 50
    lat = pd.Series(np.roll(driver, 2) * 2 + rng.normal(0, 0.5, n), index=np.arange(n, dtype=float))
    lat.iloc[:2] = np.nan
    w = pd.DataFrame({"window_s": lat.index, "p99_ms": lat.to_numpy()})
    tele = pd.DataFrame({"cpu_percent": driver, "noise": rng.normal(0, 1, n)}, index=lat.index)
    found = rules.correlations("r", w, tele)
    assert [f.numbers["series"] for f in found] == ["cpu_percent"]
    assert found[0].numbers["lag_windows"] == 2 and found[0].numbers["q_bh"] < 0.01
    assert rules.correlations("r", w, tele[["noise"]]) == []


def test_change_point_dates_a_regression_and_stays_quiet_on_noise():
    rng = np.random.default_rng(4)
    y = np.concatenate([rng.normal(20, 1, 40), rng.normal(30, 1, 40)])
    w = pd.DataFrame({"window_s": np.arange(80.0), "start_unix_s": 1e9 + np.arange(80.0), "mean_latency_ms": y})
    f = _check(rules.regressions_in_time("r", w), "change_point")
    assert f.numbers["at_s"] == 40.0 and f.numbers["change"] == pytest.approx(0.5, abs=0.05)
    quiet = w.assign(mean_latency_ms=rng.normal(20, 1, 80))
    assert rules.regressions_in_time("r", quiet) == []


# f. schedule lag, availability, SLO -----------------------------------------------------------------

def test_schedule_lag_present_and_absent():
    w = pd.DataFrame({"window_s": [0.0, 1.0], "mean_schedule_lag_ms": [1.0, 30.0], "max_schedule_lag_ms": [2.0, 80.0]})
    f = _check(rules.schedule_lag("r", {"requests": 1000, "sent": 1000, "p50_ms": 1.0, "p99_ms": 45.0,
                                            "max_ms": 80.0}, w), "schedule_lag")
    assert f.severity == "critical"
    assert rules.schedule_lag("r", {"requests": 1000, "sent": 1000, "p50_ms": 0.1, "p99_ms": 0.8,
                                        "max_ms": 3.0}, w) == []
    unsent = rules.schedule_lag("r", {"requests": 1000, "sent": 950, "p50_ms": 0.1, "p99_ms": 0.8,
                                          "max_ms": 3.0}, w)
    assert unsent and unsent[0].numbers["unsent_share"] == pytest.approx(0.05)


def test_availability_finding_present_and_absent():
    w = pd.DataFrame({"window_s": np.arange(20.0), "requests": 50,
                      "ok": [50] * 8 + [0] * 3 + [50] * 9})
    f = _check(rules.availability("r", w), "availability")
    assert f.numbers["mttr_s"] == 3.0 and f.numbers["episodes"] == 1
    assert rules.availability("r", w.assign(ok=50)) == []


def test_slo_finding_only_when_the_interval_misses():
    x = np.random.default_rng(0).exponential(10, 5000)
    p99 = quantiles.quantile_ci(x, 0.99)
    f = _check(rules.slo("r", p99, 30.0, int((x > 30).sum())), "slo")
    assert f.numbers["n"] == 5000
    assert rules.slo("r", p99, 80.0, int((x > 80).sum())) == []
    assert rules.slo("r", p99, None, 0) == []


# over the store -------------------------------------------------------------------------------------

def test_diagnose_ranks_findings_from_stored_runs(tmp_db):
    rng = np.random.default_rng(8)
    n = 3000
    lat = rng.gamma(4, 0.25, n)
    lag = np.zeros(n)
    lag[n // 2:] = 40.0
    err = np.zeros(n, bool)
    err[1000:1300] = True
    with store.connect(tmp_db) as con:
        insert_run(con, "direct", lat, label="suite=s,proxy=none", t0=1.7e9)
        insert_run(con, "proxied", lat + 0.3, label="suite=s,proxy=nginx", t0=1.7e9 + 100)
        insert_run(con, "lagging", lat + lag, lag_ms=lag, errors=err, label="suite=s,load=x", t0=1.7e9 + 200)
        found = rootcause.diagnose(con, None)
        table = rootcause.findings_table(found)
        only = rootcause.diagnose(con, "direct")
    rules = [f.rule for f in found]
    assert rules[0] == "schedule_lag"              # critical first
    assert {"availability", "proxy_overhead", "change_point"} <= set(rules)
    assert list(table.columns[:2]) == ["severity", "title"] and len(table) == len(found)
    assert only == []                               # a clean run has nothing to say


def test_change_points_agree_with_ruptures_pelt_l2():
    import ruptures as rpt

    rng = np.random.default_rng(5)
    y = np.concatenate([rng.normal(20, 1, 60), rng.normal(28, 1, 50), rng.normal(21, 1, 40)])
    pen = 2 * 1.0 ** 2 * math.log(len(y))
    ref = rpt.Pelt(model="l2", min_size=3, jump=1).fit(y.reshape(-1, 1)).predict(pen=pen)
    assert changepoints.breakpoints(y, pen=pen) == [b for b in ref if b < len(y)] == [60, 110]


def test_headline_states_the_median_proxy_cost_over_several_pairs():
    """Three direct/proxied pairs (the default suite's repeats): one figure, the median over the pairs."""
    from perfkit.analyze.rootcause.runner import headline_figures

    rows = [{"direct_run": f"d{k}", "proxied_run": f"p{k}", "percentile": q, "added_ms": added,
             "added_share": added / 10, "n_direct": 800, "n_proxied": 800}
            for k, (a50, a99) in enumerate([(0.2, 1.0), (0.3, 3.0), (0.9, 2.0)])
            for q, added in (("p50", a50), ("p99", a99))]
    figs = headline_figures([], pd.DataFrame(), pd.DataFrame(rows), "none")
    assert figs["Proxy added"] == "p50 +0.30 ms (+3%), p99 +2.00 ms (+20%) (median of 3 pairs)"
