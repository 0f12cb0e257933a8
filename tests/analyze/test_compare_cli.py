"""`perfkit compare` and `perfkit diagnose` through the real command line: exit codes and JSON."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from analyze_synth import insert_run
from perfkit import store
from perfkit.cli import main


@pytest.fixture
def db_with_runs(tmp_db):
    rng = np.random.default_rng(12)
    with store.connect(tmp_db) as con:
        insert_run(con, "base", rng.lognormal(3, 0.3, 20000), rate_rps=500, t0=1.7e9)
        insert_run(con, "same", rng.lognormal(3, 0.3, 20000), rate_rps=500, t0=1.7e9 + 100)
        insert_run(con, "slower", rng.lognormal(3, 0.3, 20000) * 1.3, rate_rps=500, t0=1.7e9 + 200)
    return tmp_db


def test_compare_pass_exit_0_and_json(db_with_runs, tmp_path, capsys):
    out = tmp_path / "verdict.json"
    assert main(["compare", "base", "same", "--db", str(db_with_runs), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["verdict"] == "pass" and data["baseline_run"] == "base" and data["candidate_run"] == "same"
    assert {m["kind"] for m in data["metrics"]} == {"location", "tail", "errors"}
    assert data["thresholds"]["alpha"] == 0.02
    assert "verdict: PASS" in capsys.readouterr().out


def test_compare_regression_exit_1_and_latest(db_with_runs, capsys):
    assert main(["compare", "base", "latest", "--db", str(db_with_runs)]) == 1   # latest = slower
    assert "verdict: FAIL" in capsys.readouterr().out


def test_compare_bad_run_id_exit_2_one_line(db_with_runs):
    proc = subprocess.run([sys.executable, "-m", "perfkit", "compare", "base", "nope", "--db", str(db_with_runs)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "nope" in proc.stderr
    bad_metric = subprocess.run([sys.executable, "-m", "perfkit", "compare", "base", "same", "--metric", "x;drop",
                                 "--db", str(db_with_runs)], capture_output=True, text=True, timeout=120)
    assert bad_metric.returncode == 2 and "unknown" in bad_metric.stderr


def test_diagnose_cli_json(db_with_runs, tmp_path):
    out = tmp_path / "findings.json"
    assert main(["diagnose", "base", "--db", str(db_with_runs), "--json", str(out)]) == 0
    assert json.loads(out.read_text()) == []
    assert main(["diagnose", "missing", "--db", str(db_with_runs)]) == 2


def test_diagnose_fail_on_gates_a_pipeline(tmp_db):
    lag = np.zeros(2000)
    lag[1000:] = 40.0
    with store.connect(tmp_db) as con:
        insert_run(con, "late", np.full(2000, 5.0) + lag, lag_ms=lag)
        insert_run(con, "clean", np.random.default_rng(0).gamma(4, 1, 2000), t0=1.8e9)
    assert main(["diagnose", "late", "--db", str(tmp_db), "--fail-on", "critical"]) == 1
    assert main(["diagnose", "clean", "--db", str(tmp_db), "--fail-on", "low"]) == 0
    assert main(["diagnose", "late", "--db", str(tmp_db)]) == 0


def test_diagnose_gpu_source_names_an_export(tmp_db, tmp_path):
    """An export from another time is ignored unless named with --gpu-source."""
    from pathlib import Path

    fixture = Path(__file__).parent.parent / "data" / "analyze" / "dcgm-exporter_T4_A10G_datadog-fixture.txt"
    with store.connect(tmp_db) as con:
        insert_run(con, "run", np.random.default_rng(1).gamma(4, 1, 500), t0=1.7e9)
    assert main(["ingest", "dcgm", str(fixture), "--db", str(tmp_db)]) == 0
    with store.connect(tmp_db, read_only=True) as con:
        (sid,), = con.execute("SELECT source_id FROM sources").fetchall()
    plain, named = tmp_path / "plain.json", tmp_path / "named.json"
    assert main(["diagnose", "run", "--db", str(tmp_db), "--json", str(plain)]) == 0
    assert main(["diagnose", "run", "--db", str(tmp_db), "--gpu-source", str(sid), "--json", str(named)]) == 0
    assert json.loads(plain.read_text()) == []
    found = json.loads(named.read_text())
    assert found and {f["rule"] for f in found} == {"gpu_underuse"} and found[0]["numbers"]["data"] == f"source {sid}"
