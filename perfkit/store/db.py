"""The DuckDB file: opening it, migrating its schema, transactions.

The schema lives in ``perfkit/sql/NNNN-name.sql``; each file is applied once, in
order, in its own transaction, and recorded in ``schema_migrations``. A database
written by a newer perfkit (a migration we do not know) is refused rather than
guessed at. DuckDB allows one writer per file: :func:`connect` waits for the lock
with a message instead of failing or dropping a run.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterator

import duckdb

from perfkit.errors import StoreError
from perfkit.paths import db_path, parquet_location

_MIGRATION_RE = re.compile(r"^(\d{4})-[\w.-]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The schema files shipped in the package, in the order they apply."""
    found = []
    for entry in resources.files("perfkit").joinpath("sql").iterdir():
        m = _MIGRATION_RE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    return found


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """Highest applied migration, 0 for an empty database."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    (version,), = con.execute("SELECT max(version) FROM schema_migrations").fetchall()
    return int(version or 0)


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every shipped migration not yet recorded; return the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())"
    )
    applied = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    known = migrations()
    unknown = applied - {m.version for m in known}
    if unknown:
        raise StoreError(
            f"database has schema migration(s) {sorted(unknown)} that this perfkit does not know; "
            "upgrade perfkit or use another --db"
        )
    done = []
    for mig in known:
        if mig.version in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(mig.sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [mig.version, mig.name]
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        done.append(mig.version)
    return done


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


def connect(
    db: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    wait_s: float = 600.0,
    quiet: bool = False,
) -> duckdb.DuckDBPyConnection:
    """Open (creating and migrating) the store, waiting up to ``wait_s`` for another writer.

    A Parquet export (a folder, or a ``parquet:`` URL; see :mod:`perfkit.store.parquet`) opens
    read-only as in-memory views with the same tables."""
    parquet = parquet_location(db)
    if parquet is not None:
        if not read_only:
            raise StoreError(f"{parquet}: a Parquet export is read-only; write to a DuckDB file "
                             "and export it again")
        from perfkit.store.parquet import open_views

        con = duckdb.connect(":memory:")
        try:
            migrate(con)  # the empty tables give each column its declared type, the views their SQL
            open_views(con, parquet, migrations()[-1].version)
        except BaseException:
            con.close()
            raise
        return con
    path = db_path(db)
    if str(path) != ":memory:":
        if read_only and not path.exists():
            raise StoreError(f"{path}: no such database (run a benchmark or an ingest first)")
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise StoreError(f"{path}: {exc}") from exc
            if not told and not quiet:
                print(f"perfkit: {path} is in use by another perfkit process; waiting for it "
                      f"(up to {wait_s:.0f} s)...", file=sys.stderr)
                told = True
            time.sleep(0.25)
    if read_only:
        have = schema_version(con)
        latest = migrations()[-1].version
        if have < latest:
            # A read-only handle cannot migrate: reopen writable once, migrate, reopen.
            con.close()
            with connect(path, wait_s=wait_s, quiet=quiet):
                pass
            return connect(path, read_only=True, wait_s=wait_s, quiet=quiet)
        return con
    try:
        migrate(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: ingest of a file, a batch of rows."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def parse_label(label: str | None) -> dict[str, str]:
    """``"hardware=T4,batching=fixed"`` -> ``{"hardware": "T4", "batching": "fixed"}``."""
    out: dict[str, str] = {}
    if not label:
        return out
    for part in label.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
