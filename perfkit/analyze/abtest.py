"""A/B verdicts between a baseline run and a candidate run, modelled on Kayenta's canary judge.

Per metric (a latency-like column, ``candidate - baseline``; positive = slower):

* **location** (Kayenta's MannWhitneyClassifier): drop NaN, remove outliers
  outside ``[Q1 - 3 IQR, Q3 + 3 IQR]`` in each sample, Mann–Whitney U
  (``scipy.stats.mannwhitneyu``), the Hodges–Lehmann shift with its
  distribution-free 98% interval (Moses; normal approximation to the rank
  distribution). *High* when the interval's lower bound is above
  ``0.25 * |HL|``, *Low* when its upper bound is below ``-0.25 * |HL|``, else
  *Pass*; *Nodata* when a side has fewer than ``min_n`` values. On top of
  Kayenta: High/Low also need the Holm-adjusted MWU p-value below ``alpha``
  (multiple-comparison control over all metrics of the comparison) and a
  practical effect: ``|HL|`` at least ``margin_rel`` of the baseline median and
  at least ``margin_abs_ms``.
* **tail** (P99): percentile-bootstrap interval of ``P99(c) - P99(b)`` on the raw
  values (outliers *are* the tail); High when the interval's lower bound is
  above the practical margin (``margin_rel`` of the baseline P99, and
  ``margin_abs_ms``), Low when the upper bound is below minus the margin,
  Inconclusive when the interval spans both margins; Nodata below
  ``min_tail_n`` values per side (a P99 needs a few hundred).
* **error rate**: Fisher's exact test on (errors, ok); High when the candidate's
  share is higher by at least ``margin_error_pp`` percentage points and the
  Holm-adjusted p-value is below ``alpha``.

Also reported: Kolmogorov–Smirnov (shape), Cliff's delta, bootstrap intervals of
the P50 and P99 differences. Verdict: **fail** if any metric is High (a
regression); otherwise **pass** if the Kayenta score — 100 x the share of
classified metrics that are Pass or Low — is at least ``pass_score`` and every
metric was classified (none Nodata or Inconclusive); otherwise **inconclusive**.

The estimators are :mod:`perfkit.analyze.twosample`'s, Holm's correction
:mod:`perfkit.analyze.stats`'; this module classifies and decides, and reads
the two runs through :mod:`perfkit.store.runs`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from perfkit.analyze.stats import holm
from perfkit.analyze.twosample import (bootstrap_quantile_diff, bootstrap_quantile_diffs, cliffs_delta_from_u,
                                       hodges_lehmann, remove_outliers_iqr)
from perfkit.quantiles import Estimate


@dataclass(frozen=True)
class Thresholds:
    """Every knob of the judge, with the values used when none is given."""

    alpha: float = 0.02               # family-wise error rate (Holm), matches the 98% interval
    interval: float = 0.98            # confidence of the HL interval (Kayenta)
    fraction: float = 0.25            # Kayenta: bound = fraction x |HL|
    margin_rel: float = 0.05          # practical effect: 5% of the baseline median / P99
    margin_abs_ms: float = 0.1        # ... and at least 0.1 ms (below that, timer and scheduler noise)
    margin_error_pp: float = 0.5      # error rate: +0.5 percentage point
    min_n: int = 20                   # per side, location test
    min_tail_n: int = 300             # per side, P99 comparison
    bootstrap_confidence: float = 0.95
    n_resamples: int = 999
    pass_score: float = 95.0


# --------------------------------------------------------------------------- per metric

@dataclass
class MetricResult:
    """One row of the verdict table."""

    metric: str
    kind: str                      # location | tail | errors
    classification: str            # High | Low | Pass | Inconclusive | Nodata
    reason: str
    n_baseline: int
    n_candidate: int
    baseline: float                # median, P99 or error share
    candidate: float
    difference: Estimate | None = None     # HL shift, P99 difference or error-share difference
    p_value: float = math.nan
    p_adjusted: float = math.nan
    ks_statistic: float = math.nan
    ks_p_value: float = math.nan
    cliffs_delta: float = math.nan
    p50_diff: Estimate | None = None
    p99_diff: Estimate | None = None
    outliers_removed: tuple[int, int] = (0, 0)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("difference", "p50_diff", "p99_diff")}
        for key in ("difference", "p50_diff", "p99_diff"):
            val = getattr(self, key)
            d[key] = val.to_dict() if val is not None else None
        for k, v in list(d.items()):
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        d["outliers_removed"] = list(self.outliers_removed)
        return d


def _margin(reference: float, th: Thresholds) -> float:
    return max(th.margin_abs_ms, th.margin_rel * abs(reference)) if math.isfinite(reference) else th.margin_abs_ms


def compare_location(metric: str, baseline: np.ndarray, candidate: np.ndarray,
                     th: Thresholds = Thresholds(), seed: int = 0,
                     p50_diff: Estimate | None = None) -> MetricResult:
    """Kayenta-style location comparison (classification finished by :func:`judge`)."""
    b_raw = np.asarray(baseline, float); b_raw = b_raw[~np.isnan(b_raw)]
    c_raw = np.asarray(candidate, float); c_raw = c_raw[~np.isnan(c_raw)]
    b, c = remove_outliers_iqr(b_raw), remove_outliers_iqr(c_raw)
    removed = (int(b_raw.size - b.size), int(c_raw.size - c.size))
    if b.size < th.min_n or c.size < th.min_n:
        return MetricResult(metric, "location", "Nodata",
                            f"fewer than {th.min_n} values on a side", int(b.size), int(c.size),
                            float(np.median(b)) if b.size else math.nan,
                            float(np.median(c)) if c.size else math.nan, outliers_removed=removed)
    mw = sps.mannwhitneyu(c, b, alternative="two-sided")
    ks = sps.ks_2samp(c, b)
    hl = hodges_lehmann(c, b, th.interval)
    res = MetricResult(metric, "location", "Pass", "", int(b.size), int(c.size),
                       float(np.median(b)), float(np.median(c)), difference=hl,
                       p_value=float(mw.pvalue), ks_statistic=float(ks.statistic),
                       ks_p_value=float(ks.pvalue),
                       cliffs_delta=cliffs_delta_from_u(float(mw.statistic), c.size, b.size),
                       p50_diff=p50_diff or bootstrap_quantile_diff(c_raw, b_raw, 0.5, th.bootstrap_confidence,
                                                                    th.n_resamples, seed),
                       outliers_removed=removed)
    return res


def compare_tail(metric: str, baseline: np.ndarray, candidate: np.ndarray, q: float = 0.99,
                 th: Thresholds = Thresholds(), seed: int = 0, diff: Estimate | None = None) -> MetricResult:
    """P99 difference with a bootstrap interval, classified against the practical margin."""
    b = np.asarray(baseline, float); b = b[~np.isnan(b)]
    c = np.asarray(candidate, float); c = c[~np.isnan(c)]
    name = f"{metric} p{q * 100:g}"
    if b.size < th.min_tail_n or c.size < th.min_tail_n:
        return MetricResult(name, "tail", "Nodata", f"fewer than {th.min_tail_n} values on a side",
                            int(b.size), int(c.size),
                            float(np.quantile(b, q)) if b.size else math.nan,
                            float(np.quantile(c, q)) if c.size else math.nan)
    if diff is None:
        diff = bootstrap_quantile_diff(c, b, q, th.bootstrap_confidence, th.n_resamples, seed)
    base_q = float(np.quantile(b, q))
    margin = _margin(base_q, th)
    if diff.lo > margin:
        cls, why = "High", f"P{q * 100:g} rose by {diff.value:.2f} ms, interval above the {margin:.2f} ms margin"
    elif diff.hi < -margin:
        cls, why = "Low", f"P{q * 100:g} fell by {-diff.value:.2f} ms, interval below -{margin:.2f} ms"
    elif diff.lo < -margin and diff.hi > margin:
        cls, why = "Inconclusive", (f"P{q * 100:g} difference interval [{diff.lo:.2f}, {diff.hi:.2f}] ms "
                                    f"spans both ±{margin:.2f} ms margins: too few requests to tell")
    else:
        cls, why = "Pass", f"P{q * 100:g} difference interval reaches within the ±{margin:.2f} ms margin"
    return MetricResult(name, "tail", cls, why, int(b.size), int(c.size), base_q,
                        float(np.quantile(c, q)), difference=diff, p99_diff=diff,
                        extra={"margin_ms": margin})


def compare_errors(baseline_errors: int, baseline_n: int, candidate_errors: int, candidate_n: int,
                   th: Thresholds = Thresholds()) -> MetricResult:
    """Error share, Fisher's exact test (classification finished by :func:`judge`)."""
    if baseline_n == 0 or candidate_n == 0:
        return MetricResult("error_rate", "errors", "Nodata", "a run without requests",
                            baseline_n, candidate_n, math.nan, math.nan)
    table = [[candidate_errors, candidate_n - candidate_errors],
             [baseline_errors, baseline_n - baseline_errors]]
    p = float(sps.fisher_exact(table).pvalue)
    pb, pc = baseline_errors / baseline_n, candidate_errors / candidate_n
    diff = Estimate(pc - pb, math.nan, math.nan, min(baseline_n, candidate_n), 1 - th.alpha,
                    "difference of shares", "ratio")
    return MetricResult("error_rate", "errors", "Pass", "", baseline_n, candidate_n, pb, pc,
                        difference=diff, p_value=p)


# --------------------------------------------------------------------------- the judge

@dataclass
class Verdict:
    verdict: str                   # pass | fail | inconclusive
    score: float
    metrics: list[MetricResult]
    thresholds: Thresholds
    baseline_run: str | None = None
    candidate_run: str | None = None

    @property
    def regression(self) -> bool:
        return self.verdict == "fail"

    def table(self) -> pd.DataFrame:
        """The verdict table: one row per metric."""
        rows = []
        for m in self.metrics:
            d = m.difference
            rows.append({"metric": m.metric, "kind": m.kind, "class": m.classification,
                         "n_base": m.n_baseline, "n_cand": m.n_candidate,
                         "baseline": m.baseline, "candidate": m.candidate,
                         "diff": d.value if d else math.nan,
                         "diff_lo": d.lo if d else math.nan, "diff_hi": d.hi if d else math.nan,
                         "ci": d.confidence if d else math.nan,
                         "p": m.p_value, "p_holm": m.p_adjusted, "cliffs_delta": m.cliffs_delta,
                         "ks_D": m.ks_statistic, "reason": m.reason})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "score": self.score, "baseline_run": self.baseline_run,
                "candidate_run": self.candidate_run, "thresholds": asdict(self.thresholds),
                "metrics": [m.to_dict() for m in self.metrics]}


def judge(results: list[MetricResult], th: Thresholds = Thresholds()) -> Verdict:
    """Holm-adjust the p-values, finish the location/error classifications, score, decide."""
    adjusted = holm([r.p_value for r in results])
    for r, p_adj in zip(results, adjusted):
        r.p_adjusted = p_adj
        if r.classification in ("Nodata", "Inconclusive") or r.kind == "tail":
            continue
        if r.kind == "location" and r.difference is not None:
            hl = r.difference
            bound = th.fraction * abs(hl.value)
            margin = _margin(r.baseline, th)
            significant = math.isfinite(p_adj) and p_adj < th.alpha
            practical = abs(hl.value) >= margin
            if hl.lo > bound and significant and practical:
                r.classification, r.reason = "High", (
                    f"shift +{hl.value:.2f} ms [{hl.lo:.2f}, {hl.hi:.2f}] ({hl.confidence:.0%}), "
                    f"Holm p={p_adj:.2g}, beyond the {margin:.2f} ms margin")
            elif hl.hi < -bound and significant and practical:
                r.classification, r.reason = "Low", (
                    f"shift {hl.value:.2f} ms [{hl.lo:.2f}, {hl.hi:.2f}] ({hl.confidence:.0%}), "
                    f"Holm p={p_adj:.2g}, beyond the {margin:.2f} ms margin")
            else:
                why = []
                if not (hl.lo > bound or hl.hi < -bound):
                    why.append("interval within ±0.25·|HL|")
                if not significant:
                    why.append(f"Holm p={p_adj:.2g} ≥ {th.alpha}")
                if not practical:
                    why.append(f"|shift| {abs(hl.value):.2f} ms below the {margin:.2f} ms margin")
                r.classification, r.reason = "Pass", "; ".join(why) or "no shift"
        elif r.kind == "errors":
            delta_pp = (r.candidate - r.baseline) * 100
            significant = math.isfinite(p_adj) and p_adj < th.alpha
            if delta_pp >= th.margin_error_pp and significant:
                r.classification, r.reason = "High", f"error share +{delta_pp:.2f} pp, Holm p={p_adj:.2g}"
            elif delta_pp <= -th.margin_error_pp and significant:
                r.classification, r.reason = "Low", f"error share {delta_pp:.2f} pp, Holm p={p_adj:.2g}"
            else:
                r.classification, r.reason = "Pass", f"error share {delta_pp:+.2f} pp, Holm p={p_adj:.2g}"
    classified = [r for r in results if r.classification not in ("Nodata", "Inconclusive")]
    score = 100.0 * sum(r.classification in ("Pass", "Low") for r in classified) / len(classified) \
        if classified else 0.0
    if any(r.classification == "High" for r in results):
        verdict = "fail"
    elif classified and score >= th.pass_score and len(classified) == len(results):
        verdict = "pass"
    else:
        verdict = "inconclusive"
    return Verdict(verdict, score, results, th)


def compare_samples(baseline: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
                    errors: tuple[int, int, int, int] | None = None,
                    th: Thresholds = Thresholds(), seed: int = 0) -> Verdict:
    """Compare metric arrays (``{"latency_ms": array}``) and optional error counts
    ``(baseline_errors, baseline_n, candidate_errors, candidate_n)``."""
    results: list[MetricResult] = []
    for metric in baseline:
        b, c = baseline[metric], candidate.get(metric, np.array([]))
        b_ok, c_ok = np.asarray(b, float), np.asarray(c, float)
        b_ok, c_ok = b_ok[~np.isnan(b_ok)], c_ok[~np.isnan(c_ok)]
        diffs = bootstrap_quantile_diffs(c_ok, b_ok, [0.5, 0.99], th.bootstrap_confidence, th.n_resamples, seed)
        results.append(compare_location(metric, b, c, th, seed, p50_diff=diffs[0.5]))
        results.append(compare_tail(metric, b, c, 0.99, th, seed, diff=diffs[0.99]))
    if errors is not None:
        results.append(compare_errors(*errors, th=th))
    return judge(results, th)


# --------------------------------------------------------------------------- over the store

def compare_runs(con: Any, baseline_run: str, candidate_run: str,
                 metrics: Sequence[str] = ("latency_ms",), th: Thresholds = Thresholds(),
                 max_rows: int = 50_000, seed: int = 0) -> Verdict:
    """Compare two stored runs; above ``max_rows`` successful requests per run a
    reproducible uniform sample is compared (stated in each metric's ``extra``)."""
    from perfkit import store
    from perfkit.store import runs

    b_id = store.get_run(con, baseline_run)["run_id"]
    c_id = store.get_run(con, candidate_run)["run_id"]
    base, cand, sampled = {}, {}, {}
    for metric in metrics:
        base[metric] = runs.values(con, b_id, metric, max_rows=max_rows, seed=seed)
        cand[metric] = runs.values(con, c_id, metric, max_rows=max_rows, seed=seed)
        sampled[metric] = (runs.count(con, b_id, metric), runs.count(con, c_id, metric))
    tb, tc = runs.totals(con, b_id), runs.totals(con, c_id)
    errors = (tb["requests"] - tb["ok"], tb["requests"], tc["requests"] - tc["ok"], tc["requests"])
    verdict = compare_samples(base, cand, errors, th, seed)
    for r in verdict.metrics:
        key = r.metric.split(" ")[0]
        if key in sampled and max(sampled[key]) > max_rows:
            r.extra["sampled_from"] = list(sampled[key])
    verdict.baseline_run, verdict.candidate_run = b_id, c_id
    return verdict


def resolve_pair(con: Any, baseline: str, candidate: str) -> tuple[str, str]:
    """Run ids for a comparison; an empty baseline means the run before the candidate."""
    from perfkit import store
    from perfkit.store import runs

    cand = store.get_run(con, candidate or "latest")["run_id"]
    if baseline:
        return store.get_run(con, baseline)["run_id"], cand
    earlier = runs.previous_run(con, cand)
    if earlier is None:
        raise store.StoreError("no earlier run to use as the baseline; name one")
    return earlier, cand


def samples_for_plot(con: Any, baseline_run: str, candidate_run: str, metric: str = "latency_ms",
                     max_rows: int = 50_000) -> dict[str, np.ndarray]:
    """The two runs' values (a reproducible sample above ``max_rows``) for distribution plots."""
    from perfkit.store import runs

    return {f"baseline {baseline_run}": runs.values(con, baseline_run, metric, max_rows=max_rows),
            f"candidate {candidate_run}": runs.values(con, candidate_run, metric, max_rows=max_rows)}


def spectra(con: Any, baseline_run: str, candidate_run: str, metric: str = "latency_ms",
            qs: Sequence[float] = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999)) -> dict[str, pd.DataFrame]:
    """Percentiles with exact 95% intervals of both runs, for a percentile-spectrum plot."""
    from perfkit.store import runs

    out = {}
    for name, rid in (("baseline", baseline_run), ("candidate", candidate_run)):
        est = runs.percentiles(con, rid, metric, qs)
        out[f"{name} {rid}"] = pd.DataFrame([{"quantile": q, "value": e.value, "lo": e.lo, "hi": e.hi, "n": e.n}
                                             for q, e in est.items()])
    return out


def headline_figures(verdict: Verdict) -> dict[str, str]:
    """The A/B report's index figures."""
    out = {"Verdict": f"{verdict.verdict.upper()} (score {verdict.score:.0f})"}
    for m in verdict.metrics:
        d = m.difference
        if d is None or not math.isfinite(d.value):
            out[m.metric] = f"{m.classification} (n={m.n_baseline:,}/{m.n_candidate:,})"
            continue
        unit = "pp" if m.kind == "errors" else "ms"
        value = d.value * 100 if m.kind == "errors" else d.value
        ci = f" [{d.lo:+.2f}, {d.hi:+.2f}]" if math.isfinite(d.lo) and math.isfinite(d.hi) else ""
        out[m.metric] = f"{m.classification}: {value:+.2f} {unit}{ci} (n={m.n_baseline:,}/{m.n_candidate:,})"
    return dict(list(out.items())[:6])
