"""End-to-end runs against real servers (the demo server and tests/bench/fake_target.py)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from perfkit.bench import BenchConfig, PayloadSpec, Stage, run
from perfkit.bench.summary import summarize
from perfkit.demo.launch import DemoServer, free_port
from perfkit.jsonsafe import json_safe


def perfkit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "perfkit", *args]

pytestmark = pytest.mark.slow


def cfg(target: str, db, **kw) -> BenchConfig:
    kw.setdefault("stages", [Stage("constant", duration_s=2.0, rate_rps=100.0)])
    return BenchConfig(target=target, db=str(db), quiet=True, collect=False, min_duration_s=1.0, **kw)


def test_constant_run_rows_match_summary(demo, tmp_path):
    db = tmp_path / "r.duckdb"
    out = tmp_path / "s.json"
    s = run(cfg(demo.url, db, summary_json=str(out), label="hardware=cpu,case=constant",
                payload=PayloadSpec("outliers", outlier_fraction=0.05)))
    assert s["status"] == "completed" and s["requests"] == s["scheduled"] == 200 and s["ok"] == 200
    assert s["never_sent"] == 0 and "tpot_ms" in s["definitions"]
    assert json.loads(out.read_text()) == s and s["format_version"] == 1
    con = duckdb.connect(str(db), read_only=True)
    # The stored rows give back the same summary (what the runner adds at the end aside).
    again = json_safe(summarize(con, s["run_id"]))
    assert again == {k: v for k, v in s.items() if k not in ("started_at", "ended_at")}
    n, p99, p50, classes, mx = con.execute(
        "SELECT count(*), quantile_disc(latency_ms, 0.99), quantile_disc(latency_ms, 0.5),"
        " count(DISTINCT payload_class), max(seq) FROM requests WHERE run_id = ? AND error_kind IS NULL",
        [s["run_id"]]).fetchone()
    assert (n, mx) == (200, 199)
    # connections opened before t0 are not timed; those opened during the run (none, when the
    # pre-opened ones suffice) are, and the summary counts exactly those rows
    connects = con.execute("SELECT count(connect_ms) FROM requests WHERE run_id = ?", [s["run_id"]]).fetchone()[0]
    assert s["connect_ms"]["n"] == connects <= 200
    assert s["latency_ms"]["p99"] == pytest.approx(p99) and s["latency_ms"]["p50"] == pytest.approx(p50)
    assert classes == 2 and s["payload_classes"]["outlier"] == 10
    status, labels, machine, stored = con.execute(
        "SELECT status, labels, machine, summary FROM runs WHERE run_id = ?", [s["run_id"]]).fetchone()
    assert status == "completed" and json.loads(labels) == {"hardware": "cpu", "case": "constant"}
    assert json.loads(machine)["hostname"] and json.loads(stored)["run_id"] == s["run_id"]
    # Every row's latency is measured from its intended send, so it is >= its service time.
    lat, svc = con.execute("SELECT latency_ms, service_ms FROM requests WHERE run_id = ?",
                           [s["run_id"]]).fetchnumpy().values()
    assert np.all(lat >= svc)


def test_stall_shows_in_latency_from_intended_but_not_in_service_time(tmp_path):
    # The server freezes 0.5 s every 2 s. One connection (a closed-loop-like client):
    # requests queue behind the stall, so their service time looks fast but their
    # latency from the intended send shows the stall (coordinated omission, corrected).
    with DemoServer(stall="2:0.5") as server:
        s = run(cfg(server.url, tmp_path / "r.duckdb", max_connections=1,
                    stages=[Stage("constant", duration_s=4.0, rate_rps=50.0)]))
    assert s["ok"] == 200
    assert s["latency_ms"]["p99"] > 300          # near the 500 ms stall (plus draining the backlog)
    assert s["latency_ms"]["p99"] < 3000         # generous: a loaded machine drains the backlog slowly
    assert s["service_ms"]["p99"] < 0.5 * s["latency_ms"]["p99"]


def test_kserve_v2_and_two_workers_merge_exactly(demo, tmp_path):
    db = tmp_path / "r.duckdb"
    s = run(cfg(demo.url, db, protocol="kserve-v2", workers=2,
                payload=PayloadSpec("normal", mean=100, sd=30)))
    assert s["ok"] == 200 and s["errors"] == {}
    con = duckdb.connect(str(db), read_only=True)
    seqs, workers = con.execute("SELECT list(seq ORDER BY seq), list(DISTINCT worker) FROM requests").fetchone()
    assert seqs == list(range(200)) and sorted(workers) == [0, 1]
    # worker k took every 2nd send of the one schedule
    assert con.execute("SELECT bool_and(seq % 2 = worker) FROM requests").fetchone()[0]


def test_openai_stream_gives_ttft_tpot_and_goodput(fake, tmp_path):
    s = run(cfg(fake.url, tmp_path / "r.duckdb", protocol="openai", slo={"ttft_ms": 500, "tpot_ms": 5},
                stages=[Stage("constant", duration_s=1.0, rate_rps=20.0)], payload=PayloadSpec("fixed", mean=7)))
    assert s["ok"] == 20, s["errors"]
    assert 55 <= s["ttft_ms"]["p50"] < 300                  # first token after 60 ms
    assert 13 <= s["tpot_ms"]["p50"] < 60                   # 15 ms between tokens
    assert s["output_tokens"] == 200 and s["output_tokens_per_s"] > 0
    assert s["goodput"]["good"] == 0                        # tpot 15 ms > 5 ms SLO
    assert s["ttft_intended_ms"]["n"] == 20 and s["ttft_intended_ms"]["p50"] >= s["ttft_ms"]["p50"]
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    # TTFT from the intended send is TTFT from the actual send plus the schedule lag, row by row.
    gap = con.execute("SELECT max(abs(ttft_intended_ms - ttft_ms - (sent_unix_s - intended_unix_s) * 1000)) "
                      "FROM requests").fetchone()[0]
    assert gap < 1e-3
    row = con.execute("SELECT min(prompt_tokens), min(output_tokens), min(itl_ms_max) FROM requests").fetchone()
    assert row[0] == 7 and row[1] == 10 and row[2] >= 13
    # ITL over every gap: 9 gaps per request of 10 tokens, each ~15 ms
    n_gaps, = con.execute("SELECT count(*) FROM token_gaps").fetchone()
    assert n_gaps == 20 * 9 and s["itl_ms"]["n"] == 180
    assert 12 <= s["itl_ms"]["p50"] < 60


@pytest.mark.parametrize("path,kind", [("/truncate", "truncated"), ("/status/503", "http_5xx"),
                                       ("/status/404", "http_4xx")])
def test_error_kinds(fake, tmp_path, path, kind):
    protocol = "openai" if path == "/truncate" else "http-json"
    s = run(cfg(fake.url + path, tmp_path / "r.duckdb", protocol=protocol,
                stages=[Stage("constant", duration_s=0.5, rate_rps=20.0)]))
    assert s["errors"] == {kind: 10} and s["ok"] == 0 and s["status"] == "failed"


def test_timeouts_and_target_dying_mid_run(fake, tmp_path):
    s = run(cfg(fake.url + "/slow", tmp_path / "a.duckdb", timeout_s=0.5,
                stages=[Stage("constant", duration_s=0.5, rate_rps=10.0)]))
    assert s["errors"] == {"timeout": 5}
    s = run(cfg(fake.url + "/die", tmp_path / "b.duckdb", stages=[Stage("constant", duration_s=2.0, rate_rps=50.0)]))
    assert s["status"] == "failed" and s["ok"] >= 30
    assert set(s["errors"]) <= {"connection_refused", "connection_reset", "truncated"}


def test_refused_connection_cli_exit_1(tmp_path):
    port = free_port()
    out = tmp_path / "s.json"
    res = subprocess.run(perfkit_cmd("bench", "--target", f"http://127.0.0.1:{port}", "--rate", "20",
                                     "--duration", "1", "--db", str(tmp_path / "r.duckdb"),
                                     "--summary-json", str(out), "--no-collect"),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "connection_refused" in res.stderr
    s = json.loads(out.read_text())
    assert s["status"] == "failed" and s["errors"] == {"connection_refused": 20}


def test_slo_p99_missed_exits_1(demo, tmp_path):
    res = subprocess.run(perfkit_cmd("bench", "--target", demo.url, "--rate", "20", "--duration", "1",
                                     "--db", str(tmp_path / "r.duckdb"), "--no-collect", "--slo-p99-ms", "0.001"),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "SLO missed" in res.stderr


def wait_started(proc: subprocess.Popen) -> str:
    """Read stderr until the run says its first request has left; what was read."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "started: first request sent" in line:
            return "".join(seen)
    raise AssertionError("the run never said it started: " + "".join(seen))


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_keeps_rows_and_finalizes(demo, tmp_path, sig, code):
    db, out = tmp_path / "r.duckdb", tmp_path / "s.json"
    proc = subprocess.Popen(perfkit_cmd("bench", "--target", demo.url, "--rate", "50", "--duration", "60",
                                        "--db", str(db), "--summary-json", str(out), "--no-collect"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    early = wait_started(proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, early + err
    assert "Traceback" not in early + err
    s = json.loads(out.read_text())
    assert s["status"] == "interrupted" and s["requests"] >= 1 and s["valid"] is False
    assert s["never_sent"] == s["scheduled"] - s["requests"] > 0
    assert s["signal"] == signal.Signals(sig).name
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == s["requests"]


@pytest.mark.parametrize("delay_s", [0.5, 1.0, 2.0])
def test_signal_at_any_moment_of_start_up(demo, tmp_path, delay_s):
    # Wherever start-up is when SIGINT lands (after Python itself has started and the command
    # line is parsed, ~0.2 s): no traceback, exit 130, and either no run at all (nothing was
    # sent) or one that is finalized as interrupted.
    db = tmp_path / "r.duckdb"
    proc = subprocess.Popen(perfkit_cmd("bench", "--target", demo.url, "--rate", "50", "--duration", "60",
                                        "--db", str(db), "--no-collect", "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in out + err, err
    if db.exists():  # the signal may land before, during or after the store's first migration
        con = duckdb.connect(str(db), read_only=True)
        has_runs = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'").fetchone()[0]
        statuses = {r[0] for r in con.execute("SELECT status FROM runs").fetchall()} if has_runs else set()
        assert statuses <= {"interrupted"}


def auth_path(authorization: str) -> str:
    """fake_target's endpoint that answers 200 only to this Authorization header."""
    return "/auth/" + hashlib.sha256(authorization.encode()).hexdigest()


def test_userinfo_is_sent_as_basic_auth_and_never_stored_or_printed(fake, tmp_path):
    user, password, apikey, qkey = "alice-SECRET-51", "pw-SECRET-77a", "key-SECRET-c0ffee", "q-SECRET-9e"
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    db, out = tmp_path / "r.duckdb", tmp_path / "s.json"
    url = f"http://{user}:{password}@127.0.0.1:{fake.port}{auth_path(basic)}?api_key={qkey}&n=1"
    # Live collection on: the scrape collector is handed the real URL and must not show it.
    res = subprocess.run(perfkit_cmd("bench", "--target", url, "--rate", "10", "--duration", "0.5", "--db", str(db),
                                     "--summary-json", str(out), "--header", f"Ocp-Apim-Subscription-Key: {apikey}",
                                     "--min-duration-s", "0.1"),
                         capture_output=True, text=True, timeout=120)
    s = json.loads(out.read_text())
    assert res.returncode == 0 and s["ok"] == 5, res.stderr  # 401 unless the Basic header was on the wire
    assert s["target"].startswith("http://***@127.0.0.1:") and "api_key=***" in s["target"]
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file()) + (res.stdout + res.stderr).encode()
    for secret in (user, password, apikey, qkey, basic):
        assert secret.encode() not in blobs
    # The same endpoint without the credentials refuses: the check above is not vacuous.
    s = run(cfg(f"{fake.url}{auth_path(basic)}", tmp_path / "b.duckdb",
                stages=[Stage("constant", duration_s=0.5, rate_rps=10.0)]))
    assert s["errors"] == {"http_4xx": 5}


def test_bearer_env_is_sent_and_never_stored(fake, tmp_path, monkeypatch):
    token = "tok-SECRET-8d3f1"
    monkeypatch.setenv("PK_TEST_TOKEN", token)
    db, out = tmp_path / "r.duckdb", tmp_path / "s.json"
    s = run(cfg(f"{fake.url}{auth_path('Bearer ' + token)}", db, bearer_env="PK_TEST_TOKEN", summary_json=str(out),
                headers=[("X-Auth", token)], stages=[Stage("constant", duration_s=0.5, rate_rps=10.0)]))
    assert s["ok"] == 5, s["errors"]
    assert token.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())


def test_sigint_during_a_long_gap_stops_promptly(demo, tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("0\n0.2\n120\n")  # the third send is two minutes away
    proc = subprocess.Popen(perfkit_cmd("bench", "--target", demo.url, "--pattern", "replay", "--trace", str(trace),
                                        "--db", str(tmp_path / "r.duckdb"), "--no-collect", "--quiet",
                                        "--summary-json", str(tmp_path / "s.json")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_started(proc)
    time.sleep(1)  # past the second send (0.2 s after the first), well before the third
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert time.monotonic() - t < 20  # not the two minutes of the gap
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["status"] == "interrupted" and s["requests"] == 2


def test_openai_stream_against_the_demo_llm(demo, tmp_path):
    s = run(cfg(demo.url, tmp_path / "r.duckdb", protocol="openai", max_tokens=8,
                stages=[Stage("constant", duration_s=1.0, rate_rps=3.0)], payload=PayloadSpec("fixed", mean=5)))
    assert s["ok"] == 3, s["errors"]
    assert s["ttft_ms"]["n"] == 3 and s["ttft_ms"]["p50"] > 0
    assert 0 < s["output_tokens"] <= 24 and s["tpot_ms"]["n"] >= 1
    assert s["ttft_ms"]["max"] <= s["latency_ms"]["max"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_target(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_target.py")), str(port),
                               str(cert), str(key)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = {**os.environ, "SSL_CERT_FILE": str(cert)}  # trust our certificate, verification stays on
        out = tmp_path / "s.json"
        deadline = time.monotonic() + 30
        while True:  # wait for the server's port
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "https test server did not start"
                time.sleep(0.1)
        res = subprocess.run(perfkit_cmd("bench", "--target", f"https://127.0.0.1:{port}/status/200", "--rate", "20",
                                         "--duration", "0.5", "--db", str(tmp_path / "r.duckdb"), "--no-collect",
                                         "--quiet", "--summary-json", str(out)),
                             capture_output=True, text=True, timeout=120, env=env)
        assert res.returncode == 0, res.stderr
        assert json.loads(out.read_text())["ok"] == 10
        # Without trusting it, the same run fails at connect (the certificate is checked).
        res = subprocess.run(perfkit_cmd("bench", "--target", f"https://127.0.0.1:{port}/status/200", "--rate", "20",
                                         "--duration", "0.5", "--db", str(tmp_path / "r2.duckdb"), "--no-collect",
                                         "--quiet", "--summary-json", str(out)),
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and json.loads(out.read_text())["errors"] == {"connect_error": 10}
    finally:
        server.terminate()
        server.wait(10)
