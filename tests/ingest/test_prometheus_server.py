"""A real Prometheus scrapes the demo server during a real `perfkit bench` run; the series
pulled back through the HTTP API (in chunks) agree with what the bench sent."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from perfkit import store
from perfkit.cli import main
from perfkit.demo.launch import DemoServer
from perfkit.ingest import parse_duration, promapi
from perfkit.ingest.promserver import DEFAULT_BINARY, PrometheusServer, render_config

pytestmark = pytest.mark.slow


def test_render_config_groups_targets_by_path():
    text = render_config(["http://127.0.0.1:8000", "127.0.0.1:9000", "https://h:1/m"], 0.5)
    assert "scrape_interval: 500ms" in text
    assert "targets: ['127.0.0.1:8000', '127.0.0.1:9000']" in text
    assert "metrics_path: /m" in text and "scheme: https" in text


def test_render_config_puts_credentials_in_basic_auth_only():
    text = render_config(["http://al%40ice:p%22w@127.0.0.1:8000", "http://TOK@127.0.0.1:8001/m"], 1)
    assert 'username: "al@ice"' in text and 'password: "p\\"w"' in text
    assert 'username: "TOK"' in text and 'password: ""' in text
    assert "@127.0.0.1" not in text and "targets: ['127.0.0.1:8001']" in text


def _need_prometheus() -> None:
    if not PrometheusServer.available():
        message = f"{DEFAULT_BINARY} not installed (apt-get install -y prometheus); .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_prometheus_scrapes_a_token_protected_target():
    """The demo server answers 401 without its token: "up" proves Prometheus sent it."""
    _need_prometheus()
    token, var = "pr0m-T0KEN", "PERFKIT_TEST_DEMO_TOKEN"
    with DemoServer(require_token_env=var, env={**os.environ, var: token}, llm_hidden=64) as demo, \
            PrometheusServer([f"http://{token}@127.0.0.1:{demo.port}"], scrape_interval_s=0.5) as prom:
        assert prom.config_path is not None
        assert stat.S_IMODE(prom.config_path.stat().st_mode) == 0o600
        targets = prom.wait_for_targets(timeout_s=30)
        assert prom.shown_targets == [f"http://***@127.0.0.1:{demo.port}"]
    assert token not in json.dumps(targets)


def test_chunks_respect_the_11000_point_limit():
    parts = promapi.chunks(0.0, 30.0, 0.001)
    assert len(parts) == 3
    for s, e in parts:
        assert round((e - s) / 0.001) + 1 <= 11_000
    assert parts[1][0] == pytest.approx(parts[0][1] + 0.001)  # no point fetched twice
    assert parts[-1][1] == 30.0
    assert parse_duration("1m30s") == 90 and parse_duration("250ms") == 0.25


def test_bench_scraped_by_prometheus_matches_what_was_sent(demo_server, tmp_db, tmp_path, capsys):
    _need_prometheus()
    with PrometheusServer([demo_server.url], scrape_interval_s=0.5) as prom:
        prom.wait_for_targets(timeout_s=30)
        t_start = time.time()
        summary_path = tmp_path / "summary.json"
        bench = subprocess.run(
            [sys.executable, "-m", "perfkit", "bench", "--target", demo_server.url, "--rate", "25",
             "--duration", "3", "--db", str(tmp_db), "--summary-json", str(summary_path), "--quiet"],
            capture_output=True, text=True, timeout=120)
        assert bench.returncode in (0, 1), bench.stderr[-2000:]
        summary = json.loads(summary_path.read_text())
        time.sleep(2.0)  # let Prometheus scrape the final counts
        t_end = time.time()
        query = 'sum(perfkit_demo_requests_total{endpoint="/api/v1/infer"})'
        assert main(["prometheus", "--url", prom.url, "--query", query,
                     "--start", repr(t_end - 12.5), "--end", repr(t_end), "--step", "0.001",
                     "--db", str(tmp_db), "--label", "integration"]) == 0
        out = capsys.readouterr().out
        assert "from 2 request(s)" in out  # 12,501 points > 11,000: two chunks
        # credentials in --url are sent as Basic auth and never stored or printed
        cred_url = prom.url.replace("http://", "http://me:hunter2@")
        assert main(["prometheus", "--url", cred_url, "--query", "up", "--start", repr(t_end - 5),
                     "--end", repr(t_end), "--step", "1", "--db", str(tmp_db)]) == 0
        shown = capsys.readouterr()
        assert "hunter2" not in shown.out + shown.err and "http://***@" in shown.out
        # bad PromQL: Prometheus' own message, exit 2
        assert main(["prometheus", "--url", prom.url, "--query", "rate(x[", "--db", str(tmp_db)]) == 2
        assert "bad_data" in capsys.readouterr().err
    with store.connect(tmp_db) as con:
        (n, n_ts, top), = con.execute(
            "SELECT count(*), count(DISTINCT ts_unix_s), max(value) FROM telemetry "
            "WHERE source_kind = 'prom-range' AND source_id = (SELECT min(source_id) FROM sources "
            "WHERE kind = 'prom-range')").fetchall()
        src = con.execute("SELECT path, row_count, label FROM sources WHERE kind = 'prom-range' "
                          "ORDER BY source_id").fetchall()
        assert not con.execute("SELECT count(*) FROM sources WHERE path LIKE '%hunter2%'").fetchall()[0][0]
    assert n == n_ts > 1000  # one series, no timestamp twice across the chunk boundary
    assert summary["requests"] > 50 and not summary.get("errors")
    assert top == summary["requests"]  # the server counted exactly what the bench sent
    assert src[0][1] == n and src[0][2] == "integration" and "query_range" in src[0][0]
    assert t_start < t_end
