"""The DuckDB store: opening, schema migration, and the few writes every stage shares.

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
from pathlib import Path
from typing import Any, Iterator

import duckdb

DEFAULT_DB = Path("data/perfkit.duckdb")
_MIGRATION_RE = re.compile(r"^(\d{4})-[\w.-]+\.sql$")


class StoreError(Exception):
    """A store that cannot be used as asked (newer schema, lock not released...)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def default_db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """``--db`` wins, then ``PERFKIT_DB``, then ``data/perfkit.duckdb``."""
    if db:
        return Path(db)
    env = os.environ.get("PERFKIT_DB")
    return Path(env) if env else DEFAULT_DB


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
    """Open (creating and migrating) the store, waiting up to ``wait_s`` for another writer."""
    path = default_db_path(db)
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


def list_runs(con: duckdb.DuckDBPyConnection):
    """Runs, newest first, as a pandas frame."""
    return con.execute(
        """
        SELECT run_id, label, protocol, pattern, status, started_at, duration_s,
               intended_rate_rps,
               CAST(json_extract(summary, '$.requests') AS BIGINT) AS requests,
               CAST(json_extract(summary, '$.latency_ms.p99') AS DOUBLE) AS p99_ms,
               target
        FROM runs ORDER BY started_at DESC NULLS LAST, run_id DESC
        """
    ).df()


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """One run as a dict (JSON columns decoded); ``latest`` picks the newest run."""
    if run_id == "latest":
        rows = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC NULLS LAST LIMIT 1").fetchall()
        if not rows:
            raise StoreError("the database holds no runs yet")
        run_id = rows[0][0]
    cur = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if not rows:
        raise StoreError(f"no run with id {run_id!r} (see `perfkit runs`)")
    out = dict(zip(cols, rows[0]))
    for key in ("labels", "scenario", "machine", "summary"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out
