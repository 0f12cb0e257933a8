"""The store: schema migration, refusal of newer databases, lock waiting, run lookup."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from perfkit import store
from perfkit.store import db as db_module
from perfkit.paths import db_path


def test_new_database_gets_every_migration(tmp_path):
    db = tmp_path / "p.duckdb"
    with store.connect(db) as con:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert versions == [m.version for m in store.migrations()]
    assert {"runs", "requests", "sources", "series", "samples"} <= tables


def test_reopen_is_idempotent_and_keeps_rows(tmp_path):
    db = tmp_path / "p.duckdb"
    with store.connect(db) as con:
        con.execute("INSERT INTO runs (run_id, label, status) VALUES ('r1', 'a=b', 'completed')")
    with store.connect(db) as con:
        assert store.migrate(con) == []
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_new_migration_is_applied_on_open_and_a_failing_one_rolls_back(tmp_path, monkeypatch):
    db = tmp_path / "p.duckdb"
    store.connect(db).close()
    shipped = store.migrations()
    extra = db_module.Migration(9000, "9000-extra.sql", "CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (1);")
    monkeypatch.setattr(db_module, "migrations", lambda: [*shipped, extra])
    with store.connect(db) as con:
        assert store.schema_version(con) == 9000
        assert con.execute("SELECT x FROM extra").fetchone()[0] == 1
    broken = db_module.Migration(9001, "9001-broken.sql", "CREATE TABLE half (x INTEGER); SELECT * FROM no_such_table;")
    monkeypatch.setattr(db_module, "migrations", lambda: [*shipped, extra, broken])
    with pytest.raises(duckdb.Error):
        store.connect(db)
    monkeypatch.setattr(db_module, "migrations", lambda: [*shipped, extra])
    with store.connect(db) as con:
        assert store.schema_version(con) == 9000
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert "half" not in tables


def test_database_from_a_newer_perfkit_is_refused(tmp_path):
    db = tmp_path / "p.duckdb"
    with store.connect(db) as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, '9999-future.sql')")
    with pytest.raises(store.StoreError, match="9999"):
        store.connect(db)


def test_read_only_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(store.StoreError, match="no such database"):
        store.connect(tmp_path / "absent.duckdb", read_only=True)


def test_env_variable_picks_the_database(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFKIT_DB", str(tmp_path / "env.duckdb"))
    assert db_path() == tmp_path / "env.duckdb"
    assert db_path(tmp_path / "flag.duckdb") == tmp_path / "flag.duckdb"


def test_transaction_rolls_back_everything_on_error(tmp_path):
    with store.connect(tmp_path / "p.duckdb") as con:
        with pytest.raises(RuntimeError):
            with store.transaction(con):
                con.execute("INSERT INTO runs (run_id) VALUES ('half')")
                raise RuntimeError("bad line")
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_second_writer_waits_for_the_lock(tmp_path):
    """Another process holding the file: we wait with a message, then get it."""
    db = tmp_path / "p.duckdb"
    store.connect(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time, duckdb
            con = duckdb.connect({str(db)!r})
            print("held", flush=True)
            time.sleep(1.5)
            con.close()
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        con = store.connect(db, wait_s=60)
        con.close()
    finally:
        holder.wait(timeout=30)


def test_lock_wait_gives_up_with_a_clear_error(tmp_path):
    db = tmp_path / "p.duckdb"
    store.connect(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import time, duckdb; c = duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(5)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(store.StoreError):
            store.connect(db, wait_s=0.5, quiet=True)
    finally:
        holder.kill()
        holder.wait()


def test_get_run_decodes_json_and_finds_latest(tmp_path):
    with store.connect(tmp_path / "p.duckdb") as con:
        con.execute(
            "INSERT INTO runs (run_id, started_at, summary, labels) VALUES "
            "('old', TIMESTAMPTZ '2026-01-01 00:00:00+00', '{\"requests\": 3}', '{}'),"
            "('new', TIMESTAMPTZ '2026-02-01 00:00:00+00', '{\"requests\": 5}', '{\"hardware\": \"T4\"}')"
        )
        run = store.get_run(con, "latest")
        assert run["run_id"] == "new"
        assert run["summary"] == {"requests": 5}
        assert run["labels"] == {"hardware": "T4"}
        with pytest.raises(store.StoreError, match="no run"):
            store.get_run(con, "missing")


def test_parse_label():
    assert store.parse_label("hardware=T4, batching=fixed") == {"hardware": "T4", "batching": "fixed"}
    assert store.parse_label("just text") == {}
    assert store.parse_label(None) == {}


def test_duckdb_lock_error_detection_matches_duckdb_wording(tmp_path):
    db = tmp_path / "p.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import time, duckdb; c = duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(5)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException) as info:
            duckdb.connect(str(db))
        assert db_module._is_lock_error(info.value)
    finally:
        holder.kill()
        holder.wait()


def test_read_only_handle_is_ready_for_more_work(tmp_path):
    db = tmp_path / "p.duckdb"
    store.connect(db).close()
    with store.connect(db, read_only=True) as con:
        assert con.sql("SELECT 1").fetchall() == [(1,)]
