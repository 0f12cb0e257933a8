"""A stored sweep as the 09 report shows it: its steps, the knee and where it over-saturated.

A sweep's steps are runs labelled ``sweep=<id>`` (``perfkit sweep``). Each step's
latency percentile comes with its order-statistic interval from the store; the
knee is :func:`perfkit.analyze.knee.kneedle` over the steps in the order of their
intended rate, and each step is tested for over-saturation with
:func:`perfkit.analyze.saturation.oversaturation` over its per-second arrival and
completion counts (:func:`perfkit.store.runs.flow_bins`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from perfkit.analyze.knee import DEFAULT_KNEE_METRIC, DEFAULT_SENSITIVITY, KneeMetric, kneedle, parse_metric
from perfkit.analyze.saturation import EPSILON, WINDOW_S, Saturation, oversaturation
from perfkit.names import LABEL_SWEEP
from perfkit.store import StoreError, parse_label
from perfkit.store import runs as store_runs


def step_saturation(con: duckdb.DuckDBPyConnection, run_id: str, window_s: float = WINDOW_S,
                    epsilon: float = EPSILON) -> Saturation:
    """The over-saturation test of one run, in 1 s bins, with the median latency by send time."""
    bins = store_runs.flow_bins(con, run_id, 1.0)
    return oversaturation(bins["arrivals"].to_numpy(), bins["completions"].to_numpy(),
                          bins["median_latency_ms"].to_numpy(dtype=float), 1.0, window_s, epsilon)


def resolve_sweep(con: duckdb.DuckDBPyConnection, sweep: str = "") -> str:
    """A sweep id from ``sweep``: an id, a label selector ``k=v,...`` (the newest sweep among the runs
    it selects, e.g. ``suite=...,case=sweep``), or empty (the newest sweep in the store)."""
    sweep = sweep.strip()
    if sweep and "=" not in sweep:
        return sweep
    wanted = parse_label(sweep)
    for label in store_runs.list_runs(con)["label"]:          # newest first
        labels = parse_label(label)
        if LABEL_SWEEP in labels and all(labels.get(k) == v for k, v in wanted.items()):
            return labels[LABEL_SWEEP]
    raise StoreError(f"no sweep among the runs{' labelled ' + sweep if sweep else ''} (run `perfkit sweep`)")


@dataclass
class SweepReport:
    """One sweep's steps (``steps``, by intended rate), its knee and its first over-saturated step."""

    sweep_id: str
    metric: KneeMetric
    sensitivity: float
    steps: pd.DataFrame
    knee: int | None               # row of ``steps``
    saturated_from: int | None     # row of ``steps``: the first over-saturated step

    @property
    def run_id(self) -> str:
        """The step the headline names: the knee's, else the last."""
        return str(self.steps["run_id"].iloc[-1 if self.knee is None else self.knee])

    def row(self, i: int | None) -> dict[str, Any] | None:
        """Step ``i`` as a plain dict (None for None)."""
        return None if i is None else {k: _plain(v) for k, v in self.steps.iloc[i].to_dict().items()}

    def table(self) -> pd.DataFrame:
        """The steps as a plain table: rates, the metric with its interval and n, errors, the marks."""
        t = self.steps.copy()
        t["knee"] = [i == self.knee for i in range(len(t))]
        return t[["intended_rps", "achieved_rps", "value_ms", "lo_ms", "hi_ms", "n", "requests",
                  "error_fraction", "oversaturated", "knee", "saturation", "run_id"]].rename(
            columns={"value_ms": f"{self.metric.name}_ms"})

    def summary(self) -> str:
        """``knee at 38 req/s (latency_p99 41 ms); over-saturated from 60 req/s`` (or what was not found)."""
        k = self.row(self.knee)
        parts = [f"knee at {k['achieved_rps']:,.3g} req/s ({self.metric.name} {k['value_ms']:,.3g} ms)" if k
                 else "no knee found"]
        s = self.row(self.saturated_from)
        parts.append(f"over-saturated from {s['intended_rps']:,.3g} req/s" if s else "never over-saturated")
        return "; ".join(parts) + f" ({len(self.steps)} steps)"

    def figures(self) -> dict[str, str]:
        """The headline figures for the report index."""
        k, s = self.row(self.knee), self.row(self.saturated_from)
        return {
            "Knee": (f"{k['achieved_rps']:,.3g} req/s achieved ({k['intended_rps']:,.3g} intended), "
                     f"{self.metric.name} {k['value_ms']:,.3g} ms (n={k['n']:,})") if k else "none found",
            "Over-saturated from": f"{s['intended_rps']:,.3g} req/s" if s else "never",
            "Steps": f"{len(self.steps)}, {self.steps['intended_rps'].min():,.3g}–"
                     f"{self.steps['intended_rps'].max():,.3g} req/s" if len(self.steps) else "0",
        }


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


_COLUMNS = ["run_id", "intended_rps", "achieved_rps", "requests", "error_fraction", "value_ms", "lo_ms",
            "hi_ms", "n", "oversaturated", "saturation"]


def load(con: duckdb.DuckDBPyConnection, sweep: str = "", metric: str = DEFAULT_KNEE_METRIC,
         sensitivity: float = DEFAULT_SENSITIVITY, window_s: float = WINDOW_S,
         epsilon: float = EPSILON) -> SweepReport:
    """The report of a stored sweep (``sweep``: see :func:`resolve_sweep`); steps still running are left
    out. Counts and the achieved rate (successes per second from the first intended send to the last
    response) come from the requests table, so that any stored run labelled ``sweep=<id>`` will do."""
    km = parse_metric(metric)
    sweep_id = resolve_sweep(con, sweep)
    runs = {r: store_runs.get_run(con, r) for r in store_runs.select_runs(con, {LABEL_SWEEP: sweep_id})}
    ids = [r for r, row in runs.items() if row.get("status") != "running"]
    flows = store_runs.stage_rates(con, ids).groupby("run_id").agg(
        requests=("requests", "sum"), ok=("ok", "sum"), achieved=("achieved_rate_rps", "max"))
    rows = []
    for run_id in ids:
        if run_id not in flows.index:
            continue
        n, ok, achieved = flows.loc[run_id, ["requests", "ok", "achieved"]]
        est = store_runs.percentiles(con, run_id, km.column, [km.q])[km.q]
        sat = step_saturation(con, run_id, window_s, epsilon)
        rows.append([run_id, runs[run_id].get("intended_rate_rps"), achieved, int(n), 1.0 - ok / n if n else 1.0,
                     est.value, est.lo, est.hi, est.n, sat.oversaturated, sat.reason])
    if not rows:
        raise StoreError(f"sweep {sweep_id}: no finished step in the store")
    steps = pd.DataFrame(rows, columns=_COLUMNS).sort_values("intended_rps", kind="stable").reset_index(drop=True)
    for col in ("intended_rps", "achieved_rps", "value_ms", "lo_ms", "hi_ms"):
        steps[col] = steps[col].astype(float)
    knee = kneedle(steps["achieved_rps"].tolist(), steps["value_ms"].tolist(), sensitivity)
    over = [i for i, v in enumerate(steps["oversaturated"]) if v is True]
    return SweepReport(sweep_id, km, sensitivity, steps, knee, over[0] if over else None)
