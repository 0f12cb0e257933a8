"""Notebook 01's functions on a recorded run with known rows, and the notebook rendered in Chromium."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfkit.report import benchmark

REPO = Path(__file__).resolve().parents[2]


def test_percentile_table_is_exact_with_bracketing_intervals():
    rng = np.random.default_rng(1)
    v = rng.lognormal(2.0, 0.5, 5000)
    table = benchmark.percentile_table(v)
    for name, q in (("P50", 0.5), ("P99", 0.99)):
        row = table.loc[name]
        assert row["latency_ms"] == np.quantile(v, q, method="inverted_cdf")
        assert row["ci_low_ms"] < row["latency_ms"] < row["ci_high_ms"]
        assert row["n"] == 5000
    # 5,000 samples cannot bound P99.9 from above at 95%? They can (5 above); 500 cannot.
    small = benchmark.percentile_table(v[:500])
    assert np.isnan(small.loc["P99.9", "ci_high_ms"])


def test_spectrum_stops_where_the_sample_does():
    v = np.arange(1, 1001, dtype=float)
    spec = benchmark.percentile_spectrum(v)
    assert spec["q"].iloc[0] == 0.0
    assert spec["inv_tail"].max() == pytest.approx(1000.0)  # 1/(1-q) up to n, not 10,000
    assert spec["latency_ms"].is_monotonic_increasing
    assert spec["latency_ms"].iloc[-1] == 999.0  # P99.9 of 1..1000 (inverted CDF)


def test_throughput_counts_every_request_once():
    frame = pd.DataFrame({"t_s": [0.1, 0.2, 0.6, 1.5, 2.2], "done_t_s": [0.15, 0.3, 1.2, 1.9, 2.5],
                          "error_kind": [None, None, "timeout", None, None]})
    tp = benchmark.throughput_over_time(frame, bin_s=1.0)
    assert tp["intended_rps"].tolist() == [3.0, 1.0, 1.0]
    assert tp["achieved_rps"].tolist() == [2.0, 1.0, 1.0]
    assert tp["errors_rps"].tolist() == [0.0, 1.0, 0.0]


def test_throughput_has_no_sliver_bin_after_the_schedule_ends():
    t = np.arange(0.0, 2.0, 0.01)  # 100 req/s for 2 s
    frame = pd.DataFrame({"t_s": t, "done_t_s": t + 0.015, "error_kind": [None] * len(t)})
    tp = benchmark.throughput_over_time(frame, bin_s=1.0)
    assert tp["t_s"].tolist() == [0.5, 1.5]  # the last responses land after 2.0 s: counted in bin 2
    assert tp["achieved_rps"].sum() == len(t)
    assert tp["achieved_rps"].tolist() == [99.0, 101.0]  # 0.99 s send completes at 1.005 s


def test_rolling_percentiles_per_window_with_n():
    frame = pd.DataFrame({"t_s": [0.1, 0.5, 0.9, 1.1, 1.2], "latency_ms": [1.0, 2.0, 30.0, 5.0, 6.0],
                          "error_kind": [None, None, None, None, "http_5xx"]})
    roll = benchmark.rolling_percentiles(frame, 1.0)
    assert roll["n"].tolist() == [3, 1]
    assert roll["p50"].tolist() == [2.0, 5.0]
    assert roll["p99"].tolist() == [30.0, 5.0]


def test_load_run_and_tables(run_db):
    db, truth = run_db
    data = benchmark.load_run(str(db), "latest")
    assert data.run_id == truth["run_id"] and len(data.requests) == truth["n"]
    assert data.requests["t_s"].iloc[0] == 0.0
    ok_lat = truth["latency_ms"][~truth["error"]]
    table = benchmark.run_percentiles(data)
    assert table.loc["P99", "latency_ms"] == pytest.approx(np.quantile(ok_lat, 0.99, method="inverted_cdf"))
    assert table.loc["P99", "n"] == ok_lat.size
    errors = benchmark.error_table(data)
    assert errors.loc["http_5xx", "requests"] == int(truth["error"].sum())
    over = benchmark.overview(data)
    assert over.loc["target", "value"] == "http://127.0.0.1:9/v1/predict"
    assert over.loc["valid", "value"] == "yes"
    figs = benchmark.headline_figures(data)
    assert figs["P99"].endswith(f"(n={ok_lat.size:,})") and "95% CI" in figs["P99"]
    assert figs["errors"] == f"{int(truth['error'].sum())} of 2,000 (1.05%)"
    assert benchmark.headline_title(data) == "Benchmark case=steady: constant at 100 req/s"
    assert benchmark.token_table(data).empty


def test_figures_draw_the_data(run_db):
    import matplotlib

    matplotlib.use("Agg")
    data = benchmark.load_run(str(run_db[0]))
    fig = benchmark.plot_latency_over_time(data)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(data.requests)
    spec = benchmark.plot_percentile_spectrum(data)
    assert spec.axes[0].get_xscale() == "log"
    assert len(benchmark.plot_throughput_errors(data).axes) == 2
    assert len(benchmark.plot_schedule_lag(data).axes[0].collections[0].get_offsets()) == len(data.requests)


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


def test_scatter_sample_keeps_the_whole_tail():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"t_s": np.arange(100_000) / 1000.0, "latency_ms": rng.lognormal(1.0, 0.6, 100_000)})
    assert benchmark.scatter_sample(frame.head(500), max_points=1000) is not None
    assert len(benchmark.scatter_sample(frame.head(500), max_points=1000)) == 500
    drawn = benchmark.scatter_sample(frame, max_points=5000)
    assert len(drawn) == 5000
    cut = np.quantile(frame["latency_ms"], 0.99, method="inverted_cdf")
    assert (drawn["latency_ms"] > cut).sum() == (frame["latency_ms"] > cut).sum()  # every tail point drawn
    assert drawn.index.is_monotonic_increasing and drawn.index.is_unique
