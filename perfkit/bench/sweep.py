"""``perfkit sweep``: the latency-throughput curve over rates, and the highest rate within an SLO.

Every step is a real, stored run labelled ``sweep=<id>,rate=<r>``, so the curve can
be rebuilt later with :func:`curve` (notebooks) and every point drilled into.

The *knee* (:func:`knee`) is stated, not guessed: the highest intended rate whose
run kept up (achieved >= 95% of intended, no more than 1% errors) and whose P99 is
within 2x the P99 of the lowest rate swept. ``--find-max`` brackets (doubling the
rate from the start rate until a step misses the SLO) then bisects until the bracket
is narrower than ``--tolerance`` of the rate; a step *passes* when it kept up and its
P99 (over successful requests) is <= the SLO.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable

import duckdb
import pandas as pd

from perfkit import jsonsafe
from perfkit.bench.config import BenchConfig
from perfkit.bench.queries import sweep_summaries
from perfkit.bench.runner import new_run_id, run
from perfkit.errors import UsageError
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
    label = ",".join(x for x in (cfg.label, f"sweep={sweep_id}", f"rate={rate:g}") if x)
    return dataclasses.replace(cfg, stages=[stage], label=label, summary_json=None,
                               tags={**cfg.tags, "sweep": sweep_id, "rate": f"{rate:g}"})


def sweep_rates(cfg: BenchConfig, rates: list[float], sweep_id: str | None = None,
                on_point: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``cfg`` at each rate in turn; the points and the knee."""
    sweep_id = sweep_id or new_run_id()
    points = []
    for rate in rates:
        p = point(run(_with_rate(cfg, rate, sweep_id)))
        points.append(p)
        if on_point:
            on_point(p)
    return {"sweep_id": sweep_id, "points": points, "knee": knee(points)}


def find_max(cfg: BenchConfig, slo_p99_ms: float, start_rps: float, max_rps: float, tolerance: float = 0.05,
             sweep_id: str | None = None, on_point: Callable[[dict[str, Any]], None] | None = None
             ) -> dict[str, Any]:
    """Highest rate whose P99 meets ``slo_p99_ms``: bracket by doubling, then bisect."""
    if not slo_p99_ms or slo_p99_ms <= 0:
        raise UsageError("--find-max needs --slo-p99-ms MS")
    if not 0 < tolerance < 1:
        raise UsageError("--tolerance must be between 0 and 1")
    sweep_id = sweep_id or new_run_id()
    points: list[dict] = []

    def probe(rate: float) -> bool:
        p = point(run(_with_rate(cfg, rate, sweep_id)))
        p["passes_slo"] = passes(p, slo_p99_ms)
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
            "knee": knee(points), "bracket_rps": [lo, hi]}


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
    print(f"{_fmt(p['intended_rps']):>12} {_fmt(p['achieved_rps']):>12} {_fmt(p['p50_ms'], ',.2f'):>10} "
          f"{_fmt(p['p99_ms'], ',.2f'):>10} {100 * p['error_fraction']:>7.2f}% {str(p['valid']):>6}  "
          f"{p['run_id']}{mark}", flush=True)


def cli_sweep(cfg: BenchConfig, args: argparse.Namespace) -> int:
    """The ``perfkit sweep`` command: print the table and the knee / max rate."""
    if bool(args.rates) == bool(args.find_max):
        raise UsageError("give either --rates R1,R2,... or --find-max --slo-p99-ms MS")
    cfg.validate()
    summary_json = cfg.summary_json
    print(f"{'intended/s':>12} {'achieved/s':>12} {'p50 ms':>10} {'p99 ms':>10} {'errors':>8} {'valid':>6}  run")
    if args.rates:
        try:
            rates = [float(r) for r in args.rates.split(",") if r.strip()]
        except ValueError:
            raise UsageError(f"--rates must be numbers separated by commas, got {args.rates!r}") from None
        if not rates or any(r <= 0 for r in rates):
            raise UsageError("--rates must be > 0")
        result = sweep_rates(cfg, sorted(rates), on_point=_print_point)
        code = 0
        if cfg.slo_p99_ms:
            code = 0 if any(passes(p, cfg.slo_p99_ms) for p in result["points"]) else 1
    else:
        start = args.rate if args.rate and args.rate != 1.0 else 10.0
        result = find_max(cfg, cfg.slo_p99_ms or 0, start, args.max_rate, args.tolerance, on_point=_print_point)
        best = result["max_rate_rps"]
        if best is None:
            print(f"no rate met P99 <= {cfg.slo_p99_ms:g} ms (even {start:g} req/s missed)", file=sys.stderr)
            code = 1
        else:
            print(f"max rate meeting P99 <= {cfg.slo_p99_ms:g} ms: {best:,.1f} req/s "
                  f"(bracket {result['bracket_rps'][0]:,.1f}..{result['bracket_rps'][1]:,.1f})")
            code = 0
    k = result["knee"]
    print(f"knee: {_fmt(k['intended_rps'])} req/s (p99 {_fmt(k['p99_ms'], ',.2f')} ms)" if k else "knee: none found",
          f"  [sweep={result['sweep_id']}]")
    if summary_json:
        Path(summary_json).parent.mkdir(parents=True, exist_ok=True)
        Path(summary_json).write_text(jsonsafe.dumps({"format_version": FORMAT_VERSION, **result}, indent=2) + "\n")
    return code
