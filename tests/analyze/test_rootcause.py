"""Every root-cause rule on data where its cause is present and where it is absent."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analyze_synth import insert_run
from perfkit import store
from perfkit.analyze import diagnose, evidence, rootcause, stats


def _check(findings, rule):
    assert [f.rule for f in findings] == [rule]
    f = findings[0]
    assert f.title and f.action and f.numbers and f.severity in rootcause.SEVERITY_RANK
    fig = f.draw()
    assert fig is None or isinstance(fig, Figure)
    return f


# a. queueing -----------------------------------------------------------------------------------

BREAKDOWN = {"n": 1000, "mean_latency_ms": 40.0, "mean_service_ms": 39.0, "mean_schedule_lag_ms": 1.0}


def test_queueing_present_and_absent():
    queued = {"queue_wait_sum_s": 30.0, "queue_wait_count": 1000, "inference_sum_s": 5.0,
              "inference_count": 1000, "server_sum_s": 36.0, "server_count": 1000}
    f = _check(rootcause.queueing("r", BREAKDOWN, queued), "queueing")
    assert f.numbers["queue_share"] == pytest.approx(0.75) and f.severity == "high"
    computing = dict(queued, queue_wait_sum_s=2.0)
    assert rootcause.queueing("r", BREAKDOWN, computing) == []
    assert rootcause.queueing("r", BREAKDOWN, {}) == []   # no server data: no claim


def test_latency_against_load_present_and_absent():
    rng = np.random.default_rng(0)
    rate = np.repeat([20, 40, 80, 160], 8).astype(float)
    w = pd.DataFrame({"window_s": np.arange(32.0), "requests": rate,
                      "p99_ms": 10 + rate * 0.5 + rng.normal(0, 2, 32)})
    _check(rootcause.load_latency("r", w), "load_latency")
    flat = w.assign(p99_ms=rng.normal(30, 2, 32))
    assert rootcause.load_latency("r", flat) == []
    steady = w.assign(requests=100.0)
    assert rootcause.load_latency("r", steady) == []


def test_littles_law_present_and_absent():
    totals = {"mean_in_flight": 2.0, "n_in_flight": 30}
    f = _check(rootcause.littles_law("r", 100.0, 50.0, totals), "littles_law")  # lambda W = 5
    assert f.numbers["relative_gap"] == pytest.approx(-0.6)
    assert rootcause.littles_law("r", 100.0, 50.0, {"mean_in_flight": 5.2, "n_in_flight": 30}) == []
    assert rootcause.littles_law("r", 100.0, 50.0, {"mean_in_flight": 2.0, "n_in_flight": 3}) == []


# b. batching -----------------------------------------------------------------------------------

def _intervals(rate, executed_rows_per_call, real_per_call, qwait_ms, server_ms, padding=True):
    rate = np.asarray(rate, float)
    dt = 2.0
    reqs = rate * dt
    calls = reqs / np.asarray(real_per_call, float)
    rows = reqs
    pad = np.asarray(executed_rows_per_call, float) * calls - rows
    frame = pd.DataFrame({"ts_unix_s": 1000 + dt * np.arange(len(rate) + 1)})
    data = {"batch_sum": reqs, "batch_count": calls, "queue_wait_sum_s": reqs * np.asarray(qwait_ms) / 1000,
            "queue_wait_count": reqs, "server_sum_s": reqs * np.asarray(server_ms) / 1000, "server_count": reqs}
    if padding:
        data.update(rows=rows, padding_rows=pad)
    for k, v in data.items():
        frame[k] = np.concatenate([[np.nan], v])
    return frame


def test_fixed_batching_present_and_dynamic_absent():
    rate = [20, 20, 20, 80, 80, 80]
    fixed = _intervals(rate, [8] * 6, [1.5] * 3 + [4.5] * 3, [35] * 3 + [28] * 3, [37] * 3 + [30] * 3)
    f = _check(rootcause.fixed_batching("r", fixed, {}, 8), "fixed_batching")
    assert f.numbers["executed_batch_median"] == 8 and f.numbers["queue_share_low_load"] > 0.9
    # dynamic: the batch follows the load, no padding
    dynamic = _intervals(rate, [1.2] * 3 + [3.5] * 3, [1.2] * 3 + [3.5] * 3, [5] * 6, [6] * 6)
    assert rootcause.fixed_batching("r", dynamic, {}, 8) == []
    # dynamic at loads too low to batch: flat at 1, no padding, not at max -> no claim
    low = _intervals(rate, [1.0] * 6, [1.0] * 6, [5] * 6, [5.5] * 6, padding=False)
    assert rootcause.fixed_batching("r", low, {}, 8) == []
    # fixed, but the load never changed: the data cannot show "flat while the load changes"
    steady = _intervals([50] * 6, [8] * 6, [2] * 6, [30] * 6, [32] * 6)
    assert rootcause.fixed_batching("r", steady, {}, 8) == []


def test_padding_waste_present_and_absent():
    f = _check(rootcause.padding_waste("r", {"rows": 250.0, "padding_rows": 550.0, "batch_sum": 250.0,
                                             "batch_count": 100.0}, 8), "padding")
    assert f.numbers["padding_share"] == pytest.approx(550 / 800)
    assert rootcause.padding_waste("r", {"rows": 250.0, "padding_rows": 0.0}, 8) == []


# c. proxy ---------------------------------------------------------------------------------------

def _pct(x):
    return {q: stats.quantile_ci(x, q) for q in (0.5, 0.9, 0.99)}


def test_proxy_overhead_present_and_absent():
    from perfkit.analyze import abtest

    rng = np.random.default_rng(1)
    direct = rng.gamma(4, 0.25, 3000)              # ~1 ms
    proxied = rng.gamma(4, 0.25, 3000) + 0.23      # a sidecar adding ~23%
    f = _check(rootcause.proxy_overhead("d", "p", _pct(direct), _pct(proxied),
                                        abtest.hodges_lehmann(proxied, direct)), "proxy_overhead")
    assert f.numbers["added_share_p50"] == pytest.approx(0.23, abs=0.05)
    assert f.numbers["per_percentile"]["p99"]["n_direct"] == 3000
    same = rng.gamma(4, 0.25, 3000)
    assert rootcause.proxy_overhead("d", "p", _pct(direct), _pct(same),
                                    abtest.hodges_lehmann(same, direct)) == []


# d. GPU -------------------------------------------------------------------------------------------

def test_gpu_memory_pressure_present_underuse_only_and_absent():
    gib = 1024 ** 3
    frag = pd.DataFrame([{"gpu": "0", "model": "A10G", "util_percent": 35.0, "fb_used_bytes": 20 * gib,
                          "fb_total_bytes": 24 * gib, "torch_reserved_bytes": 20 * gib,
                          "torch_allocated_bytes": 6.4 * gib, "samples": 60}])
    f = _check(rootcause.gpu_memory(frag, "run", ["r"]), "gpu_memory")
    assert f.numbers["fragmentation_1_minus_alloc_over_reserved"] == pytest.approx(0.68)
    # low utilization, no allocator figures, little memory used: under-use only, fragmentation not claimed
    idle = frag.drop(columns=["torch_reserved_bytes", "torch_allocated_bytes"]).assign(fb_used_bytes=2 * gib)
    g = _check(rootcause.gpu_memory(idle, "run"), "gpu_underuse")
    assert "not assessed" in g.title and math.isnan(g.numbers["fragmentation_1_minus_alloc_over_reserved"])
    busy = frag.assign(util_percent=92.0)
    assert rootcause.gpu_memory(busy, "run") == []


def test_gpu_from_the_real_dcgm_fixture(tmp_db):
    """The recorded dcgm-exporter export: util 0% on idle T4s, FB in MiB -> bytes, no fragmentation claim."""
    from pathlib import Path

    fixture = Path(__file__).parent.parent / "data" / "analyze" / "dcgm-exporter_T4_A10G_datadog-fixture.txt"
    assert _ingest(tmp_db, fixture) == 0
    with store.connect(tmp_db, read_only=True) as con:
        frame, where = evidence.gpu_frame(con, None)
    assert where.startswith("export") and not frame.empty
    found = rootcause.gpu_memory(frame, where)
    assert found and all(f.rule == "gpu_underuse" for f in found)
    assert all("not assessed" in f.title for f in found)


def _ingest(db, path) -> int:
    from perfkit.cli import main

    return main(["ingest", "dcgm", str(path), "--db", str(db)])


# e. correlation and change points ------------------------------------------------------------------

def test_lagged_correlation_present_and_absent():
    rng = np.random.default_rng(3)
    n = 60
    driver = np.cumsum(rng.normal(0, 1, n)) + 50
    lat = pd.Series(np.roll(driver, 2) * 2 + rng.normal(0, 0.5, n), index=np.arange(n, dtype=float))
    lat.iloc[:2] = np.nan
    w = pd.DataFrame({"window_s": lat.index, "p99_ms": lat.to_numpy()})
    tele = pd.DataFrame({"cpu_percent": driver, "noise": rng.normal(0, 1, n)}, index=lat.index)
    found = rootcause.correlations("r", w, tele)
    assert [f.numbers["series"] for f in found] == ["cpu_percent"]
    assert found[0].numbers["lag_windows"] == 2 and found[0].numbers["q_bh"] < 0.01
    assert rootcause.correlations("r", w, tele[["noise"]]) == []


def test_change_point_dates_a_regression_and_stays_quiet_on_noise():
    rng = np.random.default_rng(4)
    y = np.concatenate([rng.normal(20, 1, 40), rng.normal(30, 1, 40)])
    w = pd.DataFrame({"window_s": np.arange(80.0), "start_unix_s": 1e9 + np.arange(80.0), "mean_latency_ms": y})
    f = _check(rootcause.regressions_in_time("r", w), "change_point")
    assert f.numbers["at_s"] == 40.0 and f.numbers["change"] == pytest.approx(0.5, abs=0.05)
    quiet = w.assign(mean_latency_ms=rng.normal(20, 1, 80))
    assert rootcause.regressions_in_time("r", quiet) == []


# f. schedule lag, availability, SLO -----------------------------------------------------------------

def test_schedule_lag_present_and_absent():
    w = pd.DataFrame({"window_s": [0.0, 1.0], "mean_schedule_lag_ms": [1.0, 30.0], "max_schedule_lag_ms": [2.0, 80.0]})
    f = _check(rootcause.schedule_lag("r", {"requests": 1000, "sent": 1000, "p50_ms": 1.0, "p99_ms": 45.0,
                                            "max_ms": 80.0}, w), "schedule_lag")
    assert f.severity == "critical"
    assert rootcause.schedule_lag("r", {"requests": 1000, "sent": 1000, "p50_ms": 0.1, "p99_ms": 0.8,
                                        "max_ms": 3.0}, w) == []
    unsent = rootcause.schedule_lag("r", {"requests": 1000, "sent": 950, "p50_ms": 0.1, "p99_ms": 0.8,
                                          "max_ms": 3.0}, w)
    assert unsent and unsent[0].numbers["unsent_share"] == pytest.approx(0.05)


def test_availability_finding_present_and_absent():
    w = pd.DataFrame({"window_s": np.arange(20.0), "requests": 50,
                      "ok": [50] * 8 + [0] * 3 + [50] * 9})
    f = _check(rootcause.availability("r", w), "availability")
    assert f.numbers["mttr_s"] == 3.0 and f.numbers["episodes"] == 1
    assert rootcause.availability("r", w.assign(ok=50)) == []


def test_slo_finding_only_when_the_interval_misses():
    x = np.random.default_rng(0).exponential(10, 5000)
    p99 = stats.quantile_ci(x, 0.99)
    f = _check(rootcause.slo("r", p99, 30.0, int((x > 30).sum())), "slo")
    assert f.numbers["n"] == 5000
    assert rootcause.slo("r", p99, 80.0, int((x > 80).sum())) == []
    assert rootcause.slo("r", p99, None, 0) == []


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
        found = diagnose.diagnose(con, None)
        table = rootcause.findings_table(found)
        only = diagnose.diagnose(con, "direct")
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
    assert rootcause.change_points(y, pen=pen) == [b for b in ref if b < len(y)] == [60, 110]
