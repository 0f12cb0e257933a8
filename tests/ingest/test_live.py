"""Live collectors: NVML conversions on recorded readings, the no-GPU path, real scrapes.

The scraped servers answer 401 unless the request carries the token, so a
passing scrape proves the credentials were sent (and the stored/printed URL
proves they were not written down).
"""
from __future__ import annotations

import http.server
import json
import os
import threading
import time
import urllib.request
from typing import Iterator

import pytest

from perfkit import store
from perfkit.demo.auth import authorized
from perfkit.ingest import nvml, scrape
from perfkit.ingest.live import LiveCollectors
from perfkit.subprocesses import free_port

TOKEN = "s3cret-T0KEN"
EXPOSITION = b"# TYPE up gauge\nup 1\n"

# A reading as NVML returns it on an H100 SXM (values recorded from nvidia-smi -q / NVML
# docs' units): utilization %, memory bytes, power mW, energy mJ, clocks MHz, PCIe KB/s.
H100 = nvml.GpuIdentity(0, "GPU-5f3c8a51-0000-1111-2222-333344445555", "NVIDIA H100 80GB HBM3")
RAW = {"utilization_gpu_percent": 97, "utilization_memory_percent": 41,
       "memory_used_bytes": 68_719_476_736, "memory_total_bytes": 85_520_809_984,
       "power_mw": 612_345, "total_energy_mj": 1_234_567_890, "clock_sm_mhz": 1980,
       "clock_mem_mhz": 2619, "pcie_tx_kbps": 250_000, "pcie_rx_kbps": 1_000_000,
       "temperature_c": 61}


def test_nvml_conversion_units():
    rows = {r[0]: r for r in nvml.convert(H100, RAW, 1732400000.0)}
    assert rows["gpu_power_w"][5] == pytest.approx(612.345) and rows["gpu_power_w"][2] == "W"
    assert rows["gpu_energy_j"][5] == pytest.approx(1_234_567.89) and rows["gpu_energy_j"][3] == "counter"
    assert rows["gpu_pcie_rx_bytes_per_s"][5] == 1_024_000_000
    assert rows["gpu_pcie_tx_bytes_per_s"][2] == "bytes/s"
    assert rows["gpu_memory_used_bytes"][5] == 68_719_476_736
    assert rows["gpu_utilization_percent"][5] == 97 and rows["gpu_sm_clock_mhz"][5] == 1980
    assert rows["gpu_temperature_c"][2] == "celsius"
    assert rows["gpu_power_w"][1] == {"gpu": "0", "uuid": H100.uuid, "model": H100.model}
    assert all(r[4] == 1732400000.0 for r in rows.values())


def test_nvml_unsupported_fields_are_left_out():
    rows = nvml.convert(H100, {"power_mw": 50_000, "total_energy_mj": None}, 1.0)
    assert [r[0] for r in rows] == ["gpu_power_w"]


def test_nvml_unavailable_is_one_clear_exception():
    try:
        reader = nvml.NvmlReader()
    except nvml.NvmlUnavailable as exc:
        assert str(exc) and "\n" not in str(exc)
    else:  # a GPU machine: the reading must carry the documented fields
        try:
            (ident, raw), *_ = reader.read()
            assert "memory_total_bytes" in raw and ident.uuid
        finally:
            reader.close()


def test_metrics_url_keeps_the_credentials_in_memory():
    assert scrape.metrics_url("http://h:8000/api/v1/infer") == "http://h:8000/metrics"
    assert scrape.metrics_url("http://h:8000/custom/metrics") == "http://h:8000/custom/metrics"
    assert scrape.metrics_url("http://u:pw@h:8000/x?token=t") == "http://u:pw@h:8000/metrics"


class _GuardedMetrics(http.server.BaseHTTPRequestHandler):
    """/metrics for requests that carry TOKEN (Bearer or Basic), 401 for the others."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        if not authorized(self.headers.get("Authorization"), TOKEN):
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(EXPOSITION)))
        self.end_headers()
        self.wfile.write(EXPOSITION)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def guarded_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GuardedMetrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("userinfo, headers", [
    (f"user:{TOKEN}@", None),                                # Basic, token as password
    (f"{TOKEN}@", None),                                     # a bare token as user
    ("", {"Authorization": f"Bearer {TOKEN}"}),              # the run's own header
    ("user:wrong@", {"Authorization": f"Bearer {TOKEN}"}),  # the header wins over user-info
])
def test_scrape_sends_the_real_credentials_and_stores_them_redacted(
        guarded_port, tmp_db, capfd, userinfo, headers):
    live = LiveCollectors("r", f"http://{userinfo}127.0.0.1:{guarded_port}/api/v1/infer",
                          headers=headers, scrape_interval_s=0.1, host_interval_s=5)
    live.start()
    time.sleep(0.5)
    live.stop()
    with store.connect(tmp_db) as con:
        live.write(con)
        (path,), = con.execute("SELECT path FROM sources WHERE kind = 'scrape'").fetchall()
        up = con.execute("SELECT count(*), min(value) FROM telemetry WHERE name = 'up'").fetchall()[0]
    assert up[0] >= 1 and up[1] == 1.0  # the guarded server answered: the token was sent
    assert path == (f"http://***@127.0.0.1:{guarded_port}/metrics" if userinfo
                    else f"http://127.0.0.1:{guarded_port}/metrics")
    err = capfd.readouterr().err
    assert "cannot scrape" not in err and TOKEN not in err


def test_wrong_credentials_are_said_once_with_the_redacted_url(guarded_port, tmp_db, capfd):
    live = LiveCollectors("r", f"http://user:not-{TOKEN}@127.0.0.1:{guarded_port}",
                          scrape_interval_s=0.1, host_interval_s=5)
    live.start()
    time.sleep(0.4)
    live.stop()
    err = capfd.readouterr().err
    said = [ln for ln in err.splitlines() if "cannot scrape" in ln]
    assert len(said) == 1 and TOKEN not in err
    assert f"cannot scrape http://***@127.0.0.1:{guarded_port}/metrics (HTTP 401)" in said[0]


DEMO_TOKEN_ENV = "PERFKIT_TEST_DEMO_TOKEN"


@pytest.mark.slow
@pytest.mark.parametrize("demo_server", [
    {"require_token_env": DEMO_TOKEN_ENV, "env": {**os.environ, DEMO_TOKEN_ENV: TOKEN}}],
    indirect=True)
def test_live_collectors_against_the_demo_server(demo_server, tmp_db, capfd):
    run_id = "live-test-run"
    # the real URL, as the bench hands it over: the demo server wants the token on /metrics too
    url = f"http://user:{TOKEN}@127.0.0.1:{demo_server.port}/api/v1/infer"
    live = LiveCollectors(run_id, url, target_pid=demo_server.pid, host_interval_s=0.2,
                          scrape_interval_s=0.3, nvml_interval_s=0.2)
    with store.connect(tmp_db) as con:
        live.start()
        body = json.dumps({"input_data": [[0.5] * 64]}).encode()
        for _ in range(20):
            req = urllib.request.Request(demo_server.url + "/api/v1/infer", data=body,
                                         headers={"Content-Type": "application/json",
                                                  **demo_server.auth_headers})
            urllib.request.urlopen(req, timeout=10).read()
        time.sleep(1.0)
        first = live.write(con)
        time.sleep(0.7)
        live.stop()
        second = live.write(con)
        assert first > 0 and second > 0
        assert live.write(con) == 0  # nothing new
        sources = con.execute("SELECT kind, path, run_id, row_count FROM sources ORDER BY kind").fetchall()
        kinds = {s[0]: s for s in sources}
        assert {"host", "scrape"} <= set(kinds)
        assert all(s[2] == run_id for s in sources)
        assert TOKEN not in kinds["scrape"][1] and "***" in kinds["scrape"][1]
        total = con.execute("SELECT count(*) FROM samples").fetchall()[0][0]
        assert total == first + second == sum(s[3] for s in sources)
        # series are created once and reused by the second write
        dup = con.execute("SELECT count(*) FROM (SELECT name, CAST(labels AS VARCHAR), source_id "
                          "FROM series GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
        assert dup == 0
        served = con.execute(
            "SELECT max(value) FROM telemetry WHERE name = 'perfkit_demo_requests_total' "
            "AND json_extract_string(labels, '$.endpoint') = '/api/v1/infer'").fetchall()[0][0]
        assert served == 20
        rss = con.execute("SELECT count(*), min(value) FROM telemetry "
                          "WHERE name = 'process_memory_rss_bytes'").fetchall()[0]
        assert rss[0] >= 2 and rss[1] > 1e6
    err = capfd.readouterr().err
    assert "NVML" not in err and "GPU telemetry" not in err  # no GPU is normal: a debug log line only
    assert TOKEN not in err and "cannot scrape" not in err


def test_unreachable_target_says_so_once_and_the_run_goes_on(tmp_db, capfd):
    live = LiveCollectors("r", f"http://127.0.0.1:{free_port()}", scrape_interval_s=0.1,
                          host_interval_s=0.1)
    live.start()
    time.sleep(0.6)
    live.stop()
    with store.connect(tmp_db) as con:
        assert live.write(con) > 0  # host telemetry still recorded
        assert con.execute("SELECT count(*) FROM sources WHERE kind = 'scrape'").fetchall()[0][0] == 0
    err = capfd.readouterr().err
    assert sum("cannot scrape" in ln for ln in err.splitlines()) == 1



def test_metrics_urls_are_scraped_instead_of_the_target_each_with_its_credentials(guarded_port, tmp_db, capfd):
    # the target is a closed port: only the metrics URLs are scraped; the first sends its own
    # user-info, the second (no user-info) the run's header; both land as their own source
    own = f"http://user:{TOKEN}@127.0.0.1:{guarded_port}/metrics"
    by_header = f"http://localhost:{guarded_port}/metrics?token=x"
    live = LiveCollectors("r", f"http://127.0.0.1:{free_port()}/infer",
                          headers={"Authorization": f"Bearer {TOKEN}"}, metrics_urls=[own, by_header],
                          scrape_interval_s=0.1, host_interval_s=5)
    assert live.scrapes_shown == [f"http://***@127.0.0.1:{guarded_port}/metrics",
                                  f"http://localhost:{guarded_port}/metrics?token=***"]
    live.start()
    time.sleep(0.5)
    live.stop()
    with store.connect(tmp_db) as con:
        live.write(con)
        stored = con.execute(
            "SELECT src.path, count(*), min(x.value) FROM sources src JOIN series s USING (source_id) "
            "JOIN samples x USING (series_id) WHERE src.kind = 'scrape' AND s.name = 'up' "
            "GROUP BY src.path ORDER BY src.path").fetchall()
    assert [row[0] for row in stored] == sorted(live.scrapes_shown)
    assert all(n >= 1 and v == 1.0 for _, n, v in stored)
    err = capfd.readouterr().err
    assert "cannot scrape" not in err and TOKEN not in err


def test_a_metrics_url_with_wrong_user_info_does_not_fall_back_to_the_run_header(guarded_port, tmp_db, capfd):
    live = LiveCollectors("r", None, headers={"Authorization": f"Bearer {TOKEN}"},
                          metrics_urls=[f"http://user:not-{TOKEN}@127.0.0.1:{guarded_port}/metrics"],
                          scrape_interval_s=0.1, host_interval_s=5)
    live.start()
    time.sleep(0.4)
    live.stop()
    with store.connect(tmp_db) as con:
        live.write(con)
        assert con.execute("SELECT count(*) FROM sources WHERE kind = 'scrape'").fetchall()[0][0] == 0
    said = [ln for ln in capfd.readouterr().err.splitlines() if "cannot scrape" in ln]
    assert len(said) == 1 and TOKEN not in said[0]
    assert f"cannot scrape http://***@127.0.0.1:{guarded_port}/metrics (HTTP 401)" in said[0]
