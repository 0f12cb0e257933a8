"""Turning worker batches into ``requests`` rows and writing them to DuckDB as the run goes.

Workers send int64 matrices (columns :data:`perfkit.bench.engine.COLUMNS`, times
in monotonic ns). :func:`to_table` maps them to the schema's columns (UTC
``*_unix_s`` via the one monotonic→wall mapping taken at t0; ``latency_ms`` and
``ttft_intended_ms`` from the intended send, ``service_ms`` and ``ttft_ms`` from
the actual send) as an Arrow table; :class:`RowWriter` batches such tables (every
``flush_s`` or ``max_rows``, so memory stays flat over long runs) and hands them to
the store's writer (:func:`perfkit.store.write.insert_requests`).
"""
from __future__ import annotations

import time
from typing import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from perfkit.bench.client import ERRORS
from perfkit.bench.engine import COLUMNS
from perfkit.store import write

_C = {name: i for i, name in enumerate(COLUMNS)}
_ERR_NAMES = np.array(list(ERRORS), dtype=object)


def _nullable(values: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.array(values, mask=~valid, type=typ)


def to_table(batch: np.ndarray, worker: int, t0_mono_ns: int, t0_unix_s: float,
             payload_classes: Sequence[str], payload_bytes: np.ndarray, llm: bool) -> pa.Table:
    """An Arrow table with the ``requests`` columns (except run_id) for one worker batch."""
    b = batch
    col = lambda name: b[:, _C[name]]  # noqa: E731

    def unix(ns: np.ndarray) -> np.ndarray:
        return t0_unix_s + (ns - t0_mono_ns) / 1e9

    intended, sent, first, done = col("intended_ns"), col("sent_ns"), col("first_ns"), col("done_ns")
    has_sent, has_first = sent > 0, first > 0
    connect = col("connect_ns")
    status = col("status")
    err = col("err")
    body = col("body")
    classes = np.asarray(payload_classes, dtype=object)[body]
    n = len(b)
    data = {
        "seq": pa.array(col("seq"), type=pa.int64()),
        "worker": pa.array(np.full(n, worker, dtype=np.int32)),
        "stage": pa.array(col("stage").astype(np.int32)),
        "intended_unix_s": pa.array(unix(intended)),
        "sent_unix_s": _nullable(unix(sent), has_sent, pa.float64()),
        "first_byte_unix_s": _nullable(unix(first), has_first, pa.float64()),
        "done_unix_s": pa.array(unix(done)),
        "latency_ms": pa.array((done - intended) / 1e6),
        "service_ms": _nullable((done - sent) / 1e6, has_sent, pa.float64()),
        "connect_ms": _nullable(connect / 1e6, connect >= 0, pa.float64()),
        "status_code": _nullable(status.astype(np.int32), status > 0, pa.int32()),
        "error_kind": pa.array(_ERR_NAMES[err], type=pa.string()),
        "bytes_out": _nullable(col("bytes_out"), has_sent, pa.int64()),
        "bytes_in": pa.array(col("bytes_in")),
        "payload_class": pa.array(classes, type=pa.string()),
        "payload_bytes": pa.array(np.asarray(payload_bytes)[body]),
    }
    if llm:
        out_tok = col("output_tokens")
        tok_ok = has_first & (out_tok > 0) & (err == 0)
        prompt = col("prompt_tokens")
        with np.errstate(divide="ignore", invalid="ignore"):
            tpot = (done - first) / 1e6 / (out_tok - 1)
        data.update({
            "prompt_tokens": _nullable(prompt.astype(np.int32), prompt >= 0, pa.int32()),
            "output_tokens": _nullable(out_tok.astype(np.int32), out_tok >= 0, pa.int32()),
            "ttft_ms": _nullable((first - sent) / 1e6, tok_ok & has_sent, pa.float64()),
            "ttft_intended_ms": _nullable((first - intended) / 1e6, tok_ok, pa.float64()),
            "tpot_ms": _nullable(tpot, tok_ok & (out_tok > 1), pa.float64()),
            "itl_ms_max": _nullable(col("itl_max_ns") / 1e6, tok_ok & (out_tok > 1), pa.float64()),
        })
    return pa.table(data)


def gaps_table(batch: np.ndarray) -> pa.Table:
    """``token_gaps`` rows (seq, gap_ms) from a worker's (seq, gap_ns) int64 batch."""
    return pa.table({"seq": pa.array(batch[:, 0], type=pa.int64()), "gap_ms": pa.array(batch[:, 1] / 1e6)})


class RowWriter:
    """Buffers Arrow tables and appends them to ``requests`` (and ``token_gaps``) through
    the store's writer, one INSERT per table per flush."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, flush_s: float = 0.5,
                 max_rows: int = 50_000):
        self.con, self.run_id = con, run_id
        self.flush_s, self.max_rows = flush_s, max_rows
        self.pending: list[pa.Table] = []
        self.pending_gaps: list[pa.Table] = []
        self.pending_rows = 0
        self.written = 0
        self.last = time.monotonic()

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= self.max_rows:
            self.flush()

    def add_gaps(self, table: pa.Table) -> None:
        self.pending_gaps.append(table)

    def maybe_flush(self) -> None:
        if self.pending and time.monotonic() - self.last >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if self.pending:
            table = pa.concat_tables(self.pending, promote_options="default")
            self.pending, self.pending_rows = [], 0
            self.written += write.insert_requests(self.con, self.run_id, table)
        if self.pending_gaps:
            table = pa.concat_tables(self.pending_gaps)
            self.pending_gaps = []
            write.insert_token_gaps(self.con, self.run_id, table)
