"""The source article's cases on real processes: the demo server (fixed vs dynamic batching) and nginx.

Short runs (a few seconds each) through the real load engine, with the live collector
scraping the demo server's /metrics into the store; then the root-cause rules read them.
"""
from __future__ import annotations

import os
import shutil

import pytest

from perfkit import store
from perfkit.analyze import rootcause
from perfkit.analyze.rootcause import evidence
from perfkit.plots.diagnosis import finding_figure

pytestmark = pytest.mark.slow


def _bench(db, url: str, label: str, stage) -> str:
    from perfkit.bench import run
    from perfkit.bench.config import BenchConfig

    summary = run(BenchConfig(target=url + "/api/v1/infer", stages=[stage], label=label, db=str(db),
                              quiet=True, min_duration_s=1))
    assert summary["requests"] > 0
    return summary["run_id"]


def test_fixed_batching_found_on_the_fixed_server_not_on_the_dynamic_one(tmp_db):
    from perfkit.bench.schedule import Stage
    from perfkit.demo.launch import DemoServer

    step = Stage(pattern="step", rate_rps=20, step_rps=60, step_s=4, steps=2)   # 20 then 80 req/s
    with DemoServer(batching="fixed", max_batch=8) as server:
        fixed = _bench(tmp_db, server.url, "case=batching,batching=fixed,max_batch=8", step)
    with DemoServer(batching="dynamic", max_batch=8) as server:
        dynamic = _bench(tmp_db, server.url, "case=batching,batching=dynamic,max_batch=8", step)
    with store.connect(tmp_db, read_only=True) as con:
        f_rules = {f.rule: f for f in rootcause.run_findings(con, fixed)}
        d_rules = {f.rule: f for f in rootcause.run_findings(con, dynamic)}
        ev = evidence.load_run(con, fixed)
    assert ev.server_totals["padding_rows"] > 0 and ev.max_batch == 8
    assert "fixed_batching" in f_rules and "padding" in f_rules
    fb = f_rules["fixed_batching"].numbers
    assert fb["executed_batch_median"] == 8 and fb["load_ratio_p90_p10"] >= 1.5
    assert "fixed_batching" not in d_rules and "padding" not in d_rules
    assert finding_figure(f_rules["fixed_batching"]) is not None


def test_nginx_proxy_real_runs(tmp_db):
    """Requests really pass through nginx; the comparison table carries n and intervals; two direct
    runs are never paired as a proxy overhead. (Whether nginx's loopback hop, ~0.1 ms, clears the
    rule's 3% margin depends on the machine's noise, so its presence is tested on synthetic data.)"""
    if not shutil.which("nginx") and not os.access("/usr/sbin/nginx", os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("nginx not installed; .ci/run installs it")
        pytest.skip("nginx not installed")
    from perfkit.bench.schedule import Stage
    from perfkit.demo.launch import DemoServer
    from perfkit.demo.proxy import NginxProxy

    stage = Stage(pattern="constant", rate_rps=100, duration_s=3)
    with DemoServer(batching="none") as server:
        with NginxProxy(server.url) as proxy:
            assert proxy.url != server.url
            proxied = _bench(tmp_db, proxy.url, "case=proxy,proxy=nginx", stage)
            prefix = proxy.prefix
            pid = proxy.process.pid
        direct = _bench(tmp_db, server.url, "case=proxy,proxy=none", stage)
        direct2 = _bench(tmp_db, server.url, "case=proxy,proxy=none", stage)
    assert prefix is not None and not prefix.exists()           # temp config/log dirs removed
    assert not os.path.exists(f"/proc/{pid}")                   # nginx stopped
    with store.connect(tmp_db, read_only=True) as con:
        ok = con.execute("SELECT count(*) FILTER (WHERE error_kind IS NULL), count(*) FROM requests "
                         "WHERE run_id = ?", [proxied]).fetchone()
        assert ok[0] == ok[1] == 300
        # the demo server saw the proxied requests (counted between the first and last scrape)
        ev = evidence.load_run(con, proxied)
        assert ev.server_totals.get("server_time_count", 0) >= 100
        table = rootcause.proxy_comparison(con, direct, proxied)
        assert list(table["percentile"]) == ["p50", "p90", "p99", "p99.9"]
        assert (table["n_direct"] == 300).all() and (table["n_proxied"] == 300).all()
        assert rootcause.proxy_pairs(con, [direct, proxied]) == [(direct, proxied)]
        assert rootcause.proxy_pairs(con, [direct, direct2]) == []
        assert not [f for f in rootcause.diagnose(con, [direct, direct2], gpu=False) if f.rule == "proxy_overhead"]


def test_mttr_from_real_stalls_and_availability_from_injected_errors(tmp_db):
    """--stall 5:1.5 with a 300 ms P99 SLO: bad windows at each stall and a measured MTTR;
    --error-rate 0.3: an availability finding; neither appears where its cause is absent.

    A window's P99 is its inverted-CDF P99: at 50 requests a window that is the maximum, so
    one request still caught in a stall's backlog makes the window bad. A 5 s period leaves
    3.5 s between stalls, room for the 2 s of good windows that end an episode."""
    from perfkit.bench import run
    from perfkit.bench.config import BenchConfig
    from perfkit.bench.schedule import Stage
    from perfkit.demo.launch import DemoServer

    def bench(url: str, label: str, duration_s: float = 9) -> str:
        return run(BenchConfig(target=url + "/api/v1/infer", label=label, db=str(tmp_db), quiet=True,
                               stages=[Stage(pattern="constant", rate_rps=50, duration_s=duration_s)],
                               slo_p99_ms=300.0, min_duration_s=1))["run_id"]

    with DemoServer(batching="none", stall="5:1.5") as server:
        stalled = bench(server.url, "case=stall", duration_s=12)
    with DemoServer(batching="none", error_rate=0.3) as server:
        failing = bench(server.url, "case=errors")
    with store.connect(tmp_db, read_only=True) as con:
        from perfkit.analyze import stats
        from perfkit.store import runs

        w = runs.windows(con, stalled)
        episodes = stats.fault_episodes(w, p99_limit_ms=300.0, sustain_s=2)
        m = stats.mttr(episodes)
        assert 1 <= len(episodes) <= 3 and m.n >= 1
        assert 1.0 <= m.value <= 3.0            # 1.5 s stalls, seen through 1-s windows
        assert stats.fault_episodes(w, sustain_s=2) == []   # no errors: no error episode
        stall_rules = {f.rule: f for f in rootcause.run_findings(con, stalled)}
        error_rules = {f.rule: f for f in rootcause.run_findings(con, failing)}
    assert "availability" in stall_rules and stall_rules["availability"].numbers["window_p99_limit_ms"] == 300.0
    av = error_rules["availability"].numbers
    assert av["availability_requests"] == pytest.approx(0.7, abs=0.1) and av["requests"] == 450
