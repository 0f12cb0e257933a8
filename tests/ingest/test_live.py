"""Live collectors: NVML conversions on recorded readings, the no-GPU path, a real scrape."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from perfkit import store
from perfkit.ingest import nvml, scrape
from perfkit.ingest.live import LiveCollectors

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


def test_redact_url_hides_secrets():
    assert scrape.redact_url("http://u:pw@h:9/x?token=abc&a=1") == "http://u:***@h:9/x?token=***&a=1"
    assert scrape.metrics_url("http://h:8000/api/v1/infer") == "http://h:8000/metrics"
    assert scrape.metrics_url("http://h:8000/custom/metrics") == "http://h:8000/custom/metrics"


@pytest.mark.slow
def test_live_collectors_against_the_demo_server(demo_server, tmp_db, capfd):
    run_id = "live-test-run"
    url = f"http://user:s3cret@127.0.0.1:{demo_server.port}/api/v1/infer"
    live = LiveCollectors(run_id, url, target_pid=demo_server.pid, host_interval_s=0.2,
                          scrape_interval_s=0.3, nvml_interval_s=0.2)
    with store.connect(tmp_db) as con:
        live.start()
        body = json.dumps({"input_data": [[0.5] * 64]}).encode()
        for _ in range(20):
            req = urllib.request.Request(demo_server.url + "/api/v1/infer", data=body,
                                         headers={"Content-Type": "application/json"})
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
        assert "s3cret" not in kinds["scrape"][1] and "***" in kinds["scrape"][1]
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
    if "NVML unavailable" in err:
        assert sum("perfkit: no GPU telemetry" in ln for ln in err.splitlines()) == 1
    assert "s3cret" not in err


def test_unreachable_target_says_so_once_and_the_run_goes_on(tmp_db, capfd):
    from perfkit.ingest.promserver import free_port

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


def test_userinfo_becomes_basic_auth_and_leaves_the_url():
    import base64

    from perfkit.ingest.scrape import split_userinfo

    bare, headers = split_userinfo("http://me:p%40ss%3Aw@127.0.0.1:9090/metrics?x=1")
    assert bare == "http://127.0.0.1:9090/metrics?x=1"
    assert base64.b64decode(headers["Authorization"].split()[1]) == b"me:p@ss:w"
    assert split_userinfo("http://127.0.0.1:9090/metrics") == ("http://127.0.0.1:9090/metrics", {})
