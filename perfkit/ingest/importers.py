"""`perfkit ingest KIND PATH...`: read a file, check it, store it in one transaction.

Each file (for Locust: each ``--csv`` prefix's set of files) is one source:
all of it is written or none (a parse error raises :class:`InputError` before
anything is written; a failure while writing rolls back). Re-ingesting the same
bytes under the same kind is a no-op reported in one line.
"""
from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import duckdb

from perfkit import store
from perfkit.errors import InputError, UsageError
from perfkit.ingest import KINDS
from perfkit.ingest.frames import Telemetry
from perfkit.store import write


@dataclass
class IngestResult:
    """What one ingest did: ``skipped`` when the same bytes were already stored."""

    kind: str
    path: str
    source_id: int | None
    series: int
    samples: int
    skipped: bool = False
    run_id: str | None = None

    def line(self) -> str:
        if self.skipped:
            return (f"{self.path}: already ingested as {self.kind} (source {self.source_id}); "
                    "nothing to do")
        run = f", run {self.run_id}" if self.run_id else ""
        return (f"{self.path}: {self.samples:,} samples in {self.series:,} series "
                f"(source {self.source_id}{run})")


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(path, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _reader(kind: str) -> Callable[..., Telemetry]:
    """The function that turns one file into Telemetry for ``kind``."""
    if kind == "prometheus":
        from perfkit.ingest import prometheus

        # the bytes themselves: the parser checks UTF-8 in bulk
        return lambda paths, data, at: prometheus.read(data[0], paths[0], at)
    if kind == "dcgm":
        from perfkit.ingest import dcgm

        return lambda paths, data, at: dcgm.read(_decode(data[0], paths[0]), paths[0], at)
    if kind == "prom-range":
        from perfkit.ingest import promrange

        return lambda paths, data, at: promrange.read_bytes(data[0], paths[0])
    if kind == "nvidia-smi":
        from perfkit.ingest import nvsmi

        return lambda paths, data, at: nvsmi.read(_decode(data[0], paths[0]), paths[0])
    if kind == "locust":
        from perfkit.ingest import locust

        return lambda paths, data, at: locust.read(
            {p: _decode(d, p) for p, d in zip(paths, data)})
    if kind == "mlperf":
        from perfkit.ingest import mlperf

        return lambda paths, data, at: mlperf.read(
            {p: _decode(d, p) for p, d in zip(paths, data)})
    raise UsageError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def group_paths(kind: str, paths: Sequence[str | Path]) -> list[list[str]]:
    """Files that form one source: Locust's per-prefix CSVs, MLPerf's per-directory logs."""
    names = [str(p) for p in paths]
    if kind == "locust":
        from perfkit.ingest import locust

        return locust.group(names)
    if kind == "mlperf":
        from perfkit.ingest import mlperf

        return mlperf.group(names)
    return [[p] for p in names]


def _blobs_sha256(blobs: Sequence[bytes]) -> str:
    """A file's sha256; for a set of files, the sha256 of their sha256s in order."""
    if len(blobs) == 1:
        return hashlib.sha256(blobs[0]).hexdigest()
    digest = hashlib.sha256()
    for blob in blobs:
        digest.update(hashlib.sha256(blob).digest())
    return digest.hexdigest()


@contextlib.contextmanager
def _reading(path: str) -> Iterator[None]:
    """Turn a failure to read ``path`` into a one-line :class:`InputError`."""
    try:
        yield
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with _reading(path), open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def check_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> None:
    """UsageError unless ``run_id`` (``--run``) is None or names a stored run."""
    if run_id is not None:
        exists = con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
        if not exists:
            raise UsageError(f"--run {run_id}: no such run (see `perfkit runs`)")


def write_telemetry(con: duckdb.DuckDBPyConnection, tel: Telemetry, *, kind: str,
                    path: str | None, sha256: str | None, run_id: str | None,
                    label: str | None) -> int:
    """Store one importer's Telemetry as one source (caller holds the transaction)."""
    return write.write_source(con, tel.series, tel.samples, kind=kind, path=path, sha256=sha256,
                              run_id=run_id, label=label, run=tel.run)


def ingest_prom_range(con: duckdb.DuckDBPyConnection, path: str, *, label: str | None = None,
                      run_id: str | None = None, default_name: str = "prom_range_result",
                      kind: str = "prom-range") -> IngestResult:
    """Stream a query/query_range JSON answer into the store (flat memory, one transaction)."""
    import numpy as np
    import polars as pl

    from perfkit.ingest import promrange

    sha = _file_sha256(path)
    earlier = write.find_source(con, kind, sha)
    if earlier is not None:
        return IngestResult(kind, path, int(earlier[0]), 0, int(earlier[3] or 0), skipped=True)
    check_run(con, run_id)
    n_series = n_samples = 0
    with store.transaction(con), open(path, "rb") as fh:
        source_id = write.new_source(con, kind=kind, path=path, sha256=sha, run_id=run_id,
                                      label=label)
        ids = np.zeros(0, dtype=np.int64)
        for batch in promrange.iter_batches(fh, path, default_name):
            if batch.series:
                frame = promrange.series_frame(batch.series).with_columns(
                    pl.col("key") - len(ids))
                ids = np.concatenate([ids, write.insert_series(con, source_id, frame)])
                n_series += len(batch.series)
            n_samples += write.insert_samples(con, ids, pl.DataFrame(
                {"key": batch.keys, "ts_unix_s": batch.ts, "value": batch.values}))
        write.add_source_rows(con, source_id, n_samples)
    return IngestResult(kind, path, source_id, n_series, n_samples, run_id=run_id)


def ingest_group(con: duckdb.DuckDBPyConnection, kind: str, paths: Sequence[str], *,
                 label: str | None = None, run_id: str | None = None,
                 at_unix_s: float | None = None) -> IngestResult:
    """Ingest one source (one file, or one Locust/MLPerf set) in one transaction."""
    if kind == "prom-range" and len(paths) == 1:
        return ingest_prom_range(con, paths[0], label=label, run_id=run_id)
    display = paths[0] if len(paths) == 1 else " + ".join(paths)
    blobs = []
    for p in paths:
        with _reading(p):
            blobs.append(Path(p).read_bytes())
    # (hashing in a thread alongside the parse was measured slower: both want the cores)
    sha = _blobs_sha256(blobs)
    earlier = write.find_source(con, kind, sha)
    if earlier is not None:
        return IngestResult(kind, display, int(earlier[0]), 0, int(earlier[3] or 0), skipped=True)
    at = time.time() if at_unix_s is None else float(at_unix_s)
    check_run(con, run_id)
    tel = _reader(kind)(list(paths), blobs, at)
    with store.transaction(con):
        source_id = write_telemetry(con, tel, kind=kind, path=display, sha256=sha,
                                    run_id=run_id, label=label)
    return IngestResult(kind, display, source_id, tel.series.height, tel.samples.height,
                        run_id=run_id or (tel.run or {}).get("run_id"))


def ingest_file(con: duckdb.DuckDBPyConnection, kind: str, path: str | Path, *,
                label: str | None = None, run_id: str | None = None,
                at_unix_s: float | None = None, quiet: bool = False) -> IngestResult:
    """Ingest a single file (see :func:`ingest_group`); prints its one-line result unless quiet."""
    result = ingest_group(con, kind, [str(path)], label=label, run_id=run_id, at_unix_s=at_unix_s)
    if not quiet:
        print(result.line(), file=sys.stderr if result.skipped else sys.stdout)
    return result


def ingest_paths(con: duckdb.DuckDBPyConnection, kind: str, paths: Sequence[str | Path], *,
                 label: str | None = None, run_id: str | None = None,
                 at_unix_s: float | None = None, quiet: bool = False) -> list[IngestResult]:
    """Ingest several files, one transaction each; stops at the first bad file."""
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    results = []
    for group in group_paths(kind, paths):
        result = ingest_group(con, kind, group, label=label, run_id=run_id, at_unix_s=at_unix_s)
        if not quiet:
            print(result.line())
        results.append(result)
    return results
