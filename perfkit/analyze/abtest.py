"""A/B verdicts you can gate on: a set of runs per arm, intervals that respect the data.

The unit of replication is the run. Each arm (baseline, candidate) is one or
more runs; for each metric the judge compares the arms' **P50**, **P99** and
**error rate**, an arm's statistic being the mean over its runs of each run's
own statistic. The difference ``candidate - baseline`` gets a hierarchical
bootstrap interval (:mod:`perfkit.analyze.bootstrap`: runs resampled, then
blocks within runs, block length from the data). With one run in an arm the
interval falls back to the within-run block bootstrap and the verdict says that
run-to-run variance is unknown.

Each metric is judged by its interval against a practical margin (``margin_rel``
of the baseline's statistic, at least ``margin_abs_ms``; ``margin_error_pp``
percentage points for errors):

* **fail**: the whole interval lies above ``+margin`` (a regression at least the
  margin's size, with the interval's one-sided confidence);
* **pass**: the whole interval lies below ``+margin`` (no regression that large;
  an improvement passes too);
* **inconclusive**: the interval reaches past the margin, or too few values.

The verdict is **fail** if any metric fails, **pass** if every metric passes,
else **inconclusive**. No p-value decides anything. The JSON form
(:meth:`Verdict.to_dict`) is described by ``verdict.schema.json`` next to this
module.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from perfkit.analyze.bootstrap import RunBootstrap, RunSeries, arm_point, bootstrap_run, difference
from perfkit.errors import UsageError
from perfkit.names import LABEL_REPEAT
from perfkit.quantiles import Estimate

FORMAT_VERSION = 1
SCHEMA_FILE = "verdict.schema.json"


@dataclass(frozen=True)
class Thresholds:
    """Every knob of the judge, with the values used when none is given."""

    alpha: float = 0.05               # one-sided error of each interval bound: the interval is 1 - 2 alpha
    margin_rel: float = 0.05          # practical effect: 5% of the baseline's P50 / P99
    margin_abs_ms: float = 0.1        # ... and at least 0.1 ms (below that, timer and scheduler noise)
    margin_error_pp: float = 0.5      # error rate: +0.5 percentage point
    min_n: int = 20                   # successful requests per run, for P50
    min_tail_n: int = 200             # per run, for P99 (below it a run's P99 is one of its few largest values)
    resamples: int = 500              # within-run stationary-bootstrap replicates per run
    outer: int = 2000                 # hierarchical replicates
    max_rows: int = 20_000            # per run; above it evenly spaced contiguous blocks are judged

    @property
    def confidence(self) -> float:
        """Two-sided confidence of the intervals."""
        return 1.0 - 2.0 * self.alpha


@dataclass
class MetricResult:
    """One row of the verdict: a statistic's difference, its interval, the margin and the decision."""

    metric: str                    # "latency_ms p50", "latency_ms p99", "error_rate"
    statistic: str                 # p50 | p99 | error_rate
    decision: str                  # pass | fail | inconclusive
    reason: str
    baseline: float                # arm statistic (mean over runs)
    candidate: float
    difference: Estimate
    margin: float                  # in the statistic's unit (ms, or a share for errors)

    @property
    def relative(self) -> float:
        """The difference as a share of the baseline (NaN for errors or a zero baseline)."""
        if self.statistic == "error_rate" or not self.baseline:
            return math.nan
        return self.difference.value / self.baseline

    def to_dict(self) -> dict[str, Any]:
        d = self.difference
        rel = (lambda v: v / self.baseline) if math.isfinite(self.relative) else (lambda v: math.nan)
        return {"metric": self.metric, "statistic": self.statistic, "unit": d.unit, "decision": self.decision,
                "reason": self.reason, "baseline": self.baseline, "candidate": self.candidate,
                "difference": d.value, "lo": d.lo, "hi": d.hi, "confidence": d.confidence,
                "relative": rel(d.value), "relative_lo": rel(d.lo), "relative_hi": rel(d.hi),
                "margin": self.margin, "method": d.method}


@dataclass
class Arm:
    """One side of the comparison: what was asked for and the runs it resolved to."""

    name: str                      # baseline | candidate
    selector: str
    runs: list[RunBootstrap]

    @property
    def replicated(self) -> bool:
        return len(self.runs) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"selector": self.selector, "repeats": len(self.runs),
                "requests": sum(r.n for r in self.runs),
                "effective_requests": sum(r.n_effective for r in self.runs),
                "run_to_run_variance": "estimated" if self.replicated else "unknown",
                "runs": [_run_dict(r) for r in self.runs]}


def _run_dict(r: RunBootstrap) -> dict[str, Any]:
    return {"run_id": r.run_id, "labels": r.labels, "requests": r.n, "ok": r.n_ok,
            "effective_requests": r.n_effective, "block_length": r.block_length, "total_requests": r.total,
            "p50_ms": float(r.point[0]), "p99_ms": float(r.point[1]), "error_rate": float(r.point[2])}


@dataclass
class Verdict:
    """The decision, the per-metric rows, both arms and how it was computed."""

    verdict: str                   # pass | fail | inconclusive
    metrics: list[MetricResult]
    baseline: Arm
    candidate: Arm
    thresholds: Thresholds
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def regression(self) -> bool:
        return self.verdict == "fail"

    @property
    def method(self) -> dict[str, Any]:
        both = self.baseline.replicated and self.candidate.replicated
        return {"name": "hierarchical bootstrap" if both else "within-run block bootstrap",
                "between_runs": "runs resampled with replacement" if both else None,
                "within_run": "stationary bootstrap (arch), Politis-White block length on the ranks",
                "arm_statistic": "mean over the arm's runs of each run's statistic",
                "interval": "percentile", "confidence": self.thresholds.confidence,
                "resamples": self.thresholds.resamples, "outer_resamples": self.thresholds.outer,
                "seed": self.seed, "run_to_run_variance": "estimated" if both else "unknown"}

    def sentence(self) -> str:
        """The verdict in one sentence a manager can read."""
        return sentence(self)

    def table(self) -> pd.DataFrame:
        """One row per metric: arms, difference with its interval, margin, decision."""
        return pd.DataFrame([m.to_dict() for m in self.metrics])

    def runs(self) -> pd.DataFrame:
        """One row per run of both arms: its P50, P99, error share, raw and effective request counts."""
        rows = [{"arm": arm.name, "repeat": r.labels.get(LABEL_REPEAT, str(i + 1)), **_run_dict(r)}
                for arm in (self.baseline, self.candidate) for i, r in enumerate(arm.runs)]
        return pd.DataFrame(rows).drop(columns=["labels"])

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "verdict": self.verdict, "sentence": self.sentence(),
                "method": self.method, "thresholds": asdict(self.thresholds),
                "baseline": self.baseline.to_dict(), "candidate": self.candidate.to_dict(),
                "metrics": [m.to_dict() for m in self.metrics], "notes": list(self.notes)}


# --------------------------------------------------------------------------- judging

def _fmt(v: float, unit: str) -> str:
    return f"{v * 100:+.2f} pp" if unit == "share" else f"{v:+.2f} ms"


def _interval(d: Estimate) -> str:
    """``+0.48 ms [-0.39, +1.09]`` (percentage points for shares)."""
    k, unit = (100.0, "pp") if d.unit == "share" else (1.0, "ms")
    return f"{d.value * k:+.2f} {unit} [{d.lo * k:+.2f}, {d.hi * k:+.2f}]"


def decide(metric: str, statistic: str, base: float, cand: float, diff: Estimate, margin: float,
           enough: bool) -> MetricResult:
    """One metric's decision from its interval against ``margin`` (see the module doc)."""
    if not enough or not math.isfinite(diff.value):
        return MetricResult(metric, statistic, "inconclusive", "too few values to judge", base, cand, diff, margin)
    m = _fmt(margin, diff.unit).lstrip("+")
    if diff.lo > margin:
        decision, why = "fail", f"the whole interval is above the {m} margin"
    elif diff.hi < -margin:
        decision, why = "pass", f"better by more than the {m} margin"
    elif diff.hi < margin:
        decision = "pass"
        why = f"within the ±{m} margin" if diff.lo > -margin else f"no regression as large as the {m} margin"
    else:
        decision, why = "inconclusive", f"the interval reaches past the {m} margin"
    return MetricResult(metric, statistic, decision, why, base, cand, diff, margin)


def judge(baseline: Arm, candidate: Arm, th: Thresholds = Thresholds(), metric: str = "latency_ms",
          seed: int = 0, errors: bool = True) -> list[MetricResult]:
    """The P50 and P99 rows of ``metric`` (and the error-rate row) for two bootstrapped arms."""
    d50, d99, derr = difference(baseline.runs, candidate.runs, th.confidence, th.outer, seed)
    b, c = arm_point(baseline.runs), arm_point(candidate.runs)
    every = baseline.runs + candidate.runs

    def margin(reference: float) -> float:
        return max(th.margin_abs_ms, th.margin_rel * abs(reference)) if math.isfinite(reference) else math.nan

    rows = [decide(f"{metric} p50", "p50", float(b[0]), float(c[0]), d50, margin(float(b[0])),
                   all(r.n_ok >= th.min_n for r in every)),
            decide(f"{metric} p99", "p99", float(b[1]), float(c[1]), d99, margin(float(b[1])),
                   all(r.n_ok >= th.min_tail_n for r in every))]
    if errors:
        rows.append(decide("error_rate", "error_rate", float(b[2]), float(c[2]), derr, th.margin_error_pp / 100.0,
                           all(r.n > 0 for r in every)))
    return rows


def overall(results: Sequence[MetricResult]) -> str:
    """fail if any metric fails, pass if all pass, else inconclusive."""
    decisions = [r.decision for r in results]
    if "fail" in decisions:
        return "fail"
    return "pass" if decisions and all(d == "pass" for d in decisions) else "inconclusive"


def bootstrap_arm(name: str, selector: str, series: Sequence[RunSeries], th: Thresholds, seed: int) -> Arm:
    """Each run's within-run bootstrap (seeded per arm and run)."""
    seeds = np.random.SeedSequence([seed, 0 if name == "baseline" else 1]).spawn(len(series))
    return Arm(name, selector, [bootstrap_run(s, th.resamples, sd) for s, sd in zip(series, seeds)])


def compare_series(baseline: Sequence[RunSeries], candidate: Sequence[RunSeries], th: Thresholds = Thresholds(),
                   metric: str = "latency_ms", seed: int = 0, selectors: tuple[str, str] = ("", "")) -> Verdict:
    """Judge two arms given as run series (the pure entry point; :func:`compare_runs` reads the store)."""
    if not baseline or not candidate:
        raise UsageError("each arm needs at least one run")
    base = bootstrap_arm("baseline", selectors[0], baseline, th, seed)
    cand = bootstrap_arm("candidate", selectors[1], candidate, th, seed)
    results = judge(base, cand, th, metric, seed)
    return Verdict(overall(results), results, base, cand, th, seed, _notes(base, cand))


def _notes(base: Arm, cand: Arm) -> list[str]:
    notes = []
    for arm in (base, cand):
        if not arm.replicated:
            notes.append(f"one {arm.name} run: run-to-run variance is unknown, so the interval covers only "
                         "the variation within the run")
        sub = [r for r in arm.runs if r.total > r.n]
        if sub:
            notes.append(f"{len(sub)} {arm.name} run(s) judged on contiguous blocks of {sub[0].n:,} of "
                         f"{sub[0].total:,} requests")
    return notes


def sentence(v: Verdict) -> str:
    """``FAIL: the candidate is worse: latency_ms p50 +0.52 ms [+0.41, +0.63] (+6.9%): the whole interval
    is above the 0.39 ms margin (90% intervals, 3 baseline and 3 candidate run(s)).``"""
    reps = f"{len(v.baseline.runs)} baseline and {len(v.candidate.runs)} candidate run(s)"
    conf = f"{v.thresholds.confidence:.0%} interval"
    if v.verdict == "fail":
        bad = [m for m in v.metrics if m.decision == "fail"]
        body = "; ".join(_describe(m) for m in bad)
        text = f"FAIL: the candidate is worse: {body} ({conf}s, {reps})."
    elif v.verdict == "pass":
        text = (f"PASS: no regression as large as the margin in "
                f"{', '.join(m.metric for m in v.metrics)} ({conf}s, {reps}).")
    else:
        open_ = [m for m in v.metrics if m.decision != "pass"]
        text = (f"INCONCLUSIVE: {'; '.join(_describe(m) for m in open_)}: more or longer runs are needed "
                f"to tell ({conf}s, {reps}).")
    if not (v.baseline.replicated and v.candidate.replicated):
        text += " With one run on a side, run-to-run variance is unknown: the interval covers only the variation within runs."
    return text


def _describe(m: MetricResult) -> str:
    """``latency_ms p50 +0.52 ms [+0.41, +0.63] (+6.9%): the whole interval is above the 0.39 ms margin``."""
    if not math.isfinite(m.difference.value):
        return f"{m.metric}: {m.reason}"
    rel = f" ({m.relative:+.1%})" if math.isfinite(m.relative) else ""
    return f"{m.metric} {_interval(m.difference)}{rel}: {m.reason}"


# --------------------------------------------------------------------------- over the store

def resolve_side(con: Any, text: str) -> list[str]:
    """Run ids of one side: a label selector (``case=direct,suite=...``), or run ids (comma-separated, ``latest``)."""
    from perfkit import store
    from perfkit.store import runs

    if "=" in text:
        found = runs.select_runs(con, store.parse_label(text))
        if not found:
            raise store.StoreError(f"no run has the labels {text!r} (see `perfkit runs`)")
        return found
    return runs.resolve_run_ids(con, text)


def resolve_sides(con: Any, baseline: str, candidate: str) -> tuple[list[str], list[str]]:
    """Both sides' run ids; an empty baseline means the run before the (first) candidate run."""
    from perfkit import store
    from perfkit.store import runs

    cand = resolve_side(con, candidate or "latest")
    if baseline:
        base = resolve_side(con, baseline)
    else:
        earlier = runs.previous_run(con, cand[0])
        if earlier is None:
            raise store.StoreError("no earlier run to use as the baseline; name one")
        base = [earlier]
    both = sorted(set(base) & set(cand))
    if both:
        raise UsageError(f"run {both[0]} is on both sides; give each side its own runs")
    return base, cand


def read_series(con: Any, run_ids: Sequence[str], metric: str = "latency_ms",
                max_rows: int = 20_000) -> list[RunSeries]:
    """Each run's requests in schedule order (contiguous blocks above ``max_rows``), with its labels."""
    from perfkit import store
    from perfkit.store import runs

    out = []
    for rid in run_ids:
        values, failed, total = runs.request_sequence(con, rid, metric, max_rows=max_rows)
        labels = store.get_run(con, rid).get("labels") or {}
        out.append(RunSeries(rid, values, failed, total, {str(k): str(v) for k, v in labels.items()}))
    return out


def compare_runs(con: Any, baseline: str | Sequence[str], candidate: str | Sequence[str],
                 metrics: Sequence[str] = ("latency_ms",), th: Thresholds = Thresholds(), seed: int = 0) -> Verdict:
    """Judge stored runs: each side a selector or run ids (see :func:`resolve_side`), empty baseline = the run
    before the candidate. Per run at most ``th.max_rows`` requests are read (contiguous blocks)."""
    texts = tuple(s if isinstance(s, str) else ",".join(s) for s in (baseline, candidate))
    base_ids, cand_ids = resolve_sides(con, texts[0], texts[1])
    verdict: Verdict | None = None
    for k, metric in enumerate(metrics):
        base = bootstrap_arm("baseline", texts[0], read_series(con, base_ids, metric, th.max_rows), th, seed)
        cand = bootstrap_arm("candidate", texts[1] or "latest", read_series(con, cand_ids, metric, th.max_rows),
                             th, seed)
        rows = judge(base, cand, th, metric, seed, errors=(k == len(metrics) - 1))
        if verdict is None:
            verdict = Verdict("", rows, base, cand, th, seed, _notes(base, cand))
        else:
            verdict.metrics.extend(rows)
    assert verdict is not None, "at least one metric"
    verdict.verdict = overall(verdict.metrics)
    return verdict


def samples_for_plot(con: Any, verdict: Verdict, metric: str = "latency_ms",
                     max_rows: int = 50_000) -> dict[str, np.ndarray]:
    """Each arm's values, pooled over its runs (a reproducible sample above ``max_rows``), for a CDF plot."""
    from perfkit.store import runs

    out = {}
    for arm in (verdict.baseline, verdict.candidate):
        per_run = max(1, max_rows // len(arm.runs))
        pooled = [runs.values(con, r.run_id, metric, max_rows=per_run) for r in arm.runs]
        out[f"{arm.name} ({len(arm.runs)} run{'s' if len(arm.runs) > 1 else ''})"] = np.concatenate(pooled)
    return out


def headline_figures(verdict: Verdict) -> dict[str, str]:
    """The A/B report's index figures: the verdict, each metric's difference, the repeats."""
    out = {"Verdict": verdict.verdict.upper()}
    for m in verdict.metrics:
        d = m.difference
        if not math.isfinite(d.value):
            out[m.metric] = f"{m.decision} (too few values)"
            continue
        out[m.metric] = f"{m.decision}: {_interval(d)}"
    b, c = verdict.baseline, verdict.candidate
    out["Runs"] = (f"{len(b.runs)} + {len(c.runs)} (effective n {sum(r.n_effective for r in b.runs):,.0f} / "
                   f"{sum(r.n_effective for r in c.runs):,.0f} of {sum(r.n for r in b.runs):,} / "
                   f"{sum(r.n for r in c.runs):,})")
    return dict(list(out.items())[:6])


def schema() -> Mapping[str, Any]:
    """The JSON Schema of :meth:`Verdict.to_dict` (``verdict.schema.json``)."""
    import json
    from importlib import resources

    return json.loads(resources.files("perfkit.analyze").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))
