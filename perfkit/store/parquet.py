"""The store as Hive-partitioned Parquet: export a DuckDB file, and read an export back.

An export directory holds one folder per table, partitioned by the UTC day (``day=YYYY-MM-DD``)
and, for the tables that belong to a run (``runs``, ``requests``, ``token_gaps``), by run
(``day=.../run_id=...``), so DuckDB, Spark or Trino prune by date and by run. Every file
carries the store's schema version (the highest migration) in its key-value metadata
under ``perfkit.schema_version``; a reader refuses files of another version.

Exporting again into the same directory replaces the partitions it writes (a run's
partition wherever its day was, a telemetry day whole) and keeps the others, so several
stores can export their runs into one directory. Telemetry ids (``source_id``,
``series_id``) are numbered per store: export one store's telemetry per directory.

:func:`open_views` turns an in-memory store's tables into views over the files, typed
exactly as the migrations declare them, so every SQL reader works unchanged;
``perfkit.store.connect`` does that for a folder or a ``parquet:`` URL. See ``docs/parquet.md``.
"""
from __future__ import annotations

import glob
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

import duckdb

from perfkit import __version__
from perfkit.errors import StoreError

SCHEMA_KEY = "perfkit.schema_version"
TABLE_KEY = "perfkit.table"
DAY = "day"
RUN = "run_id"


def _day(ts: str) -> str:
    """SQL: the UTC date of a TIMESTAMPTZ expression, 1970-01-01 when it is NULL."""
    return f"coalesce(CAST(timezone('UTC', {ts}) AS DATE), DATE '1970-01-01')"


def _epoch(col: str) -> str:
    """SQL: a ``*_unix_s`` column as TIMESTAMPTZ, NULL when it is not a plausible time."""
    return f"CASE WHEN isfinite({col}) AND {col} BETWEEN 0 AND 1e11 THEN to_timestamp({col}) END"


_RUN_DAY = f"(SELECT run_id, {_day('coalesce(started_at, ' + _epoch('t0_unix_s') + ')')} AS day FROM runs)"
_SOURCE_DAY = f"(SELECT source_id, {_day('ingested_at')} AS day FROM sources)"

#: Table -> (the SELECT that adds its ``day``, its partition columns). Every table of the
#: store but ``schema_migrations`` (its version is in each file's metadata) is here.
TABLES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "runs": (f"SELECT t.*, rd.day FROM runs t JOIN {_RUN_DAY} rd USING (run_id)", (DAY, RUN)),
    "requests": (f"SELECT t.*, coalesce(rd.day, {_day(_epoch('t.intended_unix_s'))}) AS day "
                 f"FROM requests t LEFT JOIN {_RUN_DAY} rd USING (run_id)", (DAY, RUN)),
    "token_gaps": ("SELECT t.*, coalesce(rd.day, DATE '1970-01-01') AS day "
                   f"FROM token_gaps t LEFT JOIN {_RUN_DAY} rd USING (run_id)", (DAY, RUN)),
    "sources": (f"SELECT t.*, {_day('t.ingested_at')} AS day FROM sources t", (DAY,)),
    "series": ("SELECT t.*, coalesce(sd.day, DATE '1970-01-01') AS day "
               f"FROM series t LEFT JOIN {_SOURCE_DAY} sd USING (source_id)", (DAY,)),
    "samples": (f"SELECT t.*, {_day(_epoch('t.ts_unix_s'))} AS day FROM samples t", (DAY,)),
    "trend_acknowledgements": (f"SELECT t.*, {_day('t.acknowledged_at')} AS day "
                               "FROM trend_acknowledgements t", (DAY,)),
}


@dataclass
class ExportResult:
    """What one export wrote: rows per table and the partition folders it replaced."""

    out_dir: Path
    schema_version: int
    rows: dict[str, int] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _leaf_dirs(root: Path) -> list[Path]:
    """Partition folders under ``root`` that hold files (relative to ``root``)."""
    return sorted({p.parent.relative_to(root) for p in root.rglob("*.parquet")})


def _replace_partitions(staged: Path, table_dir: Path, by_run: bool) -> int:
    """Move the staged partitions of one table into place, replacing what was there."""
    leaves = _leaf_dirs(staged)
    for leaf in leaves:
        stale = [table_dir / leaf]
        if by_run:  # a run re-exported with another day must not stay under the old one
            stale += list(table_dir.glob(f"{DAY}=*/{glob.escape(leaf.name)}"))
        for old in stale:
            if old.is_dir():
                shutil.rmtree(old)
        (table_dir / leaf).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged / leaf, table_dir / leaf)
    return len(leaves)


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: str | os.PathLike[str]) -> ExportResult:
    """Write every table of the store behind ``con`` under ``out_dir`` (see the module doc)."""
    out = Path(out_dir)
    (version,), = con.execute("SELECT max(version) FROM schema_migrations").fetchall()
    result = ExportResult(out_dir=out, schema_version=int(version))
    stage_root = out / f".perfkit-export-{uuid.uuid4().hex}"
    stage_root.mkdir(parents=True)
    try:
        for table, (select, partition_by) in TABLES.items():
            staged = stage_root / table
            metadata = {SCHEMA_KEY: str(version), TABLE_KEY: table, "perfkit.version": __version__}
            kv = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in metadata.items())
            con.execute(
                f"COPY ({select}) TO {_literal(str(staged))} (FORMAT parquet, COMPRESSION zstd, "
                f"PARTITION_BY ({', '.join(partition_by)}), KV_METADATA {{{kv}}})")
            (rows,), = con.execute(f"SELECT count(*) FROM {table}").fetchall()
            result.rows[table] = int(rows)
            result.partitions[table] = (
                _replace_partitions(staged, out / table, RUN in partition_by) if staged.is_dir() else 0)
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)
    return result


_DUCKDB_SCHEMES = {"", "file", "http", "https", "s3", "s3a", "s3n", "gs", "gcs", "r2", "az", "azure",
                   "abfss", "hf"}


def _register_fsspec(con: duckdb.DuckDBPyConnection, location: str) -> None:
    """Let DuckDB read an fsspec URL (``memory://``, ``sftp://``...) it has no reader for."""
    scheme = urlsplit(location).scheme
    if len(scheme) <= 1 or scheme in _DUCKDB_SCHEMES:  # a Windows drive letter is no scheme
        return
    import fsspec

    try:
        con.register_filesystem(fsspec.filesystem(scheme))
    except (ImportError, ValueError) as exc:
        raise StoreError(f"{location}: no filesystem for {scheme}:// ({exc})") from exc


def _files(con: duckdb.DuckDBPyConnection, pattern: str) -> int:
    (n,), = con.execute("SELECT count(*) FROM glob(?)", [pattern]).fetchall()
    return int(n)


def _check_version(con: duckdb.DuckDBPyConnection, pattern: str, n_files: int, expected: int) -> None:
    found = con.execute(
        "SELECT file_name, decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) = ?",
        [pattern, SCHEMA_KEY]).fetchall()
    if len(found) < n_files:
        raise StoreError(f"{pattern}: {n_files - len(found)} file(s) without {SCHEMA_KEY} in their "
                         "metadata: not a perfkit export")
    wrong = sorted({v for _f, v in found if v != str(expected)})
    if wrong:
        example = next(f for f, v in found if v != str(expected))
        raise StoreError(
            f"{example}: written with store schema version {', '.join(wrong)}, this perfkit reads "
            f"version {expected}; export again with this perfkit (or read with the perfkit that wrote it)")


def open_views(con: duckdb.DuckDBPyConnection, location: str, version: int) -> None:
    """Turn the tables of ``con`` (an empty in-memory store migrated to ``version``) into read-only
    views over the export at ``location`` (a local folder, or any URL DuckDB or fsspec reads),
    each column cast to the type the schema declares."""
    root = location.rstrip("/")
    _register_fsspec(con, root)
    present = 0
    for table, (_select, partition_by) in TABLES.items():
        pattern = f"{root}/{table}/**/*.parquet"
        n_files = _files(con, pattern)
        if not n_files:
            continue  # no rows of this table were exported: it stays an empty table
        present += 1
        _check_version(con, pattern, n_files, version)
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table]).fetchall()
        select = ", ".join(f'CAST("{name}" AS {kind}) AS "{name}"' for name, kind in columns)
        hive_types = ", ".join(f"{_literal(k)}: {'DATE' if k == DAY else 'VARCHAR'}" for k in partition_by)
        con.execute(f"DROP TABLE {table}")
        con.execute(
            f"CREATE VIEW {table} AS SELECT {select} FROM read_parquet({_literal(pattern)}, "
            f"hive_partitioning = true, hive_types = {{{hive_types}}})")
    if not present:
        raise StoreError(f"{location}: no perfkit Parquet export here (`perfkit export --parquet DIR`)")
