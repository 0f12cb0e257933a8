"""The conclusion that opens each report, computed from small frames: its sentences' numbers and counts."""
from __future__ import annotations

import math

import pandas as pd

from perfkit.analyze.rootcause import Finding, causes_table, group_findings
from perfkit.quantiles import Estimate
from perfkit.report import conclusions as c


def est(value: float, lo: float, hi: float, n: int = 4000) -> Estimate:
    return Estimate(value, lo, hi, n, 0.95, "order")


def summary(**validity: object) -> dict:
    checks = {"min_duration_s": 10.0, "min_duration_met": True, "min_queries": 100, "min_queries_met": True,
              "early_stopping": {"percentile": 0.99, "confidence": 0.99, "n": 4000, "min_queries": 662,
                                 "met": True, "discarded": 0, "bound": 12.0},
              "early_stopping_met": True, "early_stopping_p99_ms": 12.0, "early_stopping_rule": "LoadGen",
              "generator_kept_up": True, "generator_rule": "fell behind if schedule-lag p99 > 10 ms",
              "status_completed": True, **validity}
    valid = all(checks[k] for k in ("min_duration_met", "min_queries_met", "early_stopping_met",
                                    "generator_kept_up", "status_completed"))
    return {"validity": checks, "valid": valid, "duration_s": 20.0, "ok": 4000, "status": "completed",
            "status_reason": None,
            "schedule_lag_ms": {"n": 4000, "mean": 2.0, "p50": 0.52, "p99": 20.2, "max": 40.0,
                                "late_fraction": 0.031, "late_threshold_ms": 5.0}}


TOTALS = {"requests": 4000, "ok": 4000, "errors": {}}


def test_benchmark_valid_run_with_slo_met_passes_and_states_the_intervals():
    s = summary()
    s["slo"] = {"p99_ms": {"limit": 50.0, "observed": 35.3, "met": True}}
    out = c.benchmark(s, est(9.81, 9.7, 9.93), est(35.28, 31.4, 44.8), TOTALS)
    assert (out.status, out.title) == ("pass", "Valid, SLO met: P99 35.3 ms [31.4, 44.8]")
    assert out.lines[0] == "SLO met: P99 35.3 ms against 50 ms."
    assert "P50 9.81 ms [9.70, 9.93], P99 35.3 ms [31.4, 44.8] (n=4,000 successful requests, 95% intervals)." \
        in out.lines
    assert out.lines[-1].startswith("Look at: the tail. P99 is 3.6 times the P50")


def test_benchmark_names_each_failed_check_with_its_numbers():
    s = summary(generator_kept_up=False, min_duration_met=False)
    s["duration_s"] = 3.94
    out = c.benchmark(s, est(9.8, 9.7, 9.9), est(12.0, 11.0, 13.0), TOTALS)
    assert (out.status, out.title) == ("warn", "Not valid (too short, the generator fell behind): P99 12 ms [11, 13]")
    invalid = next(line for line in out.lines if line.startswith("Not valid"))
    assert "run lasted 3.9 s < --min-duration-s 10" in invalid
    assert "schedule-lag p99 20.20 ms, 3.1% of requests > 5 ms late" in invalid
    assert out.lines[-1].startswith("Look at: the schedule lag")


def test_benchmark_slo_missed_fails_and_points_at_the_errors_first():
    s = summary()
    s["slo"] = {"p99_ms": {"limit": 20.0, "observed": 35.3, "met": False}}
    totals = {"requests": 4000, "ok": 3900, "errors": {"timeout": 70, "http_503": 30}}
    out = c.benchmark(s, est(9.8, 9.7, 9.9), est(35.3, 31.4, 44.8, n=3900), totals)
    assert out.status == "fail" and out.lines[0] == "SLO missed: P99 35.3 ms against 20 ms."
    assert out.title == "P99 35.3 ms [31.4, 44.8] missed the 20 ms SLO"
    assert out.lines[-1] == ("Look at: the errors, 100 of 4,000 requests (2.50%), most of them timeout (70): "
                             "see Throughput and errors.")


def test_benchmark_without_summary_says_validity_is_unknown():
    out = c.benchmark(None, None, None, {"requests": 0, "errors": {}})
    assert (out.status, out.title) == ("warn", "Validity not recorded: P99 no data")
    assert "Validity not recorded (an imported or unfinished run)." in out.lines
    assert "P50 no data, P99 no data (n=0 successful requests)." in out.lines


def lag_finding(run: str, p99: float) -> Finding:
    return Finding("schedule_lag", f"The load generator fell behind (P99 lag {p99} ms)", "critical",
                   {"schedule_lag_p99_ms": p99, "unsent_share": 0.01, "n": 4000}, "Give the generator a core.",
                   [run], p99)


def test_root_cause_counts_each_cause_once_across_runs():
    found = [lag_finding(f"r{i}", 10.0 + i) for i in range(5)]
    found += [Finding("padding", "40% padding", "medium", {"padding_share": 0.4}, "Pad less.", ["r5"], 0.4),
              Finding("proxy_overhead", "proxy +0.3 ms", "high", {"hl_shift_ms": 0.3}, "Remove the hop.",
                      ["r1", "r5"], 0.1),                # a direct/proxied pair: seen in the proxied run
              Finding("load_latency", "P99 rises", "medium", {"spearman_rho": 0.6}, "Find the knee.", ["r2"], 0.6),
              Finding("correlation", "P99 moves with CPU", "low", {"spearman_rho": 0.5}, "Check.", ["r3"], 0.5)]
    groups = group_findings(found)
    assert [g.rule for g in groups] == ["schedule_lag", "proxy_overhead", "load_latency", "padding", "correlation"]
    out = c.root_cause(groups, n_runs=6)
    assert out.title == "Top cause: the load generator fell behind"
    assert out.lines[:3] == ["The load generator fell behind in 5 of 6 runs (critical).",
                             "The proxy added latency in 1 of 6 runs (high).",
                             "P99 rose with load in 1 of 6 runs (medium)."]
    assert out.lines[3] == "2 more causes below."
    assert out.status == "fail"
    table = causes_table(groups, 6)
    assert table["seen_in"].tolist()[0] == "5 of 6 runs" and len(table) == 5


def test_cause_numbers_are_a_table_with_shares_in_percent():
    group = group_findings([lag_finding("a", 20.2), lag_finding("b", 12.0)])[0]
    numbers = group.numbers()
    assert numbers.columns.tolist() == ["run", "schedule_lag_p99_ms", "unsent_share_pct", "n"]
    assert numbers["run"].tolist() == ["a", "b"]            # worst first
    assert numbers["unsent_share_pct"].tolist() == [1.0, 1.0]


def test_finding_json_keeps_the_raw_numbers_and_their_text():
    d = lag_finding("a", 20.2).to_dict()
    assert d["numbers"] == {"schedule_lag_p99_ms": 20.2, "unsent_share": 0.01, "n": 4000}
    assert d["numbers_text"] == "schedule_lag_p99_ms=20.2, unsent_share=0.01, n=4000"
    assert d["cause"] == "The load generator fell behind" and d["run_ids"] == ["a"]


def test_root_cause_without_findings_passes():
    out = c.root_cause([], n_runs=3)
    assert out.status == "pass" and out.lines == ["None of the rules' causes is supported by the data of 3 runs."]


AB = pd.DataFrame([
    {"metric": "latency_ms p50", "statistic": "p50", "unit": "ms", "decision": "fail", "difference": 26.508,
     "lo": 25.49, "hi": 27.66, "margin": 0.5},
    {"metric": "latency_ms p99", "statistic": "p99", "unit": "ms", "decision": "inconclusive", "difference": -3.2,
     "lo": -9.1, "hi": 4.0, "margin": 1.2},
    {"metric": "error_rate", "statistic": "error_rate", "unit": "share", "decision": "pass", "difference": 0.002,
     "lo": -0.001, "hi": 0.004, "margin": 0.01},
])


def test_ab_verdict_in_one_sentence():
    out = c.ab_verdict(AB, "fail", 3, 3, 0.9)
    assert (out.status, out.title) == ("fail", "The candidate is 26.5 ms slower at the median, [25.5, 27.7]")
    assert out.lines[2] == "error_rate: 0.200 pp higher in error rate, [-0.100, 0.400] (pass, margin 1 pp)."
    named = c.ab_verdict(AB, "fail", 3, 3, 0.9, ("suite=T,case=batching-dynamic", "suite=T,case=batching-fixed"))
    assert named.lines[0] == "Candidate case=batching-fixed against baseline case=batching-dynamic."
    assert out.lines[-1].startswith("90% intervals over 3 baseline and 3 candidate runs")


def test_ab_inconclusive_and_pass_lead_with_their_own_metric():
    assert c.ab_verdict(AB, "inconclusive", 3, 3, 0.9).title == \
        "Inconclusive: the candidate is 3.20 ms faster at P99, [-9.10, 4]"
    passed = AB.assign(decision="pass")
    out = c.ab_verdict(passed, "pass", 2, 2, 0.9)
    assert out.status == "pass" and out.title.startswith("No regression as large as the margin: the candidate is 26.5")
    assert not out.lines[-1].startswith("With one run on a side")
    assert c.ab_verdict(passed, "pass", 1, 2, 0.9).lines[-1].startswith("With one run on a side, run-to-run")
    nan = AB.assign(difference=math.nan)
    assert c.ab_verdict(nan, "inconclusive", 1, 1, 0.9).title.startswith("Too few values")


def evidence() -> pd.DataFrame:
    return pd.DataFrame({"server_per_accelerator": [85166.0, 79274.0, 45604.0],
                         "offline_per_accelerator": [96029.0, 99080.0, math.nan],
                         "server_basis": [f"MLPerf v4.1 closed/{s}/results/{s}-sys/resnet50/Server" for s in "ABC"],
                         "offline_basis": [f"MLPerf v4.1 closed/{s}/results/{s}-sys/resnet50/Offline" for s in "DE"]
                         + [""], "units": "Queries/s", "price_hour_usd": [5.408, 4.916, 1.861]},
                        index=pd.Index(["H200", "H100 SXM", "L40S"], name="accelerator"))


def test_hardware_names_the_winner_of_each_profile_and_its_evidence():
    measured = pd.DataFrame({"qps_at_slo": [199.0], "requests_at_capacity": [4000],
                             "basis": ["measured run R1"]}, index=["cpu-demo"])
    out = c.hardware({"resnet50": evidence()}, measured, 50.0)
    assert out.lines[0] == ("Latency-sensitive: H200 for resnet50 (85,166 Queries/s Server per accelerator; "
                            "MLPerf v4.1 row A/A-sys, best of 3 devices).")
    assert out.lines[1] == ("Throughput-first: H100 SXM for resnet50 (99,080 Queries/s Offline per accelerator; "
                            "MLPerf v4.1 row E/E-sys, best of 2 devices).")
    assert out.lines[2].startswith("Cost-sensitive: L40S for resnet50 (24,505 Queries/s Server per accelerator per "
                                   "USD/hour of rent;")
    assert out.lines[3] == ("Measured here: cpu-demo, 199 req/s within the 50 ms P99 SLO (measured run R1, "
                            "n=4,000 requests; 1 hardware label measured).")
    assert c.hardware({}, None, 50.0).lines[0] == "Measured here: no run labelled hardware=NAME met the SLO."


def test_tco_names_the_cheapest_device_per_unit():
    table = pd.DataFrame({"usd_per_1k_queries": [3.4e-5, 2.3e-5],
                          "basis": [f"MLPerf v4.1 closed/{x}/results/{x}-sys/x/Server" for x in "BC"],
                          "price_as_of": ["2024-12-01", "2024-09-01"]}, index=["H100 SXM", "L40S"])
    out = c.tco({"1k queries": table, "1M tokens": table.iloc[0:0]}, "mix 12 % cheaper.")
    assert out.lines[0] == ("Per 1k queries: L40S is cheapest at $2.30e-05 (MLPerf v4.1 row C/C-sys, "
                            "rent as of 2024-09-01; 2 devices priced).")
    assert out.lines[1] == "Per 1M tokens: no MLPerf row with a price."
    assert out.lines[2] == "Fleet: mix 12 % cheaper."


def test_trends_lists_open_regressions():
    frame = pd.DataFrame([{"case": "steady", "metric": "p99_ms", "change_pct": 12.34, "interval_pct": "[+8.1, +16.0]",
                           "run_id": "R7", "version_after": "v2", "runs_since": 3}])
    out = c.trends(frame, n_cases=4)
    assert (out.status, out.title) == ("fail", "1 open regression")
    assert out.lines[0] == "steady p99_ms: +12.3 % [+8.1, +16.0] since run R7 (version v2), 3 runs since."
    none = c.trends(frame.iloc[0:0], n_cases=4, summary="4 cases, 2 change points.")
    assert none.status == "pass" and none.lines == ["No unacknowledged regression in the 4 cases followed.",
                                                    "4 cases, 2 change points."]


def test_optimization_counts_variants_within_99_percent():
    table = pd.DataFrame({"variant": ["fp32", "int8", "prune"], "within_99": [True, True, False]})
    out = c.optimization(table, "INT8 keeps 99.6 %.", "int8")
    assert out.title == "Best variant within 99 % of FP32 accuracy: int8" and out.status == "pass"
    assert out.lines[1] == "2 of 3 variants keep 99 % of FP32 accuracy on the held-out test split."
    assert c.optimization(table, "No variant kept 99 %.", None).status == "warn"


def test_a_conclusion_is_what_the_style_block_shows_and_records():
    from perfkit.report.style import CONCLUSION_MIME, conclusion_bundle

    out = c.ab_verdict(AB, "fail", 3, 3, 0.9)
    bundle = conclusion_bundle(*out)
    assert bundle[CONCLUSION_MIME] == {"title": out.title, "lines": out.lines, "status": "fail"}


def test_sweep_names_the_knee_with_its_interval_and_where_it_saturated():
    steps = pd.DataFrame({"intended_rps": [25, 50, 100, 200], "achieved_rps": [25.0, 49.9, 99.2, 150.3],
                          "value_ms": [8.1, 8.4, 12.31, 900.0], "lo_ms": [7.9, 8.2, 11.02, 850.0],
                          "hi_ms": [8.3, 8.7, 14.09, math.inf], "n": [100, 200, 400, 600]})
    out = c.sweep(steps, 2, 3, "latency_p99", "S1")
    assert out.title == "Knee at 99.2 req/s achieved"
    assert out.lines == ["Sweep S1: knee at 99.2 req/s achieved of 100 req/s intended, latency_p99 12.3 ms "
                         "[11.0, 14.1] (n=400) over 4 steps. Keep the operating point below it.",
                         "Over-saturated from 200 req/s: the queue grew without bound there, and the sweep went no "
                         "higher."]
    none = c.sweep(steps, None, None, "latency_p99")
    assert none.status == "warn" and none.lines == [
        "Latency did not bend enough over 4 steps up to 200 req/s to name a knee.",
        "Never over-saturated up to 200 req/s."]


def test_telemetry_names_the_slowest_step_and_a_saturated_cpu():
    frame = pd.DataFrame({"t_s": [0.0, 1.0, 2.0], "latency_p99_ms": [12.0, 45.25, math.nan],
                          "host_cpu_utilization_percent": [40.0, 97.5, 60.0], "queue_depth": [1.0, 7.0, math.nan],
                          "gpu_utilization_percent": [math.nan] * 3})
    sources = pd.DataFrame({"kind": ["host", "scrape"], "samples": [12, 196]})
    out = c.telemetry(frame, sources)
    assert (out.status, out.title) == ("warn", "The machine's CPU peaked at 97.5%: latency may measure CPU contention")
    assert out.lines == ["2 sources (host, scrape), 208 samples.",
                         "Slowest step: P99 45.2 ms at t = 1 s, with host CPU 97.5% and queue depth 7.",
                         "Host CPU: mean 65.8%, peak 97.5% (3 steps).", "GPU: no telemetry collected."]
    calm = c.telemetry(frame.assign(host_cpu_utilization_percent=[10.0, 20.0, 30.0]), sources)
    assert calm.status == "info" and calm.title == "Telemetry from host, scrape beside the latency"
    assert c.telemetry(frame, sources.iloc[0:0]).status == "warn"
