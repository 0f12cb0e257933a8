"""Turning worker batches into ``requests`` rows and writing them to DuckDB as the run goes.

Workers send int64 matrices (columns :data:`perfkit.bench.engine.COLUMNS`, times
in monotonic ns). :func:`to_table` maps them to the schema's columns (UTC
``*_unix_s`` via the one monotonic→wall mapping taken at t0; ``latency_ms`` and
``ttft_intended_ms`` from the intended send, ``service_ms`` and ``ttft_ms`` from
the actual send) as an Arrow table; :class:`RowWriter` batches such tables (every
``flush_s`` or ``max_rows``, so memory stays flat over long runs) and hands them to
the store's writer (:func:`perfkit.store.write.insert_requests`).

Arrays are built over the numpy buffers (:func:`_column`, :func:`_labels`), not with
``pa.array``, whose first call imports pandas: ~0.5 s of CPU that would land in the
coordinator while requests fly (or delay t0 if done before).
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from perfkit.bench import errorbodies
from perfkit.bench.client import ERRORS
from perfkit.bench.engine import COLUMNS
from perfkit.bench.schedule import PHASES, Phases
from perfkit.store import write

_C = {name: i for i, name in enumerate(COLUMNS)}
_NUMPY = {pa.int64(): np.int64, pa.int32(): np.int32, pa.float64(): np.float64}


def _validity(valid: np.ndarray | None) -> tuple[pa.Buffer | None, int]:
    if valid is None or valid.all():
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), int(len(valid) - np.count_nonzero(valid))


def _column(values: np.ndarray, typ: pa.DataType = pa.float64(), valid: np.ndarray | None = None) -> pa.Array:
    """A numeric Arrow array over ``values`` (cast to ``typ``), null where ``valid`` is False."""
    data = np.ascontiguousarray(values, dtype=_NUMPY[typ])
    bitmap, nulls = _validity(valid)
    return pa.Array.from_buffers(typ, len(data), [bitmap, pa.py_buffer(data)], null_count=nulls)


def _labels(codes: np.ndarray, names: Sequence[str | None]) -> pa.Array:
    """A string array: row i is ``names[codes[i]]`` (None is null)."""
    encoded = [(x or "").encode() for x in names]
    lengths = np.array([len(x) for x in encoded], dtype=np.int32)[codes]
    offsets = np.zeros(len(codes) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = b"".join([encoded[c] for c in codes.tolist()])
    bitmap, nulls = _validity(np.array([x is not None for x in names], dtype=bool)[codes])
    return pa.Array.from_buffers(pa.string(), len(codes), [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 null_count=nulls)


def _error_bodies(seqs: np.ndarray, err: np.ndarray, bodies: Sequence[tuple[int, bytes]],
                  clean: Callable[[bytes], str]) -> pa.Array:
    """``error_body``: each failed row's cleaned body (null elsewhere); only failed rows are looked at."""
    text = {seq: clean(raw) for seq, raw in bodies}
    names: list[str | None] = [None, *dict.fromkeys(text.values())]
    index = {t: i for i, t in enumerate(names)}
    codes = np.zeros(len(seqs), dtype=np.int64)
    for row in np.flatnonzero(err).tolist():
        t = text.get(int(seqs[row]))
        if t is not None:
            codes[row] = index[t]
    return _labels(codes, names)


def to_table(batch: np.ndarray, worker: int, t0_mono_ns: int, t0_unix_s: float,
             payload_classes: Sequence[str], payload_bytes: np.ndarray, llm: bool,
             err_bodies: Sequence[tuple[int, bytes]] | None = None,
             clean: Callable[[bytes], str] = errorbodies.clean, phases: Phases | None = None,
             intended_tokens: tuple[np.ndarray, np.ndarray] | None = None) -> pa.Table:
    """An Arrow table with the ``requests`` columns (except run_id) for one worker batch.

    ``err_bodies``: ``(seq, raw body)`` of the batch's non-2xx answers, stored as
    ``error_body`` through ``clean`` (redacted, cut; :mod:`perfkit.bench.errorbodies`).
    ``phases``: the run's windows; each row's ``phase`` follows from its intended offset.
    ``intended_tokens``: a token-true workload's prompt and output token counts per body
    (:mod:`perfkit.bench.workload`), stored per row by its body index."""
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
    n = len(b)
    data = {
        "seq": _column(col("seq"), pa.int64()),
        "worker": _column(np.full(n, worker), pa.int32()),
        "stage": _column(col("stage"), pa.int32()),
        "intended_unix_s": _column(unix(intended)),
        "sent_unix_s": _column(unix(sent), valid=has_sent),
        "first_byte_unix_s": _column(unix(first), valid=has_first),
        "done_unix_s": _column(unix(done)),
        "latency_ms": _column((done - intended) / 1e6),
        "service_ms": _column((done - sent) / 1e6, valid=has_sent),
        "connect_ms": _column(connect / 1e6, valid=connect >= 0),
        "status_code": _column(status, pa.int32(), status > 0),
        "error_kind": _labels(err, ERRORS),
        "bytes_out": _column(col("bytes_out"), pa.int64(), has_sent),
        "bytes_in": _column(col("bytes_in"), pa.int64()),
        "payload_class": _labels(body, payload_classes),
        "payload_bytes": _column(np.asarray(payload_bytes)[body], pa.int64()),
    }
    if err_bodies:
        data["error_body"] = _error_bodies(col("seq"), err, err_bodies, clean)
    if intended_tokens is not None:
        data["prompt_tokens_intended"] = _column(intended_tokens[0][body], pa.int32())
        data["output_tokens_intended"] = _column(intended_tokens[1][body], pa.int32())
    if phases is not None:
        data["phase"] = _labels(phases.codes(intended - t0_mono_ns), PHASES)
    if llm:
        out_tok = col("output_tokens")
        # per-token timings need tokens seen in a stream: a plain answer has its token count only
        tok_ok = has_first & (out_tok > 0) & (col("stream_tokens") > 0) & (err == 0)
        prompt = col("prompt_tokens")
        with np.errstate(divide="ignore", invalid="ignore"):
            tpot = (done - first) / 1e6 / (out_tok - 1)
        data.update({
            "prompt_tokens": _column(prompt, pa.int32(), prompt >= 0),
            "output_tokens": _column(out_tok, pa.int32(), out_tok >= 0),
            "ttft_ms": _column((first - sent) / 1e6, valid=tok_ok & has_sent),
            "ttft_intended_ms": _column((first - intended) / 1e6, valid=tok_ok),
            "tpot_ms": _column(tpot, valid=tok_ok & (out_tok > 1)),
            "itl_ms_max": _column(col("itl_max_ns") / 1e6, valid=tok_ok & (out_tok > 1)),
        })
    return pa.table(data)


def gaps_table(batch: np.ndarray) -> pa.Table:
    """``token_gaps`` rows (seq, gap_ms) from a worker's (seq, gap_ns) int64 batch."""
    return pa.table({"seq": _column(batch[:, 0], pa.int64()), "gap_ms": _column(batch[:, 1] / 1e6)})


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
