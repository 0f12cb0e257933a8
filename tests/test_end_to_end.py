"""End to end: demo server -> ``perfkit bench`` -> DuckDB rows -> ``perfkit report`` -> HTML in Chromium.

Everything is real: the ONNX demo server on a loopback port, the load generator
as a subprocess, the store on disk, papermill in the venv's kernel, and a
headless Debian Chromium looking at the result.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from perfkit.report import browser

REPO = Path(__file__).resolve().parents[1]
SECRET = "e2e-secret-token-6f1d2c"
RATE_RPS = 100
DURATION_S = 5

pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("demo_server", [{"error_rate": 0.05, "seed": 3}], indirect=True)]


@pytest.fixture(scope="module")
def bench_run(demo_server, tmp_path_factory):
    """One short benchmark of the demo server (5 % injected errors, a bearer token), then its report."""
    work = tmp_path_factory.mktemp("e2e")
    db, summary_path, out = work / "perfkit.duckdb", work / "summary.json", work / "reports"
    env = dict(os.environ, PERFKIT_E2E_TOKEN=SECRET)
    bench = subprocess.run(
        [sys.executable, "-m", "perfkit", "bench", "--target", demo_server.url, "--rate", str(RATE_RPS),
         "--duration", str(DURATION_S), "--min-duration-s", str(DURATION_S), "--bearer-env", "PERFKIT_E2E_TOKEN",
         "--label", "suite=e2e,case=<script>alert(1)</script>", "--db", str(db),
         "--summary-json", str(summary_path), "--quiet", "--no-collect"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=180)
    assert bench.returncode == 0, bench.stderr
    summary = json.loads(summary_path.read_text())
    report = subprocess.run(
        [sys.executable, "-m", "perfkit", "report", "01", "-p", "run_id", summary["run_id"], "--db", str(db),
         "--out", str(out), "--no-progress"], capture_output=True, text=True, cwd=REPO, timeout=300)
    return {"db": db, "summary": summary, "out": out, "report": report, "bench": bench}


def test_rows_in_duckdb_match_the_summary(bench_run):
    s = bench_run["summary"]
    con = duckdb.connect(str(bench_run["db"]), read_only=True)
    try:
        rows = con.execute("SELECT seq, latency_ms, error_kind FROM requests WHERE run_id = ? ORDER BY seq",
                           [s["run_id"]]).fetchall()
        run_text = " ".join(str(v) for v in con.execute("SELECT * FROM runs").fetchone())
    finally:
        con.close()
    assert s["status"] == "completed"
    assert s["requests"] == len(rows) == RATE_RPS * DURATION_S
    assert [r[0] for r in rows] == list(range(len(rows)))
    kinds = [r[2] for r in rows]
    ok = np.array([r[1] for r in rows if r[2] is None])
    assert s["ok"] == ok.size
    errors = {k: kinds.count(k) for k in set(kinds) if k is not None}
    assert s["errors"] == errors
    assert 0 < sum(errors.values()) < len(rows) * 0.2  # the 5 % injected 500s came back as errors
    for key, q in (("p50", 0.5), ("p99", 0.99)):
        assert s["latency_ms"][key] == pytest.approx(float(np.quantile(ok, q, method="inverted_cdf")), abs=1e-3)
    assert SECRET not in run_text and SECRET not in bench_run["bench"].stderr


def test_report_renders_notebook_01(bench_run):
    rep, out, s = bench_run["report"], bench_run["out"], bench_run["summary"]
    assert rep.returncode == 0, rep.stderr
    html = (out / "01_benchmark.html").read_text()
    index = (out / "index.html").read_text()
    assert s["run_id"] in html and s["run_id"] in index
    assert SECRET not in html and SECRET not in index
    assert "<script>alert(1)</script>" not in html and "<script>alert(1)</script>" not in index
    p99 = s["latency_ms"]["p99"]
    assert f"{p99:,.1f} ms" in index or f"{p99:,.2f} ms" in index  # the headline agrees with the summary


def test_report_html_in_headless_chromium(bench_run, chromium):
    out = bench_run["out"]
    page = chromium.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"requestfailed: {r.url}"))
    page.goto((out / "01_benchmark.html").as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    # latency over time, percentile spectrum, throughput and errors, schedule lag
    assert len(images) == 4
    assert all(done and w > 0 and h > 0 for done, w, h in images)
    assert page.locator(".jp-CodeCell .jp-InputArea, .jp-InputPrompt, .jp-Editor").count() == 0
    body = page.inner_text("body")
    assert "benchmark.load_run" not in body and "import " not in body
    assert "Latency percentiles" in body and bench_run["summary"]["run_id"] in body
    assert browser.page_problems(page, "01_benchmark.html") == []  # no NaN, long floats, bare index, cut text
    page.goto((out / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert page.locator("tbody tr").count() == 1
    page.click("tbody tr a")
    page.wait_for_load_state("load")
    assert page.url.endswith("01_benchmark.html")
    assert problems == []
    page.close()
