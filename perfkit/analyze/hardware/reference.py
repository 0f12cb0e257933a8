"""The shipped MLPerf reference table: one row per performance run of a results tree.

``perfkit reference mlperf TREE --out PATH`` rebuilds it from a results tree
(read by :mod:`perfkit.ingest.mlperf_results`, the same reader as ``perfkit
ingest mlperf-results``), so the next round is one command away. The v4.1 table
ships in ``perfkit/data/reference/`` with its source and retrieval date in the
sidecar ``.md``. ``result`` is in ``units`` (spelled as ``Performance_Units``
spells them); ``result_per_accelerator`` = result / accelerators, for throughput
units only (a latency is not divided); ``power_w`` is the measured mean system
power of a power run (empty otherwise) and ``energy_mj_per_query`` its
SingleStream/MultiStream energy per query.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from perfkit.errors import UsageError
from perfkit.paths import display_path

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "data" / "reference"
#: The table shipped with perfkit.
SHIPPED = REFERENCE_DIR / "mlperf-inference-v4.1.csv"
_PCTS = ("p50", "p90", "p95", "p97", "p99", "p999")
#: Columns of the reference table, in order.
COLUMNS = ("location", "round", "division", "submitter", "system", "accelerator", "accelerator_name",
           "accelerators", "model", "scenario", "result", "units", "result_per_accelerator",
           "samples_per_s", "tokens_per_s", "target_qps", "scheduled_samples_per_s", "power_w",
           "energy_mj_per_query", "valid", *(f"latency_{p}_ms" for p in _PCTS),
           *(f"ttft_{p}_ms" for p in _PCTS), *(f"tpot_{p}_ms" for p in _PCTS),
           "latency_bound_ms", "ttft_bound_ms", "tpot_bound_ms", "run_id")
THROUGHPUT_UNITS = ("Samples/s", "Tokens/s", "Queries/s")


def reference_row(run: dict[str, Any]) -> dict[str, Any]:
    """One ``runs`` row of an MLPerf tree import, flattened to the reference columns."""
    labels, s = run["labels"], run["summary"]
    accelerators = float(labels["accelerators"])
    row: dict[str, Any] = {k: labels[k] for k in ("location", "round", "division", "submitter", "system",
                                                   "accelerator", "accelerator_name", "model", "scenario")}
    per = s["result"] / accelerators if accelerators and s["units"] in THROUGHPUT_UNITS else math.nan
    row.update(accelerators=accelerators, result=s["result"], units=s["units"], result_per_accelerator=per,
               samples_per_s=s.get("completed_samples_per_s", s.get("samples_per_s")),
               tokens_per_s=s.get("output_tokens_per_s"), target_qps=s.get("target_qps"),
               scheduled_samples_per_s=s.get("scheduled_samples_per_s"), power_w=s.get("power_w"),
               energy_mj_per_query=s.get("energy_mj_per_query"), valid=s.get("valid"),
               latency_bound_ms=s.get("latency_bound_ms"), ttft_bound_ms=s.get("ttft_bound_ms"),
               tpot_bound_ms=s.get("tpot_bound_ms"), run_id=run["run_id"])
    for p in _PCTS:
        row[f"latency_{p}_ms"] = (s.get("latency_ms") or {}).get(p)
        row[f"ttft_{p}_ms"] = (s.get("ttft_ms") or {}).get(p)
        row[f"tpot_{p}_ms"] = (s.get("tpot_ms") or {}).get(p)
    return row


def build_reference(tree: str | os.PathLike[str], round_name: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The reference table of a results tree, and one line per run that could not be read."""
    from perfkit.ingest import mlperf_results

    rows, problems = [], []
    for tel, _sha, problem in mlperf_results.read_tree(tree, round_name):
        if tel is None or tel.run is None:
            problems.append(str(problem))
        else:
            rows.append(reference_row(tel.run))
    return pd.DataFrame(rows, columns=list(COLUMNS)), problems


def write_reference(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """CSV or Parquet, by the extension of ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False, float_format="%.8g")
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        raise UsageError(f"--out {path}: expected a .csv or .parquet file name")


def load_reference(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """A reference table (the shipped v4.1 one by default), CSV or Parquet."""
    path = Path(path) if path else SHIPPED
    frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    missing = [c for c in ("location", "accelerator", "accelerators", "model", "scenario", "result", "units")
               if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: not an MLPerf reference table (missing {', '.join(missing)})")
    frame.attrs["path"] = display_path(path)  # reports show it: no absolute checkout path
    return frame


def reproduce_official(frame: pd.DataFrame, official: list[dict[str, Any]], result_tol: float = 1e-3,
                       power_tol: float = 1e-2) -> pd.DataFrame:
    """Each official ``summary_results.json`` row checked against the table built from the tree.

    A row is reproduced when a run at its ``Location`` has the same units and
    a result within ``result_tol`` (relative), and, where it has power, the
    ``Power_Result`` within ``power_tol`` in its ``Power_Units`` (Watts: ``power_w``;
    millijoules: ``energy_mj_per_query``). Columns: location, reproduced, why.
    """
    by_location = frame.drop_duplicates("location").set_index("location")
    out = []
    for rec in official:
        location, why = rec["Location"], []
        if location not in by_location.index:
            why.append("no run at this location in the tree")
        else:
            row = by_location.loc[location]
            want = float(rec["Performance_Result"])
            if row["units"] != rec["Performance_Units"]:
                why.append(f"units {row['units']} vs {rec['Performance_Units']}")
            elif not abs(row["result"] - want) <= result_tol * abs(want):
                why.append(f"result {row['result']:g} vs {want:g}")
            if rec.get("has_power"):
                column = "power_w" if rec.get("Power_Units") == "Watts" else "energy_mj_per_query"
                power = float(rec["Power_Result"])
                if not abs(float(row[column]) - power) <= power_tol * power:
                    why.append(f"{column} {row[column]:g} vs {power:g}")
        out.append({"location": location, "reproduced": not why, "why": "; ".join(why)})
    return pd.DataFrame(out, columns=["location", "reproduced", "why"])
