"""The write path: sources, series and samples in bulk, inside the caller's transaction.

Series ids come from ``series_id_seq`` in one query (``nextval`` over
``range(n)``, usually one block known by its min and max), then both tables
are inserted from Arrow tables registered in DuckDB: one INSERT ... SELECT per
table, never a row-by-row execute.
"""
from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

if TYPE_CHECKING:  # imported where used: ~0.5 s that `perfkit bench` would pay before its first request
    import polars as pl

_counter = itertools.count()


def find_source(con: duckdb.DuckDBPyConnection, kind: str, sha256: str) -> tuple | None:
    """(source_id, path, ingested_at, row_count) of an earlier ingest of the same bytes."""
    rows = con.execute(
        "SELECT source_id, path, ingested_at, row_count FROM sources WHERE kind = ? AND sha256 = ?",
        [kind, sha256],
    ).fetchall()
    return rows[0] if rows else None


def new_source(con: duckdb.DuckDBPyConnection, *, kind: str, path: str | None,
               sha256: str | None, run_id: str | None, label: str | None,
               row_count: int = 0) -> int:
    """Insert one ``sources`` row and return its id."""
    source_id = con.execute("SELECT nextval('source_id_seq')").fetchall()[0][0]
    con.execute(
        "INSERT INTO sources (source_id, kind, path, sha256, row_count, run_id, label) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [source_id, kind, path, sha256, row_count, run_id, label],
    )
    return int(source_id)


def _series_ids(con: duckdb.DuckDBPyConnection, n: int) -> np.ndarray:
    """``n`` new, unique series ids from ``series_id_seq``, in increasing order.

    Usually the n values drawn are one block, known from their min and max
    (no transfer of n values); if another connection drew from the sequence
    meanwhile, the drawn values themselves are fetched (a sequence may have gaps).
    """
    lo, hi = con.execute("SELECT min(id), max(id) FROM "
                         "(SELECT nextval('series_id_seq') AS id FROM range(?))", [n]).fetchall()[0]
    if hi - lo == n - 1:  # n distinct values within [lo, lo + n - 1]: exactly that block
        return np.arange(lo, hi + 1, dtype=np.int64)
    ids = con.execute("SELECT nextval('series_id_seq') AS id FROM range(?)", [n]).fetchnumpy()["id"]
    return np.sort(ids.astype(np.int64))


def insert_series(con: duckdb.DuckDBPyConnection, source_id: int, series: pl.DataFrame) -> np.ndarray:
    """Insert the series frame (key order); return the new series ids indexed by key."""
    import polars as pl

    n = series.height
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ids = _series_ids(con, n)
    keyed = series.sort("key")
    if not np.array_equal(keyed.get_column("key").to_numpy(), np.arange(n)):
        raise ValueError("series keys must be 0..n-1")
    # string_view columns go to DuckDB without a copy (CompatLevel.newest)
    table = keyed.select("name", "labels", "unit", "type").to_arrow(
        compat_level=pl.CompatLevel.newest())
    # labels as Arrow's JSON extension type: DuckDB reads it as JSON, without the
    # per-row parse of CAST(... AS JSON). Callers hand JSON object text (written with
    # json.dumps, or by a parser that checked it), so no row needs the parse.
    labels = table.column("labels")
    json_type = pa.json_(labels.type)
    labels = pa.chunked_array([pa.ExtensionArray.from_storage(json_type, chunk)
                               for chunk in labels.chunks], type=json_type)
    table = table.set_column(table.schema.get_field_index("labels"), "labels", labels)
    # (Arrow arrays built by polars: pyarrow's own pa.array() would import pandas)
    table = table.append_column("series_id", pl.Series(ids).to_arrow())
    name = f"_pk_series_{next(_counter)}"
    con.register(name, table)
    try:
        con.execute(
            f"INSERT INTO series (series_id, source_id, name, labels, unit, type) "
            f"SELECT series_id, ?, name, labels, unit, type FROM {name}",
            [source_id],
        )
    finally:
        con.unregister(name)
    return ids


def insert_samples(con: duckdb.DuckDBPyConnection, series_ids: np.ndarray,
                   samples: pl.DataFrame) -> int:
    """Insert samples, translating each row's key through ``series_ids``."""
    import polars as pl

    if samples.height == 0:
        return 0
    keys = samples.get_column("key").to_numpy()
    table = pl.DataFrame({
        "series_id": series_ids[keys],
        "ts_unix_s": samples.get_column("ts_unix_s"),
        "value": samples.get_column("value"),
    }).to_arrow()
    name = f"_pk_samples_{next(_counter)}"
    con.register(name, table)
    try:
        con.execute(f"INSERT INTO samples SELECT series_id, ts_unix_s, value FROM {name}")
    finally:
        con.unregister(name)
    return samples.height


def insert_run(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> None:
    """Insert a ``runs`` row (JSON columns given as Python objects)."""
    row = dict(run)
    for key in ("labels", "scenario", "machine", "summary"):
        if key in row and row[key] is not None and not isinstance(row[key], str):
            row[key] = json.dumps(row[key], sort_keys=True, default=str)
    cols = list(row)
    placeholders = ", ".join("?" for _ in cols)
    con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({placeholders})",
                [row[c] for c in cols])


def write_source(con: duckdb.DuckDBPyConnection, series: pl.DataFrame, samples: pl.DataFrame,
                 *, kind: str, path: str | None, sha256: str | None, run_id: str | None,
                 label: str | None, run: dict[str, Any] | None = None) -> int:
    """Write one source with its series and samples (caller holds the transaction).

    ``series`` has ``key`` (0..n-1), ``name``, ``labels`` (JSON text), ``unit``,
    ``type``; ``samples`` has ``key``, ``ts_unix_s``, ``value``. ``run`` is a
    ``runs`` row for files that describe a whole run (Locust, MLPerf): it is
    inserted first and the source attached to it unless ``run_id`` says otherwise.
    """
    if run is not None:
        insert_run(con, run)
        run_id = run_id or run["run_id"]
    source_id = new_source(con, kind=kind, path=path, sha256=sha256, run_id=run_id,
                           label=label, row_count=samples.height)
    ids = insert_series(con, source_id, series)
    insert_samples(con, ids, samples)
    return source_id


def add_source_rows(con: duckdb.DuckDBPyConnection, source_id: int, n: int) -> None:
    """Grow a source's ``row_count`` by ``n`` (a source written in parts: streamed or live)."""
    con.execute("UPDATE sources SET row_count = row_count + ? WHERE source_id = ?", [n, source_id])


# --------------------------------------------------------------------------- benchmark runs

def _append_run_rows(con: duckdb.DuckDBPyConnection, table_name: str, run_id: str, rows: pa.Table) -> int:
    """Append an Arrow table's rows to a per-run table, columns matched by name, run_id added."""
    if table_name not in ("requests", "token_gaps"):  # identifiers only from this allow-list
        raise ValueError(f"not a per-run table: {table_name!r}")
    view = f"_pk_{table_name}_{next(_counter)}"
    con.register(view, rows)
    try:
        con.execute(f"INSERT INTO {table_name} BY NAME SELECT ?::VARCHAR AS run_id, * FROM {view}", [run_id])
    finally:
        con.unregister(view)
    return rows.num_rows


def insert_requests(con: duckdb.DuckDBPyConnection, run_id: str, rows: pa.Table) -> int:
    """Append ``requests`` rows of one run (any subset of its columns but run_id); returns how many."""
    return _append_run_rows(con, "requests", run_id, rows)


def insert_token_gaps(con: duckdb.DuckDBPyConnection, run_id: str, rows: pa.Table) -> int:
    """Append ``token_gaps`` rows (``seq``, ``gap_ms``) of one run; returns how many."""
    return _append_run_rows(con, "token_gaps", run_id, rows)


def finalize_run(con: duckdb.DuckDBPyConnection, run_id: str, *, status: str, status_reason: str | None,
                 ended_at: Any, summary: str) -> None:
    """Close a ``runs`` row: final status and why, end time, and the summary (JSON text)."""
    con.execute("UPDATE runs SET status = ?, status_reason = ?, ended_at = ?, summary = ? WHERE run_id = ?",
                [status, status_reason, ended_at, summary, run_id])
