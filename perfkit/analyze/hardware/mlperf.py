"""MLPerf Inference *published results* (``summary_results.json`` or a submitter's ``summary.csv``).

These are the results tables MLCommons publishes, one row per (system, model,
scenario) result; not the LoadGen logs of a single run, which
:mod:`perfkit.ingest.mlperf` imports into the store as a run. A results table
has no per-request data and is never stored: it is read here into a frame and
compared with the catalog (:func:`perfkit.analyze.hardware.compare.mlperf_metrics`).
The *Server* scenario is throughput under the benchmark's latency bound,
*Offline* is raw throughput; results are divided by the accelerator count.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from perfkit.errors import InputError

_JSON_FIELDS = {
    "ID": "id", "Submitter": "submitter", "System": "system", "Platform": "platform",
    "Model": "model", "Scenario": "scenario", "Accuracy": "accuracy", "Accelerator": "accelerator",
    "a#": "accelerator_count", "Software": "software", "has_power": "has_power",
    "Performance_Result": "performance", "Performance_Units": "performance_units",
    "Power_Result": "power_w", "Power_Units": "power_units", "Category": "division",
    "Availability": "availability",
}
_CSV_FIELDS = {
    "Organization": "submitter", "SystemName": "system", "Platform": "platform", "Model": "model",
    "Scenario": "scenario", "Accuracy": "accuracy", "accelerator_model_name": "accelerator",
    "accelerators_per_node": "accelerator_count", "framework": "software", "has_power": "has_power",
    "Result": "performance", "Units": "performance_units", "Division": "division",
    "Availability": "availability", "number_of_nodes": "nodes",
}
_REQUIRED = ("system", "model", "scenario", "accelerator", "accelerator_count", "performance",
             "performance_units")
#: The columns of :func:`load_mlperf_results` before the two derived ones.
COLUMNS = ("id", "submitter", "system", "platform", "model", "scenario", "accuracy", "accelerator",
           "accelerator_count", "software", "has_power", "performance", "performance_units",
           "power_w", "division", "availability")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _as_float(value: Any, path: str, line: int | None, field: str) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(path, line, f"{field}: {value!r} is not a number") from None
    if out < 0:
        raise InputError(path, line, f"{field}: {value!r} is negative")
    return out


def _normalize(record: dict[str, Any], path: str, line: int | None, where: str) -> dict[str, Any]:
    row = dict(record)
    missing = [f for f in _REQUIRED if f not in row]
    if missing:
        raise InputError(path, line, f"{where}missing field(s): {', '.join(missing)}")
    row["performance"] = _as_float(row["performance"], path, line, f"{where}performance")
    row["accelerator_count"] = _as_float(row["accelerator_count"], path, line, f"{where}accelerator count")
    row["has_power"] = _as_bool(row.get("has_power", False))
    power = _as_float(row.get("power_w"), path, line, f"{where}Power_Result") if row["has_power"] else math.nan
    if row["has_power"] and str(row.get("power_units", "Watts")).lower() not in ("watts", "w"):
        power = math.nan  # energy-per-stream results (Joules) are not comparable as perf/W
    row["power_w"] = power
    return row


def _json_rows(text: str, path: str) -> list[dict[str, Any]]:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None
    rows = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(path, None, f"entry {i}: expected an object")
        row = {_JSON_FIELDS[k]: v for k, v in rec.items() if k in _JSON_FIELDS}
        rows.append(_normalize(row, path, None, f"entry {i} ({rec.get('ID', '?')}): "))
    return rows


def _csv_rows(text: str, path: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "Result" not in reader.fieldnames:
        raise InputError(path, 1, "not an MLPerf summary: expected a JSON list or a CSV "
                                  "header with Organization, SystemName, ..., Result, Units")
    rows = []
    for rec in reader:
        row = {_CSV_FIELDS[k]: v for k, v in rec.items() if k in _CSV_FIELDS}
        rows.append(_normalize(row, path, reader.line_num, ""))
    return rows


def load_mlperf_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """MLPerf Inference results, from ``summary_results.json`` or a ``summary.csv``.

    Columns: :data:`COLUMNS` plus ``perf_per_accelerator`` (performance /
    accelerator count) and ``perf_per_w`` (performance / power_w where has_power).
    A malformed file raises ``InputError`` naming the line (CSV, JSON syntax)
    or the entry (JSON records).
    """
    spath = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(spath, None, f"cannot read: {exc.strerror}") from None
    rows = _json_rows(text, spath) if text.lstrip().startswith("[") else _csv_rows(text, spath)
    frame = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["perf_per_accelerator"] = frame["performance"] / frame["accelerator_count"].where(
            frame["accelerator_count"] > 0)
        frame["perf_per_w"] = frame["performance"] / frame["power_w"]
    return frame


def load_mlperf_files(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Several MLPerf summary files read into one frame (an empty one, with the columns, for none)."""
    frames = [load_mlperf_results(p) for p in paths]
    if not frames:
        return pd.DataFrame(columns=[*COLUMNS, "perf_per_accelerator", "perf_per_w"])
    return pd.concat(frames, ignore_index=True)
