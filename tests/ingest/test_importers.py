"""`perfkit ingest KIND PATH...` on real files: units, labels, runs, no-op re-ingest, bad input."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from perfkit import store
from perfkit.cli import main
from perfkit.ingest import dcgm, nvsmi, promrange

DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"
DCGM = DATA.parent / "analyze" / "dcgm-exporter_T4_A10G_datadog-fixture.txt"  # the one copy
NVSMI = DATA / "nvidia-smi_query_aau_2020.csv"
LOCUST = sorted((DATA / "locust").glob("demo_*.csv"))
MLPERF = sorted((DATA / "mlperf").glob("*/mlperf_log_*.txt"))


def counts(db: Path) -> tuple[int, int, int, int]:
    with store.connect(db) as con:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                     for t in ("sources", "series", "samples", "runs"))


def rows(db: Path, sql: str, params=()):
    with store.connect(db) as con:
        return con.execute(sql, list(params)).fetchall()


def test_prometheus_files_then_reingest_is_a_noop(tmp_db, capsys):
    files = [str(DATA / n) for n in ("shared_node_exporter_e2e-output.txt",
                                     "shared_prometheus_1histogram.om.txt")]
    assert main(["ingest", "prometheus", *files, "--db", str(tmp_db), "--label", "host=a"]) == 0
    out = capsys.readouterr().out
    assert "3,027 samples" in out and "42 samples" in out
    first = counts(tmp_db)
    assert first[:3] == (2, 3027 + 42, 3027 + 42)
    assert main(["ingest", "prometheus", files[0], "--db", str(tmp_db)]) == 0
    line = capsys.readouterr().out.strip()
    assert "already ingested" in line and "\n" not in line
    assert counts(tmp_db) == first
    src = rows(tmp_db, "SELECT kind, sha256, row_count, label FROM sources ORDER BY source_id")
    assert src[0][0] == "prometheus" and len(src[0][1]) == 64 and src[0][2] == 3027
    assert src[0][3] == "host=a"


def test_samples_without_timestamp_get_at_time_and_explicit_ones_are_kept(tmp_db):
    path = DATA / "shared_node_exporter_client_side_timestamp.prom"
    assert main(["ingest", "prometheus", str(path), "--db", str(tmp_db),
                 "--at", "2024-11-23T22:13:20Z"]) == 0
    got = dict(rows(tmp_db, "SELECT name, ts_unix_s FROM telemetry"))
    assert got["metric_with_custom_timestamp"] == 1441205977.284
    assert got["normal_metric"] == 1732400000.0


@pytest.mark.parametrize("kind, text, line", [
    ("prometheus", "ok 1\nok2{a=\"x\"} 2\nbroken{a=} 3\n", 3),
    ("nvidia-smi", "index, timestamp, utilization.gpu [%]\n0, 2020/11/12 13:48:11.412, 99 %\n"
                   "0, 2020/11/12 13:48:16.415\n", 3),
    ("dcgm", "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 5\nDCGM_FI_DEV_GPU_UTIL{gpu=\"1\"} five\n", 2),
])
def test_bad_file_exit_2_one_line_database_unchanged(tmp_db, tmp_path, capsys, kind, text, line):
    main(["ingest", "prometheus", str(DATA / "shared_node_exporter_textfile_histogram.prom"),
          "--db", str(tmp_db)])
    before = counts(tmp_db)
    capsys.readouterr()
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    assert main(["ingest", kind, str(bad), "--db", str(tmp_db)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"perfkit ingest: {bad}:{line}: ") and "\n" not in err
    assert "Traceback" not in err
    assert counts(tmp_db) == before


def test_missing_file_and_unknown_run_are_usage_errors(tmp_db, tmp_path, capsys):
    assert main(["ingest", "prometheus", str(tmp_path / "nope.prom"), "--db", str(tmp_db)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["ingest", "prometheus", str(DATA / "shared_node_exporter_textfile_histogram.prom"),
                 "--db", str(tmp_db), "--run", "no-such-run"]) == 2
    assert "no such run" in capsys.readouterr().err
    assert counts(tmp_db)[:3] == (0, 0, 0)


def test_dcgm_units_and_labels_normalized():
    tel = dcgm.read(DCGM.read_text(), str(DCGM), at_unix_s=1000.0)
    long = tel.long()
    by = {(r["name"], json.loads(r["labels"]).get("model")): r for r in long.iter_rows(named=True)}
    fb = by[("gpu_memory_free_bytes", "Tesla T4")]
    assert fb["value"] == 15109 * 1024 * 1024 and fb["unit"] == "bytes"
    energy = by[("gpu_energy_j", "Tesla T4")]
    assert energy["value"] == pytest.approx(128996013 / 1000) and energy["type"] == "counter"
    assert by[("gpu_power_w", "Tesla T4")]["value"] == pytest.approx(8.969)
    ratios = long.filter(long["unit"] == "ratio")
    assert ratios.height > 0 and ratios["value"].max() <= 1.0
    labels = [json.loads(s) for s in long["labels"].unique()]
    assert any("uuid" in d and "hostname" in d and "model" in d for d in labels)
    assert not any("UUID" in d or "modelName" in d or "Hostname" in d for d in labels)
    a10g = [d for d in labels if d.get("model") == "NVIDIA A10G"]
    assert a10g and all({"pod", "namespace", "container"} <= set(d) for d in a10g)
    assert (long["ts_unix_s"] == 1000.0).all()


def test_nvidia_smi_query_csv_real_file(tmp_db):
    tel = nvsmi.read(NVSMI.read_text(), str(NVSMI))
    assert tel.n_samples == 17 * 5
    long = tel.long()
    first = long.filter(long["name"] == "gpu_memory_used_bytes").sort("ts_unix_s").row(0, named=True)
    assert first["value"] == 30994 * 1024 * 1024 and first["unit"] == "bytes"
    assert first["ts_unix_s"] == pytest.approx(1605188891.412)  # 2020-11-12 13:48:11.412 UTC
    util = long.filter(long["name"] == "gpu_utilization_percent").sort("ts_unix_s")["value"].to_list()
    assert util[:3] == [99.0, 99.0, 99.0] and util[5] == 32.0
    assert main(["ingest", "nvidia-smi", str(NVSMI), "--db", str(tmp_db)]) == 0
    assert counts(tmp_db)[2] == 85


def test_nvidia_smi_na_not_supported_and_renamed_fields():
    text = ("timestamp, name, index, power.draw [W], clocks_event_reasons.active, pstate, "
            "memory.used [MiB], temperature.gpu\n"
            "2024/03/01 10:00:00.001, NVIDIA H100 80GB HBM3, 0, 312.45, 0x0000000000000004, P0, 1024, 45\n"
            "2024/03/01 10:00:01.002, NVIDIA H100 80GB HBM3, 0, [N/A], [Not Supported], P2, 1030, 46\n")
    long = nvsmi.read(text, "x.csv").long()
    power = long.filter(long["name"] == "gpu_power_w")
    assert power.height == 1 and power["value"][0] == 312.45
    assert long.filter(long["name"] == "gpu_clock_event_reasons")["value"].to_list() == [4.0]
    assert sorted(long.filter(long["name"] == "gpu_pstate")["value"].to_list()) == [0.0, 2.0]
    assert json.loads(long["labels"][0]) == {"model": "NVIDIA H100 80GB HBM3", "gpu": "0"}


def test_nvidia_smi_dmon():
    text = (DATA / "nvidia-smi_dmon_sample.txt").read_text()
    long = nvsmi.read(text, "dmon.txt", at_unix_s=100.0).long()
    gpu1 = long.filter((long["name"] == "gpu_utilization_percent")
                       & (long["labels"] == '{"gpu":"1"}')).sort("ts_unix_s")
    assert gpu1["value"].to_list() == [87.0, 91.0] and gpu1["ts_unix_s"].to_list() == [100.0, 101.0]
    assert long.filter(long["name"] == "gpu_memory_temperature_c").height == 0  # '-' cells
    dated = ("# Date       Time        gpu    pwr  gtemp\n# YYYYMMDD   HH:MM:SS    Idx      W      C\n"
             " 20241123   22:13:20      0     43     48\n")
    row = nvsmi.read(dated, "d.txt").long().filter(pl_name("gpu_power_w")).row(0, named=True)
    assert row["ts_unix_s"] == 1732400000.0 and row["value"] == 43.0


def pl_name(name):
    import polars as pl

    return pl.col("name") == name


def test_locust_run_is_closed_loop_with_its_aggregates(tmp_db, capsys):
    assert main(["ingest", "locust", *map(str, LOCUST), "--db", str(tmp_db)]) == 0
    with store.connect(tmp_db) as con:
        run = store.get_run(con, "latest")
    assert run["tool"] == "locust" and run["protocol"] == "locust" and run["pattern"] == "closed"
    assert run["scenario"]["closed_loop"] is True
    summary = run["summary"]
    assert summary["requests"] == 141 and summary["ok"] == 126 and summary["closed_loop"] is True
    assert summary["latency_ms"]["p99"] == 25.0
    names = {r[0] for r in rows(tmp_db, "SELECT DISTINCT name FROM run_telemetry WHERE run_id = ?",
                                 [run["run_id"]])}
    assert {"locust_requests_per_s", "locust_response_time_ms", "locust_users",
            "locust_failures_by_error_total"} <= names
    assert main(["ingest", "locust", str(LOCUST[-1]), "--db", str(tmp_db)]) == 2
    assert "PREFIX_stats.csv" in capsys.readouterr().err


def test_mlperf_runs_from_real_loadgen_logs(tmp_db):
    assert main(["ingest", "mlperf", *map(str, MLPERF), "--db", str(tmp_db)]) == 0
    runs = {r[0]: r for r in rows(tmp_db, "SELECT pattern, tool, tool_version, summary FROM runs")}
    assert set(runs) == {"poisson", "scenario"}
    server = json.loads(runs["poisson"][3])
    assert runs["poisson"][1] == "mlperf" and runs["poisson"][2].startswith("6.0")
    assert server["mlperf_scenario"] == "Server" and server["valid"] is False
    assert server["achieved_rate_rps"] == pytest.approx(194.482)
    assert server["latency_ms"]["p99"] == pytest.approx(5.186648)
    assert server["validity"]["early_stopping_met"] is False
    assert server["requests"] == 392
    offline = json.loads(runs["scenario"][3])
    assert offline["validity"]["min_duration_met"] is False


def test_mlperf_bad_detail_line(tmp_path, tmp_db, capsys):
    d = tmp_path / "r"
    d.mkdir()
    src = (DATA / "mlperf" / "server" / "mlperf_log_detail.txt").read_text().splitlines()
    src[4] = ':::MLLOG {"key": "broken", '
    (d / "mlperf_log_detail.txt").write_text("\n".join(src) + "\n")
    assert main(["ingest", "mlperf", str(d / "mlperf_log_detail.txt"), "--db", str(tmp_db)]) == 2
    assert "mlperf_log_detail.txt:5: bad MLLOG record" in capsys.readouterr().err
    assert counts(tmp_db) == (0, 0, 0, 0)


MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"__name__": "up", "job": "a\"]]b"},
     "values": [[1732400000.123, "1"], [1732400015.123, "NaN"], [1732400030, "+Inf"],
                [1732400045, "-Inf"]]},
    {"metric": {"job": "x"}, "values": []},
    {"metric": {"job": "y"}, "values": [[1, "2.5e-3"]]}]}, "warnings": ["w"]}


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_prom_range_matrix_streamed_in_any_chunking(chunk):
    data = json.dumps(MATRIX).encode()
    tel = promrange.batches_to_telemetry(promrange.iter_batches(io.BytesIO(data), "m.json",
                                                                chunk_bytes=chunk))
    assert tel.series["name"].to_list() == ["up", "prom_range_result", "prom_range_result"]
    assert json.loads(tel.series["labels"][0]) == {"job": 'a"]]b'}
    vals = tel.samples["value"].to_list()
    assert vals[0] == 1.0 and math.isnan(vals[1]) and vals[2] == math.inf and vals[3] == -math.inf
    assert tel.samples["ts_unix_s"].to_list() == [1732400000.123, 1732400015.123, 1732400030.0,
                                                  1732400045.0, 1.0]


def test_prom_range_vector_and_cli(tmp_db, tmp_path):
    vec = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "q", "a": "1"}, "value": [1.5, "3"]}]}}
    p = tmp_path / "v.json"
    p.write_text(json.dumps(vec))
    assert main(["ingest", "prom-range", str(p), "--db", str(tmp_db)]) == 0
    assert rows(tmp_db, "SELECT name, ts_unix_s, value FROM telemetry") == [("q", 1.5, 3.0)]


@pytest.mark.parametrize("body, problem", [
    (b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}',
     "status=error (bad_data): parse error at char 3"),
    (b"<html>nope</html>", "not a Prometheus API answer"),
    (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[1, "abc"]]}]}}).encode(), "bad sample"),
    (json.dumps(MATRIX).encode()[:-30], "truncated"),
])
def test_prom_range_errors(tmp_db, tmp_path, capsys, body, problem):
    p = tmp_path / "e.json"
    p.write_bytes(body)
    assert main(["ingest", "prom-range", str(p), "--db", str(tmp_db)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:1: " in err and problem in err and err.count("\n") == 1
    assert counts(tmp_db) == (0, 0, 0, 0)


def test_nvidia_smi_nounits_reads_the_same_as_with_units():
    text = NVSMI.read_text()
    header, *body = text.splitlines()
    nounits = "\n".join([header] + [line.replace(" %", "").replace(" MiB", "") for line in body])
    assert " MiB" not in nounits.split("\n", 1)[1]
    a = nvsmi.read(text, "units.csv").long().sort(["name", "ts_unix_s"])
    b = nvsmi.read(nounits, "nounits.csv").long().sort(["name", "ts_unix_s"])
    assert a.equals(b)


def test_series_ids_unique_without_an_index(tmp_db):
    """Migration 0006 drops series' PRIMARY KEY index: ids stay unique (one sequence)."""
    files = [str(DATA / n) for n in ("shared_node_exporter_e2e-output.txt",
                                     "shared_prometheus_1histogram.om.txt")]
    assert main(["ingest", "prometheus", *files, "--db", str(tmp_db)]) == 0
    assert main(["ingest", "dcgm", str(DCGM), "--db", str(tmp_db)]) == 0
    (n, distinct), = rows(tmp_db, "SELECT count(*), count(DISTINCT series_id) FROM series")
    assert n == distinct > 3027
    (typ,), = rows(tmp_db, "SELECT typeof(labels) FROM series LIMIT 1")
    assert typ == "JSON"
    # every stored labels value is valid JSON (written without a per-row CAST)
    assert rows(tmp_db, "SELECT count(*) FROM series WHERE NOT json_valid(labels)") == [(0,)]


def test_series_ids_block_and_gapped_sequence(tmp_db):
    """Ids are one block when the sequence hands out consecutive values, and still
    distinct and increasing when it does not (here: a sequence stepping by 3)."""
    from perfkit.store import write

    with store.connect(tmp_db) as con:
        first = write._series_ids(con, 1000)
        assert (first == range(int(first[0]), int(first[0]) + 1000)).all()
        con.execute("DROP SEQUENCE series_id_seq")
        con.execute("CREATE SEQUENCE series_id_seq START 5000 INCREMENT BY 3")
        gapped = write._series_ids(con, 10)
        assert len(set(gapped.tolist())) == 10 and (gapped[1:] > gapped[:-1]).all()
        assert gapped[0] >= 5000 and not set(gapped.tolist()) & set(first.tolist())


def test_migration_0006_keeps_existing_series(tmp_db):
    """A store written before 0006 (series with its PRIMARY KEY) keeps every row, id and
    JSON label through the migration; afterwards the index is gone and labels are zstd."""
    from factories import store_before

    con = store_before(tmp_db, 6)
    con.execute("INSERT INTO sources (source_id, kind) VALUES (1, 'prometheus')")
    con.execute("INSERT INTO series SELECT range + 10, 1, 'm' || (range % 3), "
                "json_object('i', range::VARCHAR), 'count', 'gauge' FROM range(3000)")
    con.execute("INSERT INTO samples SELECT range + 10, range, range * 0.5 FROM range(3000)")
    before = con.execute("SELECT * FROM series ORDER BY series_id").fetchall()
    assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'series' "
                       "AND constraint_type = 'PRIMARY KEY'").fetchall() == [(1,)]
    con.close()
    with store.connect(tmp_db) as con:  # applies 0006
        assert con.execute("SELECT * FROM series ORDER BY series_id").fetchall() == before
        assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'series' "
                           "AND constraint_type = 'PRIMARY KEY'").fetchall() == [(0,)]
        assert con.execute("SELECT count(*), sum(value) FROM telemetry").fetchall() == [
            (3000, sum(i * 0.5 for i in range(3000)))]
        assert con.execute("SELECT json_extract_string(labels, '$.i') FROM series "
                           "WHERE series_id = 2999").fetchall() == [("2989",)]
        con.execute("CHECKPOINT")
        comp = {r[0] for r in con.execute(
            "SELECT compression FROM pragma_storage_info('series') WHERE column_name = 'labels' "
            "AND segment_type <> 'VALIDITY'").fetchall()}
        assert "ZSTD" in comp
