"""Notebook 01: the run read through the store's SQL reader, its tables and figures, and the notebook in Chromium."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import make_run
from report_runs import add_requests, write_run

from perfkit import quantiles, store
from perfkit.plots import benchmark as figures
from perfkit.report import benchmark, browser
from perfkit.store import runs

REPO = Path(__file__).resolve().parents[2]


def small_run(db: Path, frame: pd.DataFrame, run_id: str = "r1") -> benchmark.RunData:
    """A run with t0 = 0 holding ``frame``'s requests (``t_s``, ``done_t_s``, ``latency_ms``, ``error_kind``)."""
    con = store.connect(db)
    with store.transaction(con):
        make_run(con, run_id, t0_unix_s=0.0, pattern="constant", intended_rate_rps=10.0)
        add_requests(con, run_id, pd.DataFrame({
            "intended_unix_s": frame["t_s"], "sent_unix_s": frame["t_s"],
            "done_unix_s": frame.get("done_t_s", frame["t_s"] + frame.get("latency_ms", 1.0) / 1000.0),
            "latency_ms": frame.get("latency_ms", (frame.get("done_t_s", frame["t_s"]) - frame["t_s"]) * 1000.0),
            "error_kind": frame["error_kind"]}))
    con.close()
    return benchmark.load_run(str(db), run_id)


def test_percentile_table_is_exact_with_bracketing_intervals(run_db, tmp_path):
    db, truth = run_db
    ok = truth["latency_ms"][~truth["error"]]
    table = benchmark.run_percentiles(benchmark.load_run(str(db)))
    for name, q in (("P50", 0.5), ("P99", 0.99)):
        row = table.loc[name]
        assert row["latency_ms"] == np.quantile(ok, q, method="inverted_cdf")
        assert row["ci_low_ms"] < row["latency_ms"] < row["ci_high_ms"]
        assert row["n"] == ok.size
    # 1,980 samples bound P99.9 from above at 95% only just; 500 cannot: that end is left empty
    write_run(tmp_path / "small.duckdb", n=500)
    small = benchmark.run_percentiles(benchmark.load_run(str(tmp_path / "small.duckdb")))
    assert np.isnan(small.loc["P99.9", "ci_high_ms"]) and not np.isnan(small.loc["P99.9", "latency_ms"])


def test_spectrum_stops_where_the_sample_does(tmp_path):
    qs = benchmark.spectrum_quantiles(1000)
    assert qs[0] == 0.0 and 1.0 / (1.0 - qs[-1]) == pytest.approx(1000.0)  # 1/(1-q) up to n, not 10,000
    t = np.arange(1000) / 100.0
    data = small_run(tmp_path / "s.duckdb", pd.DataFrame({"t_s": t, "latency_ms": np.arange(1, 1001.0)[::-1],
                                                          "error_kind": None}))
    spec = data.spectrum
    assert spec["inv_tail"].max() == pytest.approx(1000.0)
    assert spec["latency_ms"].is_monotonic_increasing
    assert spec["latency_ms"].iloc[-1] == 999.0  # P99.9 of 1..1000 (inverted CDF)
    assert benchmark.spectrum_quantiles(0).size == 0


def test_throughput_counts_every_request_once(tmp_path):
    data = small_run(tmp_path / "t.duckdb", pd.DataFrame({
        "t_s": [0.1, 0.2, 0.6, 1.5, 2.2], "done_t_s": [0.15, 0.3, 1.2, 1.9, 2.5],
        "error_kind": [None, None, "timeout", None, None]}))
    tp = data.throughput
    assert tp["intended_rps"].tolist() == [3.0, 1.0, 1.0]
    assert tp["achieved_rps"].tolist() == [2.0, 1.0, 1.0]
    assert tp["errors_rps"].tolist() == [0.0, 1.0, 0.0]


def test_throughput_has_no_sliver_bin_after_the_schedule_ends(tmp_path):
    t = np.arange(200) / 100.0  # 100 req/s for 2 s
    data = small_run(tmp_path / "t.duckdb", pd.DataFrame({"t_s": t, "done_t_s": t + 0.015, "error_kind": None}))
    tp = data.throughput
    assert tp["t_s"].tolist() == [0.5, 1.5]  # the last responses land after 2.0 s: counted in bin 2
    assert tp["achieved_rps"].sum() == len(t)
    assert tp["achieved_rps"].tolist() == [99.0, 101.0]  # 0.99 s send completes at 1.005 s


def test_rolling_percentiles_per_window_with_n(tmp_path):
    data = small_run(tmp_path / "r.duckdb", pd.DataFrame({
        "t_s": [0.1, 0.5, 0.9, 1.1, 1.2], "latency_ms": [1.0, 2.0, 30.0, 5.0, 6.0],
        "error_kind": [None, None, None, None, "http_5xx"]}))
    roll = data.rolling
    assert roll["n"].tolist() == [3, 1]
    assert roll["p50"].tolist() == [2.0, 5.0]
    assert roll["p99"].tolist() == [30.0, 5.0]


def test_sql_percentiles_match_the_one_definition(tmp_path):
    """Per-window and whole-run percentiles from SQL equal perfkit.quantiles.percentiles on the same rows."""
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 12, 60)  # small windows exercise every rank rounding
    t = np.concatenate([w + np.sort(rng.random(k)) * 0.99 for w, k in enumerate(sizes)])
    lat = rng.lognormal(1.0, 1.0, t.size).round(3)
    db = tmp_path / "q.duckdb"
    small_run(db, pd.DataFrame({"t_s": t, "latency_ms": lat, "error_kind": None}))
    which = {"p10": 0.1, "p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
    with store.connect(db, read_only=True) as con:
        sql = runs.window_percentiles(con, "r1", 0.0, 1.0, which)
        whole = runs.quantile_values(con, "r1", list(quantiles.SUMMARY_PERCENTILES.values()))
    window = np.floor(t).astype(int)
    for _, row in sql.iterrows():
        mine = quantiles.percentiles(lat[window == int(row["t_s"])], which)
        assert row["n"] == mine["n"]
        assert [row[k] for k in which] == [mine[k] for k in which]
    assert whole.tolist() == [quantiles.percentiles(lat)[k] for k in quantiles.SUMMARY_PERCENTILES]


def test_load_run_and_tables(run_db):
    db, truth = run_db
    data = benchmark.load_run(str(db), "latest")
    assert data.run_id == truth["run_id"] and data.n_requests == truth["n"]
    assert data.error_sample["t_s"].iloc[0] == 0.0  # request 0 failed; times count from t0
    ok_lat = truth["latency_ms"][~truth["error"]]
    table = benchmark.run_percentiles(data)
    assert table.loc["P99", "latency_ms"] == pytest.approx(np.quantile(ok_lat, 0.99, method="inverted_cdf"))
    assert table.loc["P99", "n"] == ok_lat.size
    errors = benchmark.error_table(data)
    assert errors.loc["http_5xx", "requests"] == int(truth["error"].sum())
    assert errors["requests"].sum() == truth["n"] and errors["share_percent"].sum() == pytest.approx(100.0)
    over = benchmark.overview(data)
    assert over.loc["target", "value"] == "http://127.0.0.1:9/v1/predict"
    assert over.loc["valid", "value"] == "yes"
    assert over.loc["requests", "value"] == f"2,000 ({int(truth['error'].sum())} errors)"
    lag = benchmark.schedule_lag_table(data)
    lag_ms = (truth["sent"] - truth["intended"]) * 1000.0
    assert lag.loc["MAX", "lag_ms"] == pytest.approx(lag_ms.max())
    assert lag.loc["P99", "lag_ms"] == pytest.approx(np.quantile(lag_ms, 0.99, method="inverted_cdf"))
    assert lag["n"].tolist() == [truth["n"]] * 3
    figs = benchmark.headline_figures(data)
    assert figs["P99"].endswith(f"(n={ok_lat.size:,})") and "95% CI" in figs["P99"]
    assert figs["errors"] == f"{int(truth['error'].sum())} of 2,000 (1.05%)"
    assert benchmark.headline_title(data) == "Benchmark case=steady: constant at 100 req/s"
    assert benchmark.token_table(data).empty


def test_validity_and_rate_come_from_the_bench_summary(run_db, tmp_path):
    summary = benchmark.load_run(str(run_db[0])).summary
    assert summary is not None and summary["valid"]
    late = {**summary, "valid": False, "validity": {**summary["validity"], "generator_kept_up": False}}
    assert benchmark.validity_text(late) == "no (generator_kept_up)"
    imported = small_run(tmp_path / "i.duckdb", pd.DataFrame({"t_s": [0.0, 1.0], "latency_ms": 5.0,
                                                              "error_kind": None}))
    assert imported.summary is None  # not written by perfkit bench: no contract to read
    figs = benchmark.headline_figures(imported)
    assert figs["valid"] == "not recorded" and figs["achieved rate"] == "n/a"


def test_token_table_for_llm_runs(tmp_path):
    t = np.arange(50) / 10.0
    db = tmp_path / "llm.duckdb"
    con = store.connect(db)
    with store.transaction(con):
        make_run(con, "llm", t0_unix_s=0.0)
        # every request left 100 ms after its intended send (queued at a connection limit)
        add_requests(con, "llm", pd.DataFrame({"intended_unix_s": t, "sent_unix_s": t + 0.1, "done_unix_s": t + 0.5,
                                               "latency_ms": 500.0, "ttft_ms": np.arange(50.0),
                                               "ttft_intended_ms": np.arange(50.0) + 100.0, "tpot_ms": 20.0}))
    con.close()
    data = benchmark.load_run(str(db), "llm")
    table = benchmark.token_table(data)
    names = dict(benchmark.TOKEN_METRICS)
    actual, intended = names["ttft_ms"], names["ttft_intended_ms"]
    assert table.loc[(actual, "P50"), "latency_ms"] == 24.0 and table.loc[(actual, "P50"), "n"] == 50
    assert table.loc[(intended, "P50"), "latency_ms"] == 124.0  # the wait for a connection counts
    assert table.loc[(names["tpot_ms"], "P99"), "latency_ms"] == 20.0
    assert names["itl_ms_max"] not in table.index.get_level_values("metric")  # no values: no rows
    assert benchmark.headline_figures(data)["TTFT P99"] == "149.0 ms (n=50)"


def test_figures_draw_the_data(run_db):
    import matplotlib

    matplotlib.use("Agg")
    data = benchmark.load_run(str(run_db[0]))
    ax = figures.latency_over_time(data).axes[0]
    assert ax.get_yscale() == "log"
    assert sum(len(c.get_offsets()) for c in ax.collections) == data.n_requests
    assert figures.percentile_spectrum(data).axes[0].get_xscale() == "log"
    assert len(figures.throughput_errors(data).axes) == 2
    assert len(figures.schedule_lag(data).axes[0].collections[0].get_offsets()) == data.n_requests


def test_scatter_sample_keeps_the_whole_tail(tmp_path):
    rng = np.random.default_rng(2)
    lat = rng.lognormal(1.0, 0.6, 100_000)
    db = tmp_path / "big.duckdb"
    small_run(db, pd.DataFrame({"t_s": np.arange(100_000) / 1000.0, "latency_ms": lat, "error_kind": None}))
    with store.connect(db, read_only=True) as con:
        assert len(runs.sample_requests(con, "r1", max_rows=200_000)) == 100_000
        drawn = runs.sample_requests(con, "r1", max_rows=5000)
    assert len(drawn) == 5000
    cut = np.quantile(lat, 0.99, method="inverted_cdf")
    assert (drawn["latency_ms"] > cut).sum() == (lat > cut).sum()  # every tail point drawn
    assert drawn["intended_unix_s"].is_monotonic_increasing and drawn["intended_unix_s"].is_unique
    data = benchmark.load_run(str(db), "r1", max_points=5000)
    assert len(data.latency_sample) == 5000 and data.n_ok == 100_000
    label = figures.latency_over_time(data).axes[0].get_legend().get_texts()[0].get_text()
    assert label == "ok request (n=100,000, 5,000 drawn: all above P99 + a sample)"


@pytest.mark.slow
def test_notebook_01_renders_in_chromium(run_db, tmp_path, chromium):
    db, truth = run_db
    out = tmp_path / "reports"
    res = subprocess.run([sys.executable, "-m", "perfkit", "report", "01", "--db", str(db), "--out", str(out),
                          "-p", "run_id", truth["run_id"], "--no-progress"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    page = chromium.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "01_benchmark.html").as_uri())
    page.wait_for_load_state("load")
    sizes = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(sizes) == 4 and all(ok and w > 0 for ok, w in sizes)
    assert page.locator(".jp-CodeCell .jp-InputArea, .jp-Editor, .jp-InputPrompt").count() == 0
    assert page.locator(".jp-CodeCell .jp-OutputArea").count() >= 8
    assert "load_run(" not in page.content()
    assert "Latency percentiles" in page.inner_text("body")
    assert browser.page_problems(page, "01_benchmark.html") == []
    assert errors == []
    page.goto((out / "index.html").as_uri())
    assert truth["run_id"] in page.inner_text("table")
    page.close()


@pytest.mark.slow
def test_notebook_01_can_benchmark_a_target_itself(demo_server, tmp_path):
    """With ``target`` set the notebook runs ``perfkit bench`` first and reports that run."""
    db, out = tmp_path / "nb.duckdb", tmp_path / "reports"
    res = subprocess.run([sys.executable, "-m", "perfkit", "report", "01", "--db", str(db), "--out", str(out),
                          "-p", "target", demo_server.url, "-p", "rate_rps", "20", "-p", "duration_s", "3",
                          "--no-progress"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id, label, n = con.execute(
            "SELECT r.run_id, r.label, count(q.seq) FROM runs r JOIN requests q USING (run_id) "
            "GROUP BY ALL").fetchone()
    finally:
        con.close()
    assert label == "notebook=01" and n == 60
    html = (out / "01_benchmark.html").read_text()
    assert run_id in html and demo_server.url in html
