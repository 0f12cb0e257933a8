"""Prometheus HTTP API answers (``/api/v1/query_range`` matrix, ``/api/v1/query`` vector
or scalar) -> Telemetry, streamed so a 10-million-point answer keeps memory flat.

The JSON is read in chunks. Each ``"metric"`` object is parsed with ``json``;
the ``[ts,"value"]`` pairs that follow are not parsed one by one: the region
of complete pairs is stripped of brackets and quotes (``bytes.translate``) and
handed to ``numpy.fromstring(sep=",")``, which reads "NaN", "+Inf" and "-Inf"
like Prometheus writes them. A ``status: error`` envelope becomes one clear
error line. Prometheus writes ``metric`` before ``values`` in every result;
that order is relied on (other orders are refused with a clear message).
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np
import polars as pl

from perfkit.errors import InputError
from perfkit.ingest.frames import SAMPLES_SCHEMA, SERIES_SCHEMA, Telemetry, labels_json
from perfkit.ingest.promtext import unit_from_name

CHUNK_BYTES = 8 << 20
_HEAD = re.compile(rb'"(status|resultType|errorType|error)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_METRIC = re.compile(rb'"metric"\s*:\s*\{')
_VALUES = re.compile(rb'\s*,\s*"(values|value|histograms|histogram)"\s*:\s*\[')
_MATRIX_END = re.compile(rb'"\s*\]\s*\]')
_PAIR_END = re.compile(rb'"\s*\]')
_JSON_STR = rb'"(?:[^"\\]|\\.)*"'
# the end of a complete answer: last result ("}" or an empty "["), "]" of result,
# "}" of data, then either "}" or more envelope fields and "}".
_CLOSING = re.compile(rb'(?s)[\}\[]\s*\]\s*\}\s*(?:\}|,\s*"(?:warnings|infos|stats)"\s*:.*\})\s*$')
_OBJECT = re.compile(rb'\{(?:[^{}"]|' + _JSON_STR + rb')*\}')


@dataclass
class Batch:
    """New series (key, name, labels JSON) and the samples read since the last batch."""

    series: list[tuple[int, str, str]]
    keys: np.ndarray
    ts: np.ndarray
    values: np.ndarray


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _parse_pairs(region: bytes, path: str, line: "Callable[[], int]") -> np.ndarray:
    """``[t,"v"],[t,"v"]`` -> array of shape (n, 2); InputError if anything is off."""
    flat = region.translate(None, b'[]" \t\r\n').strip(b",")
    if not flat:
        return np.zeros((0, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            nums = np.fromstring(flat, sep=",")  # noqa: NPY201 (text mode is not deprecated)
        except (ValueError, DeprecationWarning):
            nums = None
    if nums is None or nums.size % 2 or nums.size != flat.count(b",") + 1:
        bad = _first_bad_pair(region)
        raise InputError(path, line(), f"bad sample {bad!r}: expected [unix_seconds, \"number\"]")
    return nums.reshape(-1, 2)


def _first_bad_pair(region: bytes) -> str:
    for m in re.finditer(rb"\[[^\[\]]*\]", region):
        try:
            ts, value = json.loads(m.group(0))
            float(ts), float(value)
            if not isinstance(value, str):
                raise ValueError
        except (ValueError, TypeError):
            return m.group(0)[:60].decode("utf-8", "replace")
    return region[:60].decode("utf-8", "replace")


def _check_envelope(head: bytes, path: str) -> str:
    """Read status/resultType from the start of the answer; raise on error envelopes."""
    fields: dict[str, str] = {}
    for m in _HEAD.finditer(head):
        fields.setdefault(m.group(1).decode(), json.loads(b'"' + m.group(2) + b'"'))
    status = fields.get("status")
    if status == "error":
        kind = fields.get("errorType", "error")
        raise InputError(path, 1, f"Prometheus answered status=error ({kind}): "
                                  f"{fields.get('error', 'no error message')}")
    if status != "success":
        if head.lstrip()[:1] not in (b"{",):
            raise InputError(path, 1, "not a Prometheus API answer (expected a JSON object)")
        raise InputError(path, 1, "not a Prometheus API answer: no \"status\":\"success\" near the start")
    rtype = fields.get("resultType")
    if rtype not in ("matrix", "vector", "scalar", "string"):
        raise InputError(path, 1, f"unknown or missing resultType {rtype!r}")
    return rtype


def iter_batches(fh: BinaryIO, path: str, default_name: str = "prom_range_result",
                 chunk_bytes: int = CHUNK_BYTES) -> Iterator[Batch]:
    """Stream an API answer as batches of series and samples."""
    head = fh.read(65536)
    rtype = _check_envelope(head, path)
    buf = head + fh.read(max(0, chunk_bytes - len(head)))
    base_line = 1
    tail_bytes = buf[-4096:]
    if rtype == "string":
        raise InputError(path, 1, "resultType string holds no samples")
    if rtype == "scalar":
        buf += fh.read()
        doc = _load_json(buf, path)
        ts, value = doc["data"]["result"]
        yield Batch([(0, default_name, "{}")], np.zeros(1, dtype=np.int64),
                    np.array([float(ts)]), np.array([float(value)]))
        return
    next_key = 0
    in_values = False
    single = False
    key = -1
    eof = False
    while True:
        pos = 0
        new_series: list[tuple[int, str, str]] = []
        key_parts, ts_parts, val_parts = [], [], []
        while True:
            if not in_values:
                m = _METRIC.search(buf, pos)
                if m is None:
                    pos = max(pos, len(buf) - 16)
                    break
                obj = _OBJECT.match(buf, m.end() - 1)
                if obj is None:
                    if eof:
                        raise InputError(path, base_line + _line_of(buf, m.start()) - 1,
                                         "truncated \"metric\" object")
                    pos = m.start()
                    break
                vm = _VALUES.match(buf, obj.end())
                if vm is None:
                    if len(buf) - obj.end() < 64:
                        if eof:
                            raise InputError(path, base_line + _line_of(buf, obj.end()) - 1,
                                             "truncated answer after a \"metric\" object")
                        pos = m.start()
                        break
                    raise InputError(path, base_line + _line_of(buf, obj.end()) - 1,
                                     "expected \"values\" or \"value\" right after \"metric\" "
                                     "(Prometheus' field order)")
                if vm.group(1).startswith(b"histogram"):
                    raise InputError(path, base_line + _line_of(buf, vm.start()) - 1,
                                     "native histogram samples are not supported; query a "
                                     "classic histogram or an expression over one")
                try:
                    metric = json.loads(obj.group(0))
                except ValueError as exc:
                    raise InputError(path, base_line + _line_of(buf, obj.start()) - 1,
                                     f"bad \"metric\" object: {exc}") from None
                name = str(metric.pop("__name__", default_name))
                key = next_key
                next_key += 1
                new_series.append((key, name, labels_json(metric)))
                single = vm.group(1) == b"value"
                in_values = True
                pos = vm.end() - (1 if single else 0)
            # in a values array (matrix) or at the single pair (vector)
            if not single:
                blank = pos
                while blank < len(buf) and buf[blank] in b" \t\r\n":
                    blank += 1
                if blank < len(buf) and buf[blank:blank + 1] == b"]":  # "values": []
                    in_values = False
                    pos = blank + 1
                    continue
            end = (_PAIR_END if single else _MATRIX_END).search(buf, pos)
            at = pos
            line = lambda: base_line + _line_of(buf, at) - 1  # noqa: E731 (only on errors)
            if end is not None:
                pairs = _parse_pairs(buf[pos:end.start() + 2], path, line)
                in_values = False
                pos = end.end()
            else:
                last = -1 if single else buf.rfind(b'"]', pos)
                if last < 0:
                    if eof:
                        raise InputError(path, line(), "truncated answer: values array not closed")
                    break
                pairs = _parse_pairs(buf[pos:last + 2], path, line)
                pos = last + 2
            if len(pairs):
                key_parts.append(np.full(len(pairs), key, dtype=np.int64))
                ts_parts.append(pairs[:, 0])
                val_parts.append(pairs[:, 1])
        if new_series or key_parts:
            yield Batch(new_series,
                        np.concatenate(key_parts) if key_parts else np.zeros(0, dtype=np.int64),
                        np.concatenate(ts_parts) if ts_parts else np.zeros(0),
                        np.concatenate(val_parts) if val_parts else np.zeros(0))
        if eof:
            if in_values:
                raise InputError(path, base_line, "truncated answer: values array not closed")
            if not _CLOSING.search(tail_bytes):
                raise InputError(path, base_line + _line_of(buf, len(buf)) - 1,
                                 "truncated answer: the JSON object is not closed")
            return  # what follows the last result (warnings, infos) holds no samples
        base_line += buf.count(b"\n", 0, pos)
        more = fh.read(chunk_bytes)
        tail_bytes = (tail_bytes + more)[-4096:]
        if not more:
            eof = True
        buf = buf[pos:] + more


def _load_json(data: bytes, path: str):
    try:
        return json.loads(data)
    except ValueError as exc:
        raise InputError(path, getattr(exc, "lineno", None), f"invalid JSON: {exc}") from None


def batches_to_telemetry(batches: Iterator[Batch]) -> Telemetry:
    """Collect a stream into one Telemetry (fine for modest answers; the CLI streams)."""
    series, keys, ts, values = [], [], [], []
    for b in batches:
        series += b.series
        keys.append(b.keys)
        ts.append(b.ts)
        values.append(b.values)
    if not series:
        return Telemetry(pl.DataFrame(schema=SERIES_SCHEMA), pl.DataFrame(schema=SAMPLES_SCHEMA))
    return Telemetry(series_frame(series), pl.DataFrame({
        "key": np.concatenate(keys), "ts_unix_s": np.concatenate(ts),
        "value": np.concatenate(values)}, schema=SAMPLES_SCHEMA))


def series_frame(series: list[tuple[int, str, str]]) -> pl.DataFrame:
    """(key, name, labels) tuples -> a series frame with unit from the name, type untyped."""
    return pl.DataFrame(
        {"key": [s[0] for s in series], "name": [s[1] for s in series],
         "labels": [s[2] for s in series],
         "unit": [unit_from_name(s[1]) for s in series],
         "type": ["untyped"] * len(series)},
        schema=SERIES_SCHEMA)


def read_bytes(data: bytes, path: str, default_name: str = "prom_range_result") -> Telemetry:
    """Parse a whole answer held in memory."""
    import io

    return batches_to_telemetry(iter_batches(io.BytesIO(data), path, default_name))
