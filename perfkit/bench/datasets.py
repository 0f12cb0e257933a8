"""Prompt data sets and traces for token-true workloads (``--dataset FILE``).

Formats by extension: ``.jsonl`` (one JSON object a line), ``.json`` (a list of objects),
``.csv`` (a header line) and ``.parquet``. ``--dataset-columns`` maps the workload's
fields to the file's columns, ``prompt=COL[,output_tokens=COL][,messages=COL]``; the
fields are

- ``prompt``: the prompt text (its length is counted with the run's tokenizer);
- ``messages``: a chat history, a list of ``{"role", "content"}`` (JSON text in a CSV);
- ``prompt_tokens``: a prompt length in tokens (the text is generated to that length);
- ``output_tokens``: the output length asked for (the body's ``max_tokens``);
- ``hash_ids``: blocks of :data:`BLOCK_TOKENS` tokens shared between prompts (prefix reuse);
- ``timestamp``: the arrival time in milliseconds (for replay).

Without ``--dataset-columns`` a column named like a field is that field, and a JSONL file
with ``timestamp``, ``input_length`` and ``output_length`` is a **Mooncake trace** (the
format of the Mooncake FAST'25 traces: ``{"timestamp": ms, "input_length": tokens,
"output_length": tokens, "hash_ids": [...]}``), read as ``prompt_tokens=input_length,
output_length=output_tokens``. Rows are kept in file order, a trace's sorted by timestamp
(stable), so that row ``i`` is the ``i``-th send of the trace's replay
(:func:`trace_offsets`). A malformed file is an :class:`~perfkit.errors.InputError`
naming the file and line (Parquet: the row), before anything is written.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from perfkit.bench.inputs import read_text
from perfkit.errors import InputError, UsageError

FIELDS = ("prompt", "messages", "prompt_tokens", "output_tokens", "hash_ids", "timestamp")
MOONCAKE = {"prompt_tokens": "input_length", "output_tokens": "output_length", "hash_ids": "hash_ids",
            "timestamp": "timestamp"}
BLOCK_TOKENS = 512  # tokens per Mooncake hash id (the FAST'25 traces' block size)
FORMATS = (".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class Row:
    """One request of a data set; ``line`` is where it came from (1-based; Parquet: row)."""

    line: int
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    hash_ids: tuple[int, ...] = ()
    timestamp_ms: float | None = None


@dataclass(frozen=True)
class Dataset:
    path: str
    rows: list[Row]
    kind: str  # "dataset" or "mooncake"


def parse_columns(text: str | None) -> dict[str, str]:
    """``prompt=question,output_tokens=n`` -> ``{"prompt": "question", "output_tokens": "n"}``."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        field, sep, col = (s.strip() for s in part.partition("="))
        if not sep or not col:
            raise UsageError(f"--dataset-columns entries look like FIELD=COLUMN, got {part.strip()!r}")
        if field not in FIELDS:
            raise UsageError(f"--dataset-columns: unknown field {field!r} (choose from {', '.join(FIELDS)})")
        out[field] = col
    if text and not ({"prompt", "messages", "prompt_tokens"} & set(out)):
        raise UsageError("--dataset-columns must map one of prompt, messages or prompt_tokens")
    return out


def _records(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, object) of each record of the file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        except OSError as exc:
            raise UsageError(f"{path}: cannot read dataset: {exc}") from None
        except Exception as exc:  # pyarrow's ArrowInvalid: not a Parquet file
            raise InputError(path, None, f"not a Parquet file: {str(exc)[:200]}") from None
        yield from enumerate(table.to_pylist(), start=1)
        return
    text = read_text(path, "dataset")
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        try:
            for rec in reader:
                if None in rec:
                    header = len(reader.fieldnames or [])
                    raise InputError(path, reader.line_num, f"more cells than the header's {header}")
                yield reader.line_num, dict(rec)
        except csv.Error as exc:
            raise InputError(path, reader.line_num, f"not valid CSV: {exc}") from None
        return
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None
        if not isinstance(data, list):
            raise InputError(path, 1, "a .json dataset must be a list of objects")
        for i, rec in enumerate(data, start=1):
            if not isinstance(rec, dict):
                raise InputError(path, None, f"item {i} is not an object")
            yield i, rec
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, lineno, f"not valid JSON: {exc.msg}") from None
        if not isinstance(rec, dict):
            raise InputError(path, lineno, "each line must be a JSON object")
        yield lineno, rec


def _number(path: str, line: int, col: str, value: Any) -> float:
    """A finite number >= 0 (numeric text accepted, as CSV cells are text)."""
    try:
        v = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v >= 0):
        raise InputError(path, line, f"{col} must be a number >= 0, got {value!r}")
    return v


def _count(path: str, line: int, col: str, value: Any, allow_zero: bool = False) -> int:
    lo = 0 if allow_zero else 1
    try:
        v = _number(path, line, col, value)
    except InputError:
        v = -1.0
    if v != int(v) or v < lo:
        raise InputError(path, line, f"{col} must be an integer >= {lo}, got {value!r}")
    return int(v)


def _messages(path: str, line: int, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(path, line, "messages is not a JSON list") from None
    if not isinstance(value, list) or not value or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value):
        raise InputError(path, line, "messages must be a non-empty list of {role, content} strings")
    return value


def _row(path: str, line: int, rec: dict[str, Any], columns: dict[str, str]) -> Row:
    vals: dict[str, Any] = {}
    for field, col in columns.items():
        if col not in rec:
            raise InputError(path, line, f"no column {col!r} (for {field}; columns: {', '.join(map(str, rec))})")
        v = rec[col]
        if field == "prompt":
            if not isinstance(v, str) or not v:
                raise InputError(path, line, f"{col} must be a non-empty string")
        elif field == "messages":
            v = _messages(path, line, v)
        elif field in ("prompt_tokens", "output_tokens"):
            v = _count(path, line, col, v)
        elif field == "hash_ids":
            if isinstance(v, str):
                try:
                    v = json.loads(v)
                except json.JSONDecodeError:
                    v = None
            if not isinstance(v, list):
                raise InputError(path, line, f"{col} must be a list of integers")
            v = tuple(_count(path, line, col, h, allow_zero=True) for h in v)
        elif field == "timestamp":
            v = _number(path, line, col, v)
            field = "timestamp_ms"
        vals[field] = v
    return Row(line, **vals)


def load(path: str, columns: str | None = None) -> Dataset:
    """Read ``--dataset`` with its ``--dataset-columns`` mapping (default: by name, or Mooncake)."""
    if Path(path).suffix.lower() not in FORMATS:
        raise UsageError(f"--dataset {path}: unknown format (use {', '.join(FORMATS)})")
    mapping = parse_columns(columns)
    rows: list[Row] = []
    kind = "dataset"
    for line, rec in _records(path):
        if not rows and not mapping:
            if {"timestamp", "input_length", "output_length"} <= set(rec):
                kind, mapping = "mooncake", {k: v for k, v in MOONCAKE.items() if v in rec}
            else:
                mapping = {f: f for f in FIELDS if f in rec}
            if not ({"prompt", "messages", "prompt_tokens"} & set(mapping)):
                raise InputError(path, line, f"no prompt, messages or prompt_tokens column (columns: "
                                 f"{', '.join(map(str, rec))}); map one with --dataset-columns prompt=COL")
        rows.append(_row(path, line, rec, mapping))
    if not rows:
        raise InputError(path, None, "dataset holds no rows")
    if kind == "mooncake":
        rows.sort(key=lambda r: r.timestamp_ms or 0.0)  # stable: ties keep file order
    return Dataset(path, rows, kind)


def is_trace(path: str) -> bool:
    """Whether ``path`` is a Mooncake trace (a .jsonl whose first record has its fields)."""
    if Path(path).suffix.lower() != ".jsonl":
        return False
    try:
        for _, rec in _records(path):
            return {"timestamp", "input_length", "output_length"} <= set(rec)
    except UsageError:
        return False  # load() reports what is wrong with it
    return False


def trace_offsets(path: str) -> np.ndarray:
    """A Mooncake trace's send offsets in seconds (``timestamp`` ms, from the first), sorted."""
    p = Path(path)
    mtime = p.stat().st_mtime_ns if p.is_file() else 0
    return _trace_offsets(path, mtime).copy()


@functools.lru_cache(maxsize=4)
def _trace_offsets(path: str, mtime_ns: int) -> np.ndarray:
    """(cached: a stage asks for its offsets several times while a run is planned)"""
    ds = load(path)
    if ds.kind != "mooncake":
        raise InputError(path, None, "a .jsonl trace must be a Mooncake trace (timestamp, input_length, "
                         "output_length on each line)")
    ms = np.array([r.timestamp_ms or 0.0 for r in ds.rows], dtype=np.float64)
    return (ms - ms[0]) / 1000.0
