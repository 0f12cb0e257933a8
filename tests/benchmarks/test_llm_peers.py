"""The pure parts of benchmarks/llm_vs_guidellm_aiperf.py: histogram differences, the peers'
output files (recorded from a real run, tests/data/llm-peers/README.md), process-tree
accounting on a small tree spawned here, and the character tokenizer given to the peers."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "llm-peers"
sys.path.insert(0, str(ROOT / "benchmarks"))

import llm_peers as lp  # noqa: E402
import llm_vs_guidellm_aiperf as bench  # noqa: E402

BEFORE = """\
# TYPE perfkit_demo_llm_time_to_first_token_seconds histogram
perfkit_demo_llm_time_to_first_token_seconds_bucket{le="0.05"} 2.0
perfkit_demo_llm_time_to_first_token_seconds_bucket{le="0.1"} 4.0
perfkit_demo_llm_time_to_first_token_seconds_bucket{le="+Inf"} 4.0
perfkit_demo_llm_time_to_first_token_seconds_count 4.0
perfkit_demo_llm_time_to_first_token_seconds_sum 0.2
# TYPE perfkit_demo_request_duration_seconds histogram
perfkit_demo_request_duration_seconds_bucket{endpoint="/v1/chat/completions",status="200",le="1.0"} 4.0
perfkit_demo_request_duration_seconds_bucket{endpoint="/v1/chat/completions",status="200",le="+Inf"} 4.0
perfkit_demo_request_duration_seconds_count{endpoint="/v1/chat/completions",status="200"} 4.0
perfkit_demo_request_duration_seconds_sum{endpoint="/v1/chat/completions",status="200"} 1.0
perfkit_demo_request_duration_seconds_count{endpoint="/health",status="200"} 9.0
perfkit_demo_request_duration_seconds_sum{endpoint="/health",status="200"} 0.009
# TYPE perfkit_demo_llm_prompt_tokens_total counter
perfkit_demo_llm_prompt_tokens_total 324.0
"""

AFTER = """\
# TYPE perfkit_demo_llm_time_to_first_token_seconds histogram
perfkit_demo_llm_time_to_first_token_seconds_bucket{le="0.05"} 3.0
perfkit_demo_llm_time_to_first_token_seconds_bucket{le="0.1"} 7.0
perfkit_demo_llm_time_to_first_token_seconds_bucket{le="+Inf"} 8.0
perfkit_demo_llm_time_to_first_token_seconds_count 8.0
perfkit_demo_llm_time_to_first_token_seconds_sum 0.6
# TYPE perfkit_demo_request_duration_seconds histogram
perfkit_demo_request_duration_seconds_bucket{endpoint="/v1/chat/completions",status="200",le="1.0"} 7.0
perfkit_demo_request_duration_seconds_bucket{endpoint="/v1/chat/completions",status="200",le="+Inf"} 7.0
perfkit_demo_request_duration_seconds_count{endpoint="/v1/chat/completions",status="200"} 7.0
perfkit_demo_request_duration_seconds_sum{endpoint="/v1/chat/completions",status="200"} 2.5
perfkit_demo_request_duration_seconds_bucket{endpoint="/v1/chat/completions",status="499",le="1.0"} 1.0
perfkit_demo_request_duration_seconds_bucket{endpoint="/v1/chat/completions",status="499",le="+Inf"} 1.0
perfkit_demo_request_duration_seconds_count{endpoint="/v1/chat/completions",status="499"} 1.0
perfkit_demo_request_duration_seconds_sum{endpoint="/v1/chat/completions",status="499"} 0.05
perfkit_demo_request_duration_seconds_count{endpoint="/health",status="200"} 30.0
perfkit_demo_request_duration_seconds_sum{endpoint="/health",status="200"} 0.03
# TYPE perfkit_demo_llm_prompt_tokens_total counter
perfkit_demo_llm_prompt_tokens_total 648.0
"""


def test_histogram_difference_buckets_sum_count_and_mean():
    after = lp.histogram(AFTER, lp.SERVER_TTFT)
    before = lp.histogram(BEFORE, lp.SERVER_TTFT)
    diff = after.minus(before)
    assert diff.buckets == {0.05: 1.0, 0.1: 3.0, float("inf"): 4.0}
    assert diff.count == 4.0 and diff.sum == pytest.approx(0.4)
    assert diff.mean == pytest.approx(0.1)
    assert lp.Hist({}, 0.0, 0.0).mean is None


def test_labelled_histogram_is_picked_by_its_labels_and_absent_series_are_empty():
    ok = lp.histogram(AFTER, lp.SERVER_E2E, {"endpoint": "/v1/chat/completions", "status": "200"})
    assert (ok.count, ok.sum) == (7.0, 2.5)
    cut_before = lp.histogram(BEFORE, lp.SERVER_E2E, {"endpoint": "/v1/chat/completions", "status": "499"})
    assert (cut_before.count, cut_before.sum, dict(cut_before.buckets)) == (0.0, 0.0, {})


def test_server_means_from_two_scrapes():
    s = lp.server_means(BEFORE, AFTER)
    assert s.ttft_ms == pytest.approx(100.0)          # 0.4 s over 4
    assert s.e2e_ms == pytest.approx(500.0)           # 1.5 s over 3 answers of 200
    assert (s.ok, s.cut, s.ttft_n) == (3, 1, 4)
    assert s.tpot_ms is None and s.tpot_n == 0        # not in these scrapes
    assert s.prompt_tokens == pytest.approx(81.0)     # 324 prompt tokens over 4 first tokens
    # a TPOT that includes TTFT: (TTFT + (n - 1) TPOT) / n
    both = lp.ServerMeans(64.0, 2.0, None, 1, 1, 1, 0, None, None)
    assert both.tpot_incl_ttft_ms(64) == pytest.approx((64.0 + 63 * 2.0) / 64)


def test_recorded_scrapes_of_a_real_run():
    """The demo's own /metrics before and after a real guidellm run."""
    s = lp.server_means((DATA / "guidellm" / "metrics_before.txt").read_text(),
                        (DATA / "guidellm" / "metrics_after.txt").read_text())
    assert s.ok >= 1 and s.ttft_n >= s.ok and s.tpot_n >= s.ok
    assert s.prompt_tokens == pytest.approx(81.0)     # 64 characters in the chat template
    assert 0 < s.ttft_ms < s.e2e_ms and 0 < s.tpot_ms < s.e2e_ms


def test_read_perfkit_summary():
    t = lp.read_perfkit(DATA / "perfkit" / "summary.json", "0.1.0")
    s = json.loads((DATA / "perfkit" / "summary.json").read_text())
    assert t.ok == s["ok"] and t.errors == 0
    assert t.ttft_ms == s["ttft_ms"]["mean"] and t.e2e_ms == s["service_ms"]["mean"]
    assert t.tpot_ms == s["tpot_ms"]["mean"]
    assert t.extra["e2e_intended_ms"] == s["e2e_ms"]["mean"]
    assert t.extra["ttft_intended_ms"] == s["ttft_intended_ms"]["mean"]


def test_read_guidellm_report():
    t = lp.read_guidellm(DATA / "guidellm" / "guidellm.json")
    raw = json.loads((DATA / "guidellm" / "guidellm.json").read_text())["benchmarks"][0]
    reqs = raw["requests"]["successful"]
    assert t.version == "0.8.1" and t.ok == len(reqs) and t.errors == 0
    m = raw["metrics"]
    assert t.ttft_ms == m["time_to_first_token_ms"]["successful"]["mean"]
    assert t.e2e_ms == pytest.approx(1000.0 * m["request_latency"]["successful"]["mean"])
    # guidellm's TPOT includes the TTFT; its ITL is the per-request form compared with the server's TPOT
    assert t.tpot_ms == m["inter_token_latency_ms"]["successful"]["mean"]
    assert t.extra["tpot_incl_ttft_ms"] == m["time_per_output_token_ms"]["successful"]["mean"]
    assert t.extra["tpot_incl_ttft_ms"] > t.tpot_ms


def test_read_aiperf_export():
    t = lp.read_aiperf(DATA / "aiperf")
    raw = json.loads((DATA / "aiperf" / "profile_export_aiperf.json").read_text())
    assert t.version == raw["aiperf_version"] and t.ok == int(raw["request_count"]["avg"])
    assert raw["time_to_first_token"]["unit"] == "ms"
    assert t.ttft_ms == raw["time_to_first_token"]["avg"]
    assert t.tpot_ms == raw["inter_token_latency"]["avg"]
    assert t.e2e_ms == raw["request_latency"]["avg"]


def test_medians_over_passes_and_the_verdict():
    server = lp.ServerMeans(50.0, 2.0, 200.0, 10, 10, 10, 0, 81.0, 64.0)

    def result(name, ttft, e2e, cpu_s):
        return (lp.ToolMeans(name, "v", 10, 0, ttft, 2.5, e2e), server, lp.TreeUsage(cpu_s, cpu_s, 2**20, 1), 1.0)

    passes = [{"perfkit": result("perfkit", 52.0, 199.0, 1.0), "guidellm": result("guidellm", 47.0, 204.0, 8.0)},
              {"perfkit": result("perfkit", 51.0, 202.0, 3.0), "guidellm": result("guidellm", 60.0, 230.0, 9.0)},
              {"perfkit": result("perfkit", 58.0, 201.0, 2.0)}]
    figures = bench.medians(passes)
    assert figures["perfkit"] == {"ttft_err_ms": 2.0, "tpot_err_ms": 0.5, "e2e_err_ms": 1.0,
                                  "cpu_s_per_1000": 200.0, "peak_rss_mib": 1.0, "passes": 3.0}
    assert figures["guidellm"]["ttft_err_ms"] == 3.5 and figures["guidellm"]["passes"] == 2.0
    assert bench.verdict(figures) == ["|TTFT error| ms vs guidellm: perfkit 2.00 vs 3.50 -> ok",
                                      "|E2E error| ms vs guidellm: perfkit 1.00 vs 17.00 -> ok",
                                      "CPU s per 1,000 req vs guidellm: perfkit 200.00 vs 850.00 -> ok"]
    worse = bench.verdict(bench.medians([{"perfkit": result("perfkit", 46.0, 199.0, 9.0),
                                          "aiperf": result("aiperf", 53.0, 199.0, 8.0)}]))
    assert [line.split(" -> ")[1] for line in worse] == ["NOT MET", "ok", "NOT MET"]
    assert "| perfkit | 2.00 | 0.50 | 1.00 | 200 | 1 | 3 |" in bench.summary(passes)


def test_warm_up_prompt_is_exactly_the_asked_characters_and_cpu_lists_parse():
    body = bench.chat_body(64, 64)
    assert len(body["messages"][0]["content"]) == 64 and body["max_tokens"] == 64
    assert len(bench.prompt(300)) == 300
    assert bench.cpus("0") == {0} and bench.cpus("1-3,5") == {1, 2, 3, 5}


def test_char_tokenizer_counts_one_token_per_character(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from perfkit.demo.charlm import UNKNOWN, VOCAB, encode

    directory = lp.write_char_tokenizer(tmp_path / "tok", VOCAB, UNKNOWN)
    tok = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    text = "Hello, world!\nthe end  é"
    ids = tok.encode(text).ids
    assert ids == encode(text).tolist()            # the demo model's own ids
    assert tok.decode(ids) == text.replace("é", UNKNOWN)
    assert json.loads((directory / "tokenizer_config.json").read_text())["unk_token"] == UNKNOWN


def _burn_script(seconds: float, mib: int) -> str:
    """Python source: allocate and touch ``mib`` MiB, burn ``seconds`` of CPU, then hold 0.5 s."""
    return (f"import time\nblock = bytearray({mib} * 2**20)\n"
            f"for i in range(0, len(block), 4096): block[i] = 1\n"
            f"while time.process_time() < {seconds}: pass\ntime.sleep(0.5)\n")


def test_tree_monitor_counts_a_tree_of_processes(tmp_path):
    """A parent that runs two children (waiting for them): CPU of all three, RSS of the tree."""
    child = tmp_path / "child.py"
    child.write_text(_burn_script(0.3, 40))
    parent = (f"import subprocess, sys\n"
              f"procs = [subprocess.Popen([sys.executable, {str(child)!r}]) for _ in range(2)]\n"
              f"[p.wait() for p in procs]\n")
    proc = subprocess.Popen([sys.executable, "-c", parent])
    monitor = lp.TreeMonitor(proc.pid, interval_s=0.05).start()
    proc.wait()
    usage = monitor.finish()
    assert usage.processes == 3
    assert 0.6 <= usage.cpu_s < 5.0                    # 2 x 0.3 s burnt + interpreter start-ups
    assert 0.5 <= usage.cpu_polled_s <= usage.cpu_s + 0.05  # polled: clock ticks, misses the last poll's tail
    assert usage.peak_rss_bytes >= 80 * 2**20          # both children held 40 MiB at once


def test_orphans_are_reaped_and_counted_by_a_subreaper(tmp_path):
    """A root that exits at once, leaving a grandchild that burns CPU: counted only because the
    measuring process is a subreaper and reaps it (run in a subprocess: it changes the process)."""
    grandchild = tmp_path / "grandchild.py"
    grandchild.write_text(_burn_script(0.4, 1))
    script = textwrap.dedent(f"""
        import json, subprocess, sys
        sys.path.insert(0, {str(ROOT / "benchmarks")!r})
        import llm_peers as lp
        assert lp.become_subreaper()
        root = subprocess.Popen([sys.executable, "-c",
            "import subprocess, sys; subprocess.Popen([sys.executable, {str(grandchild)!r}])"])
        monitor = lp.TreeMonitor(root.pid, interval_s=0.02).start()
        root.wait()
        killed = lp.reap_orphans(set(), grace_s=30)
        print(json.dumps({{"cpu_s": monitor.finish().cpu_s, "killed": killed}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    result = json.loads(out.stdout)
    assert result["killed"] == []
    assert result["cpu_s"] >= 0.4
