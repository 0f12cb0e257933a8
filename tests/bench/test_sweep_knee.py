"""The sweep's knee and over-saturation stop: on a synthetic stored sweep (the report reader and
notebook 09), and end to end against a low-capacity demo server (``perfkit sweep --find-knee``)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import papermill as pm
import pytest

from analyze_synth import insert_run
from perfkit import store
from perfkit.analyze import sweep_report
from perfkit.bench.sweep import geometric_rates
from perfkit.errors import UsageError
from perfkit.report.headline import HEADLINE_MIME

NOTEBOOK = Path(__file__).resolve().parents[2] / "perfkit" / "notebooks" / "09_sweep.ipynb"
RATES = (10, 20, 40, 60, 80, 120)


def mm1_latencies_ms(send_s: np.ndarray, service_s: np.ndarray) -> np.ndarray:
    """One server, first come first served: each request's time from its send to its answer."""
    done = np.empty_like(send_s)
    free = 0.0
    for i, (t, s) in enumerate(zip(send_s, service_s)):
        free = max(free, t) + s
        done[i] = free
    return (done - send_s) * 1e3


@pytest.fixture
def sweep_store(tmp_db):
    """A stored sweep of a server serving 100 req/s (exponential service, Poisson arrivals), 6 s a step:
    120 req/s over-saturates it."""
    rng = np.random.default_rng(11)
    with store.connect(tmp_db) as con:
        for k, rate in enumerate(RATES):
            t0 = 1.75e9 + 100 * k
            send = np.cumsum(rng.exponential(1 / rate, int(rate * 8)))
            send = send[send < 6]
            lat = mm1_latencies_ms(send, rng.exponential(0.01, send.size))
            insert_run(con, f"step{k}", lat, rate_rps=rate, t0=t0, intended=t0 + send,
                       label=f"suite=t,case=sweep,sweep=S1,rate={rate}")
    return tmp_db


def test_report_of_a_stored_sweep_finds_the_knee_and_the_over_saturated_step(sweep_store):
    with store.connect(sweep_store, read_only=True) as con:
        rep = sweep_report.load(con, "case=sweep")
        assert rep.sweep_id == "S1"
        assert rep.steps["intended_rps"].tolist() == list(RATES)
        assert rep.steps["oversaturated"].tolist() == [False] * 5 + [True]
        assert rep.saturated_from == 5
        assert rep.knee is not None and 2 <= rep.knee <= 4       # 40-80% load: where M/M/1's P99 bends
        table = rep.table()
        assert table["knee"].sum() == 1 and "latency_p99_ms" in table
        assert (table["lo_ms"] <= table["latency_p99_ms"]).all() and (table["n"] == table["requests"]).all()
        assert rep.summary().startswith("knee at ") and "over-saturated from 120 req/s" in rep.summary()
        p50 = sweep_report.load(con, "S1", metric="latency_p50")
        assert p50.table()["latency_p50_ms"].iloc[0] < table["latency_p99_ms"].iloc[0]
        with pytest.raises(store.StoreError, match="no sweep"):
            sweep_report.load(con, "case=nothing")


def test_sweep_notebook_executes(sweep_store, tmp_path):
    out = tmp_path / "09.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3",
                        parameters={"db": str(sweep_store), "sweep": "S1"}, progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1
    head = next(o["data"][HEADLINE_MIME] for o in outputs if HEADLINE_MIME in o.get("data", {}))
    assert head["title"] == "Sweep" and head["figures"]["Over-saturated from"] == "120 req/s"
    assert head["figures"]["Knee"].endswith(")") and "over-saturated from 120 req/s" in head["note"]


def test_sweep_notebook_parameters_cell_is_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)


def test_geometric_rates():
    assert geometric_rates(1, 2, 20, 12) == [1, 2, 4, 8, 16]
    assert geometric_rates(10, 1.5, 1e6, 3) == [10, 15, 22.5]
    with pytest.raises(UsageError):
        geometric_rates(10, 1.0, 100, 5)


@pytest.mark.slow
@pytest.mark.parametrize("demo_server", [{"llm_max_batch": 1}], indirect=True)
def test_find_knee_against_a_low_capacity_demo_stops_at_over_saturation(demo_server, tmp_path):
    """One sequence at a time, 16 tokens each: a few requests per second saturate the demo's LLM."""
    db, out = tmp_path / "s.duckdb", tmp_path / "sweep.json"
    res = subprocess.run(
        [sys.executable, "-m", "perfkit", "sweep", "--target", demo_server.url, "--protocol", "openai",
         "--max-tokens", "16", "--timeout-s", "10", "--duration", "3", "--min-duration-s", "0.5",
         "--find-knee", "--rate", "1", "--rate-factor", "2", "--max-steps", "8", "--knee-metric", "latency_p99",
         "--label", "case=knee", "--db", str(db), "--summary-json", str(out), "--no-collect", "--quiet"],
        capture_output=True, text=True, timeout=400)
    result = json.loads(out.read_text())
    points = result["points"]
    assert res.returncode == 0, res.stdout + res.stderr
    # stopped at the first over-saturated step: none before it, no higher rate run
    assert points[-1]["oversaturated"] is True and len(points) < 8
    assert not any(p["oversaturated"] for p in points[:-1])
    assert result["oversaturated_at_rps"] == points[-1]["intended_rps"]
    assert f"over-saturated at {points[-1]['intended_rps']:,.1f} req/s" in res.stdout
    knee = result["kneedle"]
    assert knee is not None and knee["intended_rps"] <= points[-1]["intended_rps"]
    assert result["knee_metric"] == "latency_p99" and points[0]["knee_metric_ms"]["n"] > 0
    with store.connect(db, read_only=True) as con:
        assert sweep_report.load(con, "case=knee").run_id == knee["run_id"]


def test_the_suite_sweep_case_is_a_sweep_command_line(tmp_path):
    """The default suite's sweep case runs ``perfkit sweep`` with flags its parser accepts, and its
    report names the case's runs by label."""
    from perfkit.cli import build_parser
    from perfkit.pipeline import suite
    from perfkit.pipeline.bench import bench_command

    case = next(c for c in suite.DEFAULT_CASES if c.sweep)
    cmd = bench_command("http://127.0.0.1:9", {**case.bench, **case.sweep, "quiet": True}, tmp_path / "s.json",
                        label=suite.case_label("T", case), db="x.duckdb", target_pid=1, command="sweep")
    args = build_parser().parse_args(cmd[cmd.index("sweep"):])
    assert args.find_knee and args.rates == case.sweep["rates"] and args.duration == case.bench["duration"]
    assert case.load_s == case.bench["duration"] * len(case.sweep["rates"].split(","))
    rep = next(r for r in suite.DEFAULT_REPORTS if r.notebook == "09_sweep")
    assert suite.fill_parameters(rep.parameters, {case.name: "R"}, "suite=T") == {"sweep": f"suite=T,case={case.name}"}


@pytest.mark.slow
def test_the_default_suite_sweep_case_and_its_report(tmp_path, capsys):
    """The suite's own sweep case and 09 report, run as ``make report`` runs them: the report finds the
    sweep by the case's labels and its headline reaches the index."""
    from perfkit.pipeline import run, suite

    case = next(c for c in suite.DEFAULT_CASES if c.sweep)
    rep = next(r for r in suite.DEFAULT_REPORTS if r.notebook == "09_sweep")
    out = tmp_path / "reports"
    code = run.run_suite(suite.Suite("tiny", (case,), (rep,)), db=str(tmp_path / "s.duckdb"), out_dir=out,
                         progress=False)
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"  {case.name}: run " in text and "over-saturated from" in text and "1 of 1 reports ok" in text
    index = (out / "index.html").read_text()
    assert "Over-saturated from" in index and "Knee" in index
