"""``perfkit sweep``: the latency-throughput curve over rates, its knee, the over-saturation stop,
and the highest rate within an SLO.

Every step is a real, stored run labelled ``sweep=<id>,rate=<r>``, so the curve can
be rebuilt later with :func:`curve` or :func:`perfkit.analyze.sweep_report.load`
(notebook 09) and every point drilled into.

* Rates: ``--rates`` in increasing order, or with ``--find-knee`` alone a geometric
  series from the start rate (``--rate``, else 10) times ``--rate-factor`` up to
  ``--max-rate`` or ``--max-steps``.
* Over-saturation stop: after each step its per-second arrivals and completions are
  tested (:mod:`perfkit.analyze.saturation`: completions short of arrivals by more
  than epsilon over a sustained window, the backlog growing); the first
  over-saturated step (or one where no request succeeded) ends the sweep, no higher
  rate is run (``--find-max`` probes on, a step over-saturated counts as a miss). Each point records
  ``oversaturated`` and the test's details; the result ``oversaturated_at_rps``.
* The knee (``kneedle``): Kneedle on achieved throughput against ``--knee-metric``
  (a latency percentile, e.g. ``latency_p99``, ``ttft_p99``), see
  :mod:`perfkit.analyze.knee`.
* ``knee`` (kept for its old readers): a rule of thumb, the highest intended rate
  whose run kept up (achieved >= 95% of intended, no more than 1% errors) and whose
  P99 is within 2x the P99 of the lowest rate swept.
* ``--find-max`` brackets (doubling the rate from the start rate until a step misses
  the SLO) then bisects until the bracket is narrower than ``--tolerance`` of the
  rate; a step *passes* when it kept up and its P99 (over successful requests) is
  <= the SLO.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable

import duckdb
import pandas as pd

from perfkit import jsonsafe, store
from perfkit.analyze import saturation, sweep_report
from perfkit.analyze.knee import DEFAULT_KNEE_METRIC, DEFAULT_SENSITIVITY, parse_metric
from perfkit.bench.config import BenchConfig
from perfkit.bench.queries import sweep_summaries
from perfkit.bench.runner import new_run_id, run
from perfkit.errors import UsageError
from perfkit.names import LABEL_SWEEP
from perfkit.summary import FORMAT_VERSION, RunSummary, SummaryError

KEEP_UP_FRACTION = 0.95
MAX_ERROR_FRACTION = 0.01
KNEE_P99_FACTOR = 2.0


def point(summary: RunSummary) -> dict[str, Any]:
    """One curve point from a run summary."""
    lat = summary["latency_ms"]
    n = summary["requests"]
    return {"run_id": summary["run_id"], "intended_rps": summary["intended_rate_rps"],
            "achieved_rps": summary["achieved_rate_rps"], "requests": n,
            "p50_ms": lat["p50"], "p99_ms": lat["p99"], "p99_n": lat["n"],
            "error_fraction": (n - summary["ok"]) / n if n else 1.0, "valid": summary["valid"],
            "status": summary["status"]}


def kept_up(p: dict[str, Any]) -> bool:
    return bool(p["intended_rps"] and p["achieved_rps"] is not None
                and p["achieved_rps"] >= KEEP_UP_FRACTION * p["intended_rps"]
                and p["error_fraction"] <= MAX_ERROR_FRACTION and p["status"] == "completed")


def passes(p: dict[str, Any], slo_p99_ms: float) -> bool:
    return kept_up(p) and p["p99_ms"] is not None and p["p99_ms"] <= slo_p99_ms


def knee(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The highest rate that kept up with P99 within 2x the lowest rate's P99 (see module doc)."""
    pts = sorted((p for p in points if p["intended_rps"]), key=lambda p: p["intended_rps"])
    base = next((p["p99_ms"] for p in pts if p["p99_ms"] is not None), None)
    if base is None:
        return None
    best = None
    for p in pts:
        if kept_up(p) and p["p99_ms"] is not None and p["p99_ms"] <= KNEE_P99_FACTOR * base:
            best = p
        else:
            break
    return best


def _with_rate(cfg: BenchConfig, rate: float, sweep_id: str) -> BenchConfig:
    if len(cfg.stages) != 1 or cfg.stages[0].pattern not in ("constant", "poisson", "gamma"):
        raise UsageError("sweep needs one stage with pattern constant, poisson or gamma")
    stage = dataclasses.replace(cfg.stages[0], rate_rps=float(rate))
    label = ",".join(x for x in (cfg.label, f"{LABEL_SWEEP}={sweep_id}", f"rate={rate:g}") if x)
    return dataclasses.replace(cfg, stages=[stage], label=label, summary_json=None,
                               tags={**cfg.tags, LABEL_SWEEP: sweep_id, "rate": f"{rate:g}"})


@dataclasses.dataclass(frozen=True)
class KneeSearch:
    """How a sweep judges its steps: the knee's metric and sensitivity, the over-saturation test."""

    metric: str = DEFAULT_KNEE_METRIC
    sensitivity: float = DEFAULT_SENSITIVITY
    window_s: float = saturation.WINDOW_S
    epsilon: float = saturation.EPSILON


def _step(cfg: BenchConfig, rate: float, sweep_id: str, search: KneeSearch) -> dict[str, Any]:
    """Run one step; its curve point with the over-saturation verdict."""
    p = point(run(_with_rate(cfg, rate, sweep_id)))
    with store.connect(cfg.db, read_only=True) as con:
        sat = sweep_report.step_saturation(con, p["run_id"], search.window_s, search.epsilon)
    p["oversaturated"] = sat.oversaturated
    p["saturation"] = sat.to_dict()
    return p


def _knee_search(cfg: BenchConfig, sweep_id: str, points: list[dict[str, Any]], search: KneeSearch
                 ) -> dict[str, Any]:
    """The Kneedle knee over the stored steps, each point's metric with its interval, where it over-saturated."""
    with store.connect(cfg.db, read_only=True) as con:
        rep = sweep_report.load(con, sweep_id, search.metric, search.sensitivity, search.window_s, search.epsilon)
    by_run = {r["run_id"]: r for r in rep.steps.to_dict("records")}
    for p in points:
        r = by_run.get(p["run_id"], {})
        p["knee_metric_ms"] = {"value": r.get("value_ms"), "lo": r.get("lo_ms"), "hi": r.get("hi_ms"),
                               "n": r.get("n")}
    over = min((p["intended_rps"] for p in points if p.get("oversaturated")), default=None)
    return {"knee_metric": search.metric, "knee_method": "kneedle", "knee_sensitivity": search.sensitivity,
            "kneedle": rep.row(rep.knee), "oversaturated_at_rps": over, "headline": rep.summary()}


def sweep_rates(cfg: BenchConfig, rates: list[float], sweep_id: str | None = None,
                on_point: Callable[[dict[str, Any]], None] | None = None,
                search: KneeSearch = KneeSearch()) -> dict[str, Any]:
    """Run ``cfg`` at each rate in turn, stopping after the first over-saturated step; the points,
    the knee rule, the Kneedle knee and where it over-saturated."""
    sweep_id = sweep_id or new_run_id()
    points = []
    for rate in rates:
        p = _step(cfg, rate, sweep_id, search)
        points.append(p)
        if on_point:
            on_point(p)
        if p["oversaturated"] or p["status"] == "failed":  # nothing higher can do better
            break
    return {"sweep_id": sweep_id, "points": points, "knee": knee(points),
            **_knee_search(cfg, sweep_id, points, search)}


def geometric_rates(start_rps: float, factor: float, max_rps: float, max_steps: int) -> list[float]:
    """``start, start*factor, ...`` while <= ``max_rps``, at most ``max_steps`` rates (--find-knee)."""
    if start_rps <= 0 or factor <= 1 or max_steps < 1:
        raise UsageError("--find-knee needs a start rate > 0, --rate-factor > 1 and --max-steps >= 1")
    out: list[float] = []
    rate = start_rps
    while rate <= max_rps and len(out) < max_steps:
        out.append(round(rate, 6))
        rate *= factor
    return out


def find_max(cfg: BenchConfig, slo_p99_ms: float, start_rps: float, max_rps: float, tolerance: float = 0.05,
             sweep_id: str | None = None, on_point: Callable[[dict[str, Any]], None] | None = None,
             search: KneeSearch = KneeSearch()) -> dict[str, Any]:
    """Highest rate whose P99 meets ``slo_p99_ms``: bracket by doubling, then bisect."""
    if not slo_p99_ms or slo_p99_ms <= 0:
        raise UsageError("--find-max needs --slo-p99-ms MS")
    if not 0 < tolerance < 1:
        raise UsageError("--tolerance must be between 0 and 1")
    sweep_id = sweep_id or new_run_id()
    points: list[dict] = []

    def probe(rate: float) -> bool:
        p = _step(cfg, rate, sweep_id, search)
        p["passes_slo"] = passes(p, slo_p99_ms) and not p["oversaturated"]
        points.append(p)
        if on_point:
            on_point(p)
        return p["passes_slo"]

    lo, hi = None, None
    rate = start_rps
    while rate <= max_rps:
        if probe(rate):
            lo = rate
            rate *= 2
        else:
            hi = rate
            break
    if lo is None:
        best = None
    else:
        if hi is None:
            hi = max_rps
        while (hi - lo) / lo > tolerance:
            mid = (lo + hi) / 2
            if probe(mid):
                lo = mid
            else:
                hi = mid
        best = lo
    return {"sweep_id": sweep_id, "slo_p99_ms": slo_p99_ms, "max_rate_rps": best, "points": points,
            "knee": knee(points), "bracket_rps": [lo, hi], **_knee_search(cfg, sweep_id, points, search)}


def curve(con: duckdb.DuckDBPyConnection, sweep_id: str) -> pd.DataFrame:
    """The latency-throughput curve of a stored sweep, one row per run, by intended rate."""
    try:
        pts = [point(s) for s in sweep_summaries(con, sweep_id)]
    except SummaryError as exc:
        raise UsageError(f"sweep {sweep_id}: {exc}") from None
    frame = pd.DataFrame(pts, columns=["run_id", "intended_rps", "achieved_rps", "requests", "p50_ms", "p99_ms",
                                       "p99_n", "error_fraction", "valid", "status"])
    return frame.sort_values("intended_rps", kind="stable").reset_index(drop=True)


def _fmt(v, spec=",.1f") -> str:
    return "-" if v is None else format(v, spec)


def _print_point(p: dict) -> None:
    mark = "" if "passes_slo" not in p else ("  pass" if p["passes_slo"] else "  MISS")
    if p.get("oversaturated"):
        mark += "  OVER-SATURATED"
    print(f"{_fmt(p['intended_rps']):>12} {_fmt(p['achieved_rps']):>12} {_fmt(p['p50_ms'], ',.2f'):>10} "
          f"{_fmt(p['p99_ms'], ',.2f'):>10} {100 * p['error_fraction']:>7.2f}% {str(p['valid']):>6}  "
          f"{p['run_id']}{mark}", flush=True)


def _rates(args: argparse.Namespace) -> list[float]:
    """The rates to run: --rates ascending, or with --find-knee alone a geometric series."""
    if not args.rates:
        return geometric_rates(args.start_rate or 10.0, args.rate_factor, args.max_rate, args.max_steps)
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        raise UsageError(f"--rates must be numbers separated by commas, got {args.rates!r}") from None
    if not rates or any(r <= 0 for r in rates):
        raise UsageError("--rates must be > 0")
    return sorted(rates)


def _search(args: argparse.Namespace) -> KneeSearch:
    try:
        parse_metric(args.knee_metric)
    except ValueError as exc:
        raise UsageError(f"--knee-metric: {exc}") from None
    if not 0 < args.saturation_epsilon < 1 or args.saturation_window_s <= 0:
        raise UsageError("--saturation-epsilon must be between 0 and 1 and --saturation-window-s > 0")
    return KneeSearch(args.knee_metric, args.knee_sensitivity, args.saturation_window_s, args.saturation_epsilon)


def _print_end(result: dict[str, Any], search: KneeSearch, stopped: bool) -> None:
    over = next((p for p in result["points"] if p.get("oversaturated")
                 and p["intended_rps"] == result["oversaturated_at_rps"]), None)
    if over:
        print(f"over-saturated at {_fmt(over['intended_rps'])} req/s ({over['saturation']['reason']})"
              + (": no higher rate was run" if stopped else ""))
    k, rule = result["kneedle"], result["knee"]
    print(f"knee (Kneedle, achieved req/s vs {search.metric}, S={search.sensitivity:g}): "
          + (f"{_fmt(k['achieved_rps'])} req/s achieved at {_fmt(k['intended_rps'])} intended, "
             f"{search.metric} {_fmt(k['value_ms'], ',.2f')} ms" if k else "none found"))
    print(f"highest rate kept up with P99 within {KNEE_P99_FACTOR:g}x the lowest rate's: "
          + (f"{_fmt(rule['intended_rps'])} req/s (p99 {_fmt(rule['p99_ms'], ',.2f')} ms)" if rule else "none"),
          f"  [sweep={result['sweep_id']}]")


def cli_sweep(cfg: BenchConfig, args: argparse.Namespace) -> int:
    """The ``perfkit sweep`` command: print the table, where it over-saturated, the knee / max rate."""
    if bool(args.rates or args.find_knee) == bool(args.find_max):
        raise UsageError("give --rates R1,R2,... and/or --find-knee, or --find-max --slo-p99-ms MS")
    cfg.validate()
    search = _search(args)
    summary_json = cfg.summary_json
    rates = [] if args.find_max else _rates(args)
    print(f"{'intended/s':>12} {'achieved/s':>12} {'p50 ms':>10} {'p99 ms':>10} {'errors':>8} {'valid':>6}  run")
    if rates:
        result = sweep_rates(cfg, rates, on_point=_print_point, search=search)
        code = 0
        if args.find_knee and result["kneedle"] is None:
            code = 1
        elif cfg.slo_p99_ms:
            code = 0 if any(passes(p, cfg.slo_p99_ms) for p in result["points"]) else 1
    else:
        start = args.start_rate or 10.0
        result = find_max(cfg, cfg.slo_p99_ms or 0, start, args.max_rate, args.tolerance, on_point=_print_point,
                          search=search)
        best = result["max_rate_rps"]
        if best is None:
            print(f"no rate met P99 <= {cfg.slo_p99_ms:g} ms (even {start:g} req/s missed)", file=sys.stderr)
            code = 1
        else:
            print(f"max rate meeting P99 <= {cfg.slo_p99_ms:g} ms: {best:,.1f} req/s "
                  f"(bracket {result['bracket_rps'][0]:,.1f}..{result['bracket_rps'][1]:,.1f})")
            code = 0
    _print_end(result, search, stopped=bool(rates))
    if summary_json:
        Path(summary_json).parent.mkdir(parents=True, exist_ok=True)
        Path(summary_json).write_text(jsonsafe.dumps({"format_version": FORMAT_VERSION, **result}, indent=2) + "\n")
    return code
