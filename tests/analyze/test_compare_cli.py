"""`perfkit compare`, `perfkit abtest` and `perfkit diagnose` through the real command line: exit codes and JSON."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import numpy as np
import pytest

from analyze_synth import insert_run
from perfkit import store
from perfkit.analyze import abtest
from perfkit.cli import main


@pytest.fixture
def db_with_runs(tmp_db):
    """Two tiny runs, then three runs each of: a baseline, the same configuration again, a 30 % slower one."""
    rng = np.random.default_rng(12)
    with store.connect(tmp_db) as con:
        insert_run(con, "tiny1", rng.lognormal(3, 0.3, 150), t0=1.7e9, label="case=tiny")
        insert_run(con, "tiny2", rng.lognormal(3, 0.3, 150), t0=1.7e9 + 100, label="case=tiny")
        t0 = 1.7e9 + 200
        for case, scale in (("base", 1.0), ("same", 1.0), ("slower", 1.3)):
            for i in range(1, 4):
                insert_run(con, f"{case}{i}", rng.lognormal(3, 0.3, 3000) * scale, rate_rps=500, t0=t0,
                           label=f"case={case},repeat={i}")
                t0 += 100
    return tmp_db


def test_compare_label_selectors_pass_exit_0_and_json_follows_the_schema(db_with_runs, tmp_path, capsys):
    out = tmp_path / "verdict.json"
    assert main(["compare", "--baseline", "case=base", "--candidate", "case=same", "--db", str(db_with_runs),
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    jsonschema.validate(data, abtest.schema())
    assert data["verdict"] == "pass" and data["method"]["name"] == "hierarchical bootstrap"
    assert [r["run_id"] for r in data["baseline"]["runs"]] == ["base1", "base2", "base3"]
    assert data["candidate"]["repeats"] == 3 and data["candidate"]["selector"] == "case=same"
    assert {m["statistic"] for m in data["metrics"]} == {"p50", "p99", "error_rate"}
    text = capsys.readouterr().out
    assert "verdict: PASS" in text and "PASS: no regression" in text


def test_compare_positional_run_ids_regression_exit_1_and_latest(db_with_runs, capsys):
    assert main(["compare", "base1,base2,base3", "latest", "--db", str(db_with_runs)]) == 1   # latest = slower3
    capsys.readouterr()
    assert main(["compare", "base1,base2,base3", "slower1,slower2,slower3", "--db", str(db_with_runs)]) == 1
    text = capsys.readouterr().out
    assert "verdict: FAIL" in text and "FAIL: the candidate is worse: latency_ms p50 +" in text


def test_one_run_a_side_is_judged_within_the_run_and_says_so(db_with_runs, capsys):
    assert main(["compare", "base1", "same1", "--db", str(db_with_runs), "--json", "-"]) in (0, 1)
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["method"]["run_to_run_variance"] == "unknown"
    assert "run-to-run variance is unknown" in data["sentence"] and "note: one baseline run" in captured.err


def test_inconclusive_exits_0_unless_asked(db_with_runs, capsys):
    assert main(["compare", "tiny1", "tiny2", "--db", str(db_with_runs)]) == 0
    assert "verdict: INCONCLUSIVE" in capsys.readouterr().out
    assert main(["compare", "tiny1", "tiny2", "--db", str(db_with_runs), "--fail-on-inconclusive"]) == 1


@pytest.mark.parametrize("argv, says", [
    (["base1", "nope"], "nope"),
    (["base1", "same1", "--metric", "x;drop"], "unknown"),
    (["--baseline", "case=none", "--candidate", "case=same"], "case=none"),
    (["base1", "--baseline", "base2"], "given twice"),
    (["--baseline", "case=base", "--candidate", "base1,same1"], "both sides"),
])
def test_compare_bad_input_exit_2_one_line(db_with_runs, argv, says):
    proc = subprocess.run([sys.executable, "-m", "perfkit", "compare", *argv, "--db", str(db_with_runs)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and says in proc.stderr


class _Answer(BaseHTTPRequestHandler):
    """A target that answers every POST at once."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"predictions": [0]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def target():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_abtest_runs_both_arms_interleaved_labels_them_and_judges(target, tmp_db, tmp_path, capsys):
    out = tmp_path / "verdict.json"
    code = main(["abtest", "--baseline-target", target, "--candidate-target", target, "--repeats", "2",
                 "--rate", "50", "--duration", "1", "--min-duration-s", "0.5", "--no-collect", "--quiet",
                 "--label", "team=ab", "--db", str(tmp_db), "--json", str(out)])
    assert code in (0, 1)
    text = capsys.readouterr().out
    assert "abtest: 2 run(s) per arm, order BCCB" in text
    data = json.loads(out.read_text())
    jsonschema.validate(data, abtest.schema())
    assert data["baseline"]["repeats"] == data["candidate"]["repeats"] == 2
    with store.connect(tmp_db, read_only=True) as con:
        rows = con.execute("SELECT json_extract_string(labels, '$.arm'), json_extract_string(labels, '$.repeat'), "
                           "json_extract_string(labels, '$.team'), json_extract_string(labels, '$.abtest') "
                           "FROM runs ORDER BY started_at").fetchall()
    assert [(a, r) for a, r, _, _ in rows] == [("baseline", "1"), ("candidate", "1"), ("candidate", "2"),
                                              ("baseline", "2")]
    assert {t for _, _, t, _ in rows} == {"ab"} and len({x for _, _, _, x in rows}) == 1
    assert data["baseline"]["selector"] == f"abtest={rows[0][3]},arm=baseline"


def test_abtest_refuses_target_and_a_bad_repeat_count(tmp_db):
    base = ["abtest", "--baseline-target", "http://127.0.0.1:9", "--candidate-target", "http://127.0.0.1:9",
            "--rate", "10", "--duration", "1", "--db", str(tmp_db)]
    assert main([*base, "--target", "http://127.0.0.1:9"]) == 2
    assert main([*base, "--repeats", "0"]) == 2


def test_diagnose_cli_json(db_with_runs, tmp_path):
    out = tmp_path / "findings.json"
    assert main(["diagnose", "base1", "--db", str(db_with_runs), "--json", str(out)]) == 0
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
