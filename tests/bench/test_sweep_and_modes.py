"""Sweeps (each step a stored run), closed loop, and a multi-stage scenario run end to end."""
from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pytest

from perfkit.bench import BenchConfig, Stage, run
from perfkit.bench.sweep import curve, find_max, knee, sweep_rates

pytestmark = pytest.mark.slow


def base(url: str, db) -> BenchConfig:
    return BenchConfig(target=url, db=str(db), quiet=True, collect=False, min_duration_s=0.5,
                       stages=[Stage("constant", duration_s=1.0, rate_rps=10.0)], label="case=sweep")


def test_sweep_rates_stores_runs_and_curve(demo, tmp_path):
    res = sweep_rates(base(demo.url, tmp_path / "r.duckdb"), [20.0, 40.0])
    assert [p["intended_rps"] for p in res["points"]] == [20.0, 40.0]
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    frame = curve(con, res["sweep_id"])
    assert frame["intended_rps"].tolist() == [20.0, 40.0]
    assert (frame["requests"] == [20, 40]).all()
    labels = [json.loads(x[0]) for x in con.execute("SELECT labels FROM runs ORDER BY started_at").fetchall()]
    assert labels[0] == {"case": "sweep", "sweep": res["sweep_id"], "rate": "20"}


def test_find_max_brackets_then_bisects(demo, tmp_path):
    res = find_max(base(demo.url, tmp_path / "r.duckdb"), slo_p99_ms=2000, start_rps=20, max_rps=60,
                   tolerance=0.3)
    assert [p["intended_rps"] for p in res["points"]] == [20, 40, 50]
    assert res["max_rate_rps"] == 50 and res["bracket_rps"] == [50, 60]


def test_knee_rule_on_points():
    mk = lambda r, a, p99: {"intended_rps": r, "achieved_rps": a, "p99_ms": p99, "error_fraction": 0.0,  # noqa: E731
                            "status": "completed"}
    pts = [mk(100, 100, 5), mk(200, 200, 8), mk(400, 399, 9.9), mk(800, 600, 400)]
    assert knee(pts)["intended_rps"] == 400
    assert knee([mk(100, 50, 5)]) is None


def test_closed_loop_with_think_time(demo, tmp_path):
    s = run(BenchConfig(target=demo.url, db=str(tmp_path / "r.duckdb"), quiet=True, collect=False,
                        stages=[Stage("closed", duration_s=1.5, concurrency=3, think_s=0.05)], workers=2))
    assert s["pattern"] == "closed" and s["status"] == "completed"
    # 3 users, each at most one request per 50 ms of think time, for 1.5 s
    assert 9 <= s["requests"] <= 3 * 1.5 / 0.05 + 3
    assert s["errors"] == {}


def test_scenario_file_runs_its_stages(demo, tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(f"""
target = "{demo.url}"
label = "case=scenario"
min_duration_s = 0.5
[payload]
kind = "longtail"
[[stage]]
pattern = "constant"
rate = 20
duration = 1
[[stage]]
pattern = "step"
rate_rps = 10
step_rps = 10
step_s = 0.5
steps = 2
""")
    out = tmp_path / "sum.json"
    res = subprocess.run([sys.executable, "-m", "perfkit", "bench", str(scen), "--db", str(tmp_path / "r.duckdb"),
                          "--summary-json", str(out), "--no-collect", "--quiet"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    s = json.loads(out.read_text())
    assert s["pattern"] == "scenario" and s["requests"] == 20 + 5 + 10
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    stages = dict(con.execute("SELECT stage, count(*) FROM requests GROUP BY stage").fetchall())
    assert stages == {0: 20, 1: 15}
    assert set(s["payload_classes"]) == {"longtail"}
