"""The store as Parquet: export, read back through ``store.connect``, schema version, re-export."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from factories import make_run

from perfkit import store
from perfkit.store import parquet, runs, write

RUN_A = "20261125T030000Z-abc123"
RUN_B = "odd/run id=ü"  # path-hostile characters must survive the partition folder name


def _fill(db: Path) -> None:
    """A store with rows in every table, NULLs and NaNs included."""
    con = store.connect(db)
    with store.transaction(con):
        make_run(con, RUN_A, labels={"suite": "t", "case": "a"}, summary={"format_version": 1, "p99_ms": 9.5},
                 started_at="2026-11-25 03:00:00+00", t0_unix_s=1_795_000_000.0, duration_s=2.0)
        make_run(con, RUN_B, labels={"case": "b"}, started_at=None, t0_unix_s=None)
        n = 50
        t = 1_795_000_000.0 + np.arange(n) * 0.04
        write.insert_requests(con, RUN_A, pa.table({
            "seq": np.arange(n), "worker": np.zeros(n, dtype=np.int32), "intended_unix_s": t,
            "sent_unix_s": t + 0.001, "done_unix_s": t + 0.01, "latency_ms": np.linspace(1, 50, n),
            "status_code": np.where(np.arange(n) % 7 == 0, 503, 200).astype(np.int32),
            "error_kind": [("http_5xx" if i % 7 == 0 else None) for i in range(n)],
            "ttft_ms": np.where(np.arange(n) % 3 == 0, np.nan, 2.0),
            "phase": [("warmup" if i < 5 else "measure") for i in range(n)]}))
        write.insert_requests(con, RUN_B, pa.table({"seq": [0, 1], "intended_unix_s": [None, 5.0]}))
        write.insert_token_gaps(con, RUN_A, pa.table({"seq": [1, 1, 2], "gap_ms": [3.0, 4.5, 2.25]}))
        series = pl.DataFrame({"key": [0, 1], "name": ["gpu_power_watts", "queue_depth"],
                               "labels": ['{"gpu": "0"}', None], "unit": ["W", "count"],
                               "type": ["gauge", "gauge"]})
        samples = pl.DataFrame({"key": [0, 0, 1, 1], "ts_unix_s": [1_795_000_000.0, 1_795_000_001.0, None, 3.0],
                                "value": [100.0, 120.5, 3.0, float("nan")]})
        write.write_source(con, series, samples, kind="prometheus", path="m.prom", sha256="ab",
                           run_id=RUN_A, label=None)
        con.execute("INSERT INTO trend_acknowledgements VALUES ('c1', 'a', 'p99_ms', ?, 'me', now(), 'known')",
                    [RUN_A])
    con.close()


@pytest.fixture
def filled_db(tmp_path: Path) -> Path:
    db = tmp_path / "store.duckdb"
    _fill(db)
    return db


def _export(db: Path, out: Path) -> parquet.ExportResult:
    with store.connect(db, read_only=True) as con:
        return parquet.export_parquet(con, out)


def _table(con, table: str) -> pd.DataFrame:
    frame = con.execute(f"SELECT * FROM {table}").df()
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_every_store_table_is_exported():
    with store.connect(":memory:") as con:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()}
    assert tables - {"schema_migrations"} == set(parquet.TABLES)


def test_every_table_round_trips_row_for_row(filled_db, tmp_path):
    out = tmp_path / "export"
    result = _export(filled_db, out)
    assert all(result.rows[t] > 0 for t in parquet.TABLES), result.rows
    with store.connect(filled_db, read_only=True) as src, store.connect(out, read_only=True) as back:
        for table in [*parquet.TABLES, "telemetry", "run_telemetry"]:
            want, got = _table(src, table), _table(back, table)
            assert list(got.columns) == list(want.columns), table
            assert [str(t) for t in got.dtypes] == [str(t) for t in want.dtypes], table
            pd.testing.assert_frame_equal(got, want, check_exact=True, obj=table)
        # the readers see the same numbers
        assert runs.percentiles(back, RUN_A, "latency_ms", [0.5, 0.99]) == \
            runs.percentiles(src, RUN_A, "latency_ms", [0.5, 0.99])
        assert runs.get_run(back, RUN_B)["labels"] == {"case": "b"}


def test_partitions_by_day_and_run_with_the_schema_version_in_each_file(filled_db, tmp_path):
    out = tmp_path / "export"
    _export(filled_db, out)
    assert (out / "runs" / "day=2026-11-25").is_dir()
    assert (out / "runs" / "day=1970-01-01").is_dir()  # a run without any start time
    assert len(list((out / "requests").glob("day=*/run_id=*/*.parquet"))) == 2
    assert list((out / "samples").glob("day=*/*.parquet"))
    files = list(out.rglob("*.parquet"))
    latest = str(store.migrations()[-1].version)
    for f in files:
        meta = pq.read_metadata(f).metadata
        assert meta[parquet.SCHEMA_KEY.encode()] == latest.encode(), f
        assert meta[parquet.TABLE_KEY.encode()].decode() == f.relative_to(out).parts[0]


def test_a_wrong_schema_version_is_refused_clearly(filled_db, tmp_path):
    out = tmp_path / "export"
    _export(filled_db, out)
    victim = next((out / "requests").rglob("*.parquet"))
    table = pq.read_table(victim)
    meta = {**table.schema.metadata, parquet.SCHEMA_KEY.encode(): b"3"}
    pq.write_table(table.replace_schema_metadata(meta), victim)
    with pytest.raises(store.StoreError, match="schema version 3, this perfkit reads version"):
        store.connect(out, read_only=True)


def test_files_without_the_version_and_empty_folders_are_not_an_export(tmp_path):
    stray = tmp_path / "stray" / "runs"
    stray.mkdir(parents=True)
    pq.write_table(pa.table({"run_id": ["x"]}), stray / "x.parquet")
    with pytest.raises(store.StoreError, match="not a perfkit export"):
        store.connect(tmp_path / "stray", read_only=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(store.StoreError, match="no perfkit Parquet export"):
        store.connect(tmp_path / "empty", read_only=True)


def test_an_export_opens_read_only(filled_db, tmp_path):
    out = tmp_path / "export"
    _export(filled_db, out)
    with pytest.raises(store.StoreError, match="read-only"):
        store.connect(out)


def test_exporting_again_replaces_partitions_without_duplicating(filled_db, tmp_path):
    out = tmp_path / "export"
    _export(filled_db, out)
    n_files = len(list(out.rglob("*.parquet")))
    # RUN_B gets a start time: its partition moves to another day, the old one must go
    with store.connect(filled_db) as con:
        con.execute("UPDATE runs SET started_at = TIMESTAMPTZ '2026-12-01 10:00:00+00' WHERE run_id = ?", [RUN_B])
    _export(filled_db, out)
    assert len(list(out.rglob("*.parquet"))) == n_files
    assert not list(out.glob(".perfkit-export-*"))
    with store.connect(filled_db, read_only=True) as src, store.connect(out, read_only=True) as back:
        for table in parquet.TABLES:
            pd.testing.assert_frame_equal(_table(back, table), _table(src, table), obj=table)
    # another store's run lands next to these, and both are read
    other = tmp_path / "other.duckdb"
    with store.connect(other) as con:
        make_run(con, "other-run", started_at="2026-11-25 05:00:00+00")
    _export(other, out)
    with store.connect(out, read_only=True) as back:
        ids = sorted(r[0] for r in back.execute("SELECT run_id FROM runs").fetchall())
    assert ids == sorted([RUN_A, RUN_B, "other-run"])


def test_an_fsspec_url_is_read_through_the_registered_filesystem(filled_db, tmp_path):
    out = tmp_path / "export"
    _export(filled_db, out)
    mem = fsspec.filesystem("memory")
    for f in out.rglob("*.parquet"):
        mem.pipe(f"/pk-export/{f.relative_to(out).as_posix()}", f.read_bytes())
    try:
        with store.connect("parquet:memory://pk-export", read_only=True) as con, \
                store.connect(filled_db, read_only=True) as src:
            pd.testing.assert_frame_equal(_table(con, "requests"), _table(src, "requests"))
    finally:
        mem.rm("/pk-export", recursive=True)


def test_perfkit_export_and_runs_from_the_command_line(filled_db, tmp_path):
    out = tmp_path / "export"
    cmd = [sys.executable, "-m", "perfkit"]
    done = subprocess.run([*cmd, "export", "--parquet", str(out), "--db", str(filled_db)],
                          capture_output=True, text=True, check=True)
    assert "requests" in done.stdout and "52 rows" in done.stdout
    listed = subprocess.run([*cmd, "runs", "--db", str(out)], capture_output=True, text=True, check=True)
    assert RUN_A in listed.stdout
    again = subprocess.run([*cmd, "export", "--parquet", str(tmp_path / "x"), "--db", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "already a Parquet export" in again.stderr



@pytest.mark.slow
def test_notebooks_read_an_export_with_identical_report_figures(tmp_path):
    """Notebooks 01 and 03 rendered against a store and against its Parquet export: the same
    headline figures and conclusions (what the report index shows)."""
    from report_runs import write_run

    from perfkit.report.render import ReportJob, execute_report, resolve_notebook

    db = tmp_path / "suite.duckdb"
    first = write_run(db)["run_id"]
    second = write_run(db, run_id="20261125T040000Z-def456", labels={"suite": "t", "case": "other"}, seed=8)["run_id"]
    out = tmp_path / "export"
    _export(db, out)
    jobs = [("01_benchmark", {"run_id": first}), ("01_benchmark", {"run_id": second}),
            ("03_root_cause", {"run_ids": f"{first},{second}"})]
    for notebook, params in jobs:
        shown = []
        for source in (db, out):
            rec = execute_report(ReportJob(notebook=resolve_notebook(notebook), name=notebook, parameters=params),
                                 tmp_path / f"rendered-{source.stem}", db=str(source))
            assert rec.ok, (notebook, source, rec.error)
            assert rec.headlines and rec.headlines[0]["figures"], notebook
            shown.append((rec.headlines, rec.conclusions))
        assert shown[0] == shown[1], notebook
