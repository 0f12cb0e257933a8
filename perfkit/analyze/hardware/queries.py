"""The store, read for hardware comparison: runs tagged with a hardware label, and their power.

Two parameterized queries over ``runs`` (and ``sources``/``series``/``samples``
for power); the label key is a bound value, never spliced into the SQL. What
the rows mean per device is worked out by the pure
:func:`perfkit.analyze.hardware.compare.per_device_runs`.
"""
from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd

from perfkit import store
from perfkit.analyze.hardware.compare import RUN_COLUMNS, capacity_at_slo, per_device_runs
from perfkit.names import GPU_POWER, LABEL_DEVICES, LABEL_HARDWARE
from perfkit.paths import db_path, parquet_location

# Run-summary fields by their JSON paths, which the summary contract (perfkit.summary.RunSummary)
# keeps stable for SQL readers; a run imported without a field reads NULL there.
_RUNS_SQL = """
SELECT run_id,
       json_extract_string(labels, '$.' || ?) AS hardware,
       started_at, status, intended_rate_rps, duration_s,
       CAST(json_extract(summary, '$.achieved_rate_rps') AS DOUBLE) AS achieved_rate_rps,
       CAST(json_extract(summary, '$.latency_ms.p99') AS DOUBLE) AS p99_ms,
       CAST(json_extract(summary, '$.latency_ms.p50') AS DOUBLE) AS p50_ms,
       CAST(json_extract(summary, '$.latency_ci_ms.p99[0]') AS DOUBLE) AS p99_ci_low_ms,
       CAST(json_extract(summary, '$.latency_ci_ms.p99[1]') AS DOUBLE) AS p99_ci_high_ms,
       CAST(json_extract(summary, '$.requests') AS BIGINT) AS requests,
       CAST(json_extract(summary, '$.ok') AS BIGINT) AS ok,
       CAST(json_extract(summary, '$.output_tokens_per_s') AS DOUBLE) AS output_tokens_per_s,
       CAST(json_extract(summary, '$.valid') AS BOOLEAN) AS valid,
       json_extract_string(labels, '$.' || ?) AS devices_label
FROM runs
WHERE json_extract_string(labels, '$.' || ?) IS NOT NULL
ORDER BY hardware, intended_rate_rps, started_at
"""

# Per run: the sum over its power series of each series' mean, counting only samples of
# sources attached to the run and inside its window [t0, t0 + duration] (when known).
_POWER_SQL = """
WITH r AS (
    SELECT run_id, t0_unix_s AS t0, t0_unix_s + duration_s AS t1 FROM runs
    WHERE json_extract_string(labels, '$.' || ?) IS NOT NULL
),
per_series AS (
    SELECT r.run_id, se.series_id, avg(sa.value) AS mean_w, count(*) AS n
    FROM r
    JOIN sources so ON so.run_id = r.run_id
    JOIN series se ON se.source_id = so.source_id
    JOIN samples sa ON sa.series_id = se.series_id
    WHERE se.name = ?
      AND sa.value IS NOT NULL AND NOT isnan(sa.value)
      AND (r.t0 IS NULL OR r.t1 IS NULL OR sa.ts_unix_s IS NULL OR sa.ts_unix_s BETWEEN r.t0 AND r.t1)
    GROUP BY r.run_id, se.series_id
)
SELECT run_id, sum(mean_w) AS mean_power_w, CAST(sum(n) AS BIGINT) AS power_samples
FROM per_series GROUP BY run_id
"""


def labelled_runs(con: duckdb.DuckDBPyConnection, label_key: str = LABEL_HARDWARE,
                  power_series: str = GPU_POWER) -> pd.DataFrame:
    """Runs tagged ``label_key=NAME`` as recorded (whole server, not per device), one row each.

    Columns: the summary's load, latency and token figures, ``devices_label`` (the
    ``devices=N`` label, text) and the run's mean power in W from its telemetry
    (``mean_power_w``, NaN without telemetry; ``power_samples``).
    """
    frame = con.execute(_RUNS_SQL, [label_key, LABEL_DEVICES, label_key]).df()
    power = con.execute(_POWER_SQL, [label_key, power_series]).df()
    frame = frame.merge(power, on="run_id", how="left")
    frame["power_samples"] = frame["power_samples"].fillna(0).astype(int)
    return frame


def measured_runs(con: duckdb.DuckDBPyConnection, label_key: str = LABEL_HARDWARE,
                  power_series: str = GPU_POWER) -> pd.DataFrame:
    """Runs tagged ``label_key=NAME`` with their load, P99, throughput and power per device."""
    return per_device_runs(labelled_runs(con, label_key, power_series))


def runs_from_store(db: str | os.PathLike[str] | None = None, label_key: str = LABEL_HARDWARE) -> pd.DataFrame:
    """:func:`measured_runs` of the store at ``db``; an empty frame when there is no store yet."""
    path = db_path(db or None)
    if parquet_location(db or None) is None and str(path) != ":memory:" and not Path(path).exists():
        return pd.DataFrame(columns=list(RUN_COLUMNS))
    with store.connect(db or None, read_only=True, quiet=True) as con:
        return measured_runs(con, label_key)


def capacity_from_store(db: str | os.PathLike[str] | None, slo_p99_ms: float,
                        label_key: str = LABEL_HARDWARE) -> pd.DataFrame | None:
    """:func:`~perfkit.analyze.hardware.compare.capacity_at_slo` of the store's labelled runs;
    None when there are none (then costs fall back to given or scaled throughputs)."""
    runs = runs_from_store(db, label_key)
    return capacity_at_slo(runs, slo_p99_ms) if not runs.empty else None
