"""The generated locustfile: its shape follows the stages, and Locust really runs it."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perfkit.bench.locustgen import rate_at, shape_table
from perfkit.bench.schedule import Stage


def test_shape_follows_stage_rates():
    stages = [Stage("constant", duration_s=2, rate_rps=10), Stage("ramp", duration_s=2, from_rps=10, to_rps=30),
              Stage("step", rate_rps=5, step_rps=5, step_s=1, steps=2)]
    assert shape_table(stages, per_user_rps=2.0) == [(1.0, 5), (2.0, 5), (3.0, 5), (4.0, 10), (5.0, 3), (6.0, 5)]
    assert rate_at(Stage("burst", rate_rps=10, spike_rps=90, spike_period_s=5, spike_s=1), 0.5) == 100
    assert rate_at(Stage("burst", rate_rps=10, spike_rps=90, spike_period_s=5, spike_s=1), 1.5) == 10


@pytest.mark.slow
def test_generated_locustfile_runs_against_demo(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("PK_LOCUST_TOKEN", "tok-NEVER-IN-FILE")
    scen = tmp_path / "s.toml"
    scen.write_text(f'target = "{demo.url}"\nbearer_env = "PK_LOCUST_TOKEN"\n[payload]\nkind = "outliers"\n'
                    f'outlier_fraction = 0.2\n[[stage]]\nrate = 10\nduration = 3\n')
    out = tmp_path / "locustfile.py"
    res = subprocess.run([sys.executable, "-m", "perfkit", "locustfile", str(scen), "-o", str(out),
                          "--per-user-rps", "2"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "tok-NEVER-IN-FILE" not in out.read_text()
    locust = Path(sys.executable).with_name("locust")
    assert locust.exists() or shutil.which("locust")
    res = subprocess.run([str(locust), "-f", str(out), "--headless", "--csv", str(tmp_path / "loc"),
                          "--only-summary", "--loglevel", "ERROR"], capture_output=True, text=True, timeout=90,
                         cwd=tmp_path)
    with open(tmp_path / "loc_stats.csv") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    total = int(rows["Aggregated"]["Request Count"])
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert 10 <= total <= 40  # ~10 req/s for 3 s
    assert any(name.endswith("[outlier]") for name in rows) and any(name.endswith("[normal]") for name in rows)
