"""The first screen of each report: a conclusion computed from the data, as (title, lines, status).

Pure functions, one per report, from the frames and records the notebook already
holds to a :class:`Conclusion`: a title, a few sentences with their numbers and
intervals, and a status (``pass``, ``fail``, ``warn`` or ``info``). A notebook
shows it right after its parameters with :func:`perfkit.report.style.conclusion`,
which also records it for the index, so the index says the same line.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Sequence

import pandas as pd

from perfkit.analyze.rootcause.finding import CauseGroup
from perfkit.names import LABEL_SUITE
from perfkit.quantiles import Estimate
from perfkit.report.style import fmt_interval, fmt_value
from perfkit.summary import RunSummary, invalid_reasons

if TYPE_CHECKING:
    from perfkit.analyze.abtest import Verdict
    from perfkit.analyze.sweep_report import SweepReport
    from perfkit.report.benchmark import RunData

#: The causes a root-cause conclusion names at most.
TOP_CAUSES = 3
#: A P99 at least this many times the P50 is "the tail" to look at.
TAIL_RATIO = 3.0


class Conclusion(NamedTuple):
    """What a report's summary block says: ``conclusion(*c)`` shows it."""

    title: str
    lines: list[str]
    status: str          # pass | fail | warn | info


def _estimate(e: Estimate | None, unit: str = "ms") -> str:
    if e is None or not math.isfinite(e.value):
        return "no data"
    return fmt_interval(e.value, e.lo, e.hi, unit)


# ---- 01: one benchmark run ----------------------------------------------------------------------

#: Each validity check in a few words, for the title.
_CHECK_WORDS = {"min_duration_met": "too short", "min_queries_met": "too few requests",
                "early_stopping_met": "too few requests for the P99", "generator_kept_up": "the generator fell behind",
                "status_completed": "not completed"}


def _look_at(summary: RunSummary | None, p50: Estimate | None, p99: Estimate | None,
             totals: Mapping[str, Any]) -> str:
    """The one thing a reader should look at first."""
    if summary is not None and not summary["validity"]["generator_kept_up"]:
        return ("Look at: the schedule lag. The load generator, not the server, fell behind: the run offered "
                "less load than intended and its latencies include the generator's own delay. Pin it to its own "
                "core, add --workers, or lower the rate.")
    errors = dict(totals.get("errors") or {})
    n = int(totals.get("requests") or 0)
    if errors and n:
        kind, count = max(errors.items(), key=lambda kv: kv[1])
        share = sum(errors.values()) / n
        return (f"Look at: the errors, {sum(errors.values()):,} of {n:,} requests ({fmt_value(100 * share, '%')}), "
                f"most of them {kind} ({count:,}): see Throughput and errors.")
    slo = (summary or {}).get("slo", {}).get("p99_ms") if summary is not None else None
    if slo and not slo["met"]:
        return "Look at: latency over time, to see when the P99 went over the SLO."
    if p50 is not None and p99 is not None and p50.value > 0 and p99.value >= TAIL_RATIO * p50.value:
        return (f"Look at: the tail. P99 is {p99.value / p50.value:,.1f} times the P50: see the percentile spectrum "
                "and latency over time.")
    return "Look at: nothing stands out; latency over time shows whether the run was steady."


def benchmark(summary: RunSummary | None, p50: Estimate | None, p99: Estimate | None,
              totals: Mapping[str, Any]) -> Conclusion:
    """Notebook 01: the SLO and validity (failed checks in words and numbers), P50 and P99 with their
    intervals, and the one thing to look at. ``totals``: :func:`perfkit.store.runs.totals`."""
    lines = []
    slo = summary.get("slo", {}).get("p99_ms") if summary is not None else None
    if slo:
        lines.append(f"SLO {'met' if slo['met'] else 'missed'}: P99 {fmt_value(slo['observed'], 'ms')} against "
                     f"{fmt_value(slo['limit'], 'ms')}.")
    else:
        lines.append("No SLO was set for this run (perfkit bench --slo-p99-ms MS sets one).")
    checks = invalid_reasons(summary) if summary is not None else []
    if summary is None:
        lines.append("Validity not recorded (an imported or unfinished run).")
    elif summary["valid"]:
        lines.append("Valid: long enough, enough requests for the P99, the generator kept up, completed.")
    else:
        lines.append("Not valid: " + "; ".join(checks) + ".")
    n = p99.n if p99 is not None else 0
    conf = f", {p99.confidence:.0%} intervals" if p99 is not None else ""
    lines.append(f"P50 {_estimate(p50)}, P99 {_estimate(p99)} (n={n:,} successful requests{conf}).")
    lines.append(_look_at(summary, p50, p99, totals))
    p99_text = f"P99 {_estimate(p99)}"
    if summary is not None and not summary["validity"]["status_completed"]:
        return Conclusion(f"The run did not complete: {p99_text}", lines, "fail")
    if slo and not slo["met"]:
        return Conclusion(f"{p99_text} missed the {fmt_value(slo['limit'], 'ms')} SLO", lines, "fail")
    if summary is None:
        return Conclusion(f"Validity not recorded: {p99_text}", lines, "warn")
    if not summary["valid"]:
        checks_met: Mapping[str, Any] = summary["validity"]
        failed = [words for key, words in _CHECK_WORDS.items() if not checks_met[key]]
        return Conclusion(f"Not valid ({', '.join(failed)}): {p99_text}", lines, "warn")
    return Conclusion(f"Valid{', SLO met' if slo else ''}: {p99_text}", lines, "pass")


def benchmark_run(data: RunData) -> Conclusion:
    """:func:`benchmark` of notebook 01's :class:`~perfkit.report.benchmark.RunData`."""
    return benchmark(data.summary, data.latency.get(0.5), data.latency.get(0.99), data.totals)


# ---- 02: telemetry ------------------------------------------------------------------------------

#: Host CPU at or above this share is a saturated machine: latency may measure CPU contention.
CPU_SATURATED_PCT = 90.0


def _mean_max(frame: pd.DataFrame, column: str) -> tuple[float, float, int]:
    values = pd.to_numeric(frame[column], errors="coerce").dropna() if column in frame else pd.Series(dtype=float)
    return (float(values.mean()), float(values.max()), len(values)) if len(values) else (math.nan, math.nan, 0)


def telemetry(frame: pd.DataFrame, sources: pd.DataFrame) -> Conclusion:
    """Notebook 02: where the telemetry came from, the slowest step (its P99, and what CPU and queue depth
    read then), host CPU and GPU over the run. ``frame``: :func:`perfkit.analyze.telemetry.timeline`;
    ``sources``: :func:`perfkit.analyze.telemetry.sources_for`."""
    if sources.empty:
        return Conclusion("No telemetry in the run's window", ["No source recorded samples in this window: "
                          "perfkit bench collects host and server metrics; perfkit ingest adds more."], "warn")
    kinds = ", ".join(sorted(set(sources["kind"].astype(str))))
    lines = [f"{len(sources)} source{'s' if len(sources) != 1 else ''} ({kinds}), "
             f"{int(sources['samples'].sum()):,} samples."]
    cpu_mean, cpu_max, cpu_n = _mean_max(frame, "host_cpu_utilization_percent")
    p99 = pd.to_numeric(frame.get("latency_p99_ms", pd.Series(dtype=float)), errors="coerce")
    if p99.notna().any():
        at = p99.idxmax()
        row = frame.loc[at]
        then = [f"host CPU {fmt_value(row.get('host_cpu_utilization_percent'), '%')}"]
        if "queue_depth" in frame and pd.notna(row.get("queue_depth")):
            then.append(f"queue depth {fmt_value(row['queue_depth'])}")
        lines.append(f"Slowest step: P99 {fmt_value(p99[at], 'ms')} at t = {fmt_value(row['t_s'], 's')}, with "
                     + " and ".join(then) + ".")
    lines.append(f"Host CPU: mean {fmt_value(cpu_mean, '%')}, peak {fmt_value(cpu_max, '%')} ({cpu_n:,} steps)."
                 if cpu_n else "Host CPU: not recorded.")
    gpu_mean, gpu_max, gpu_n = _mean_max(frame, "gpu_utilization_percent")
    lines.append(f"GPU utilization: mean {fmt_value(gpu_mean, '%')}, peak {fmt_value(gpu_max, '%')} ({gpu_n:,} steps)."
                 if gpu_n else "GPU: no telemetry collected.")
    if cpu_n and cpu_max >= CPU_SATURATED_PCT:
        return Conclusion(f"The machine's CPU peaked at {fmt_value(cpu_max, '%')}: latency may measure CPU contention",
                          lines, "warn")
    return Conclusion(f"Telemetry from {kinds} beside the latency", lines, "info")


# ---- 03: root cause -----------------------------------------------------------------------------

def root_cause(groups: Sequence[CauseGroup], n_runs: int) -> Conclusion:
    """Notebook 03: the top causes, each counted once across the runs (``the load generator fell behind in
    5 of 6 runs``), with the action of the most severe one."""
    if not groups:
        return Conclusion("No cause found", [f"None of the rules' causes is supported by the data of "
                                             f"{n_runs} run{'s' if n_runs != 1 else ''}."], "pass")
    top = list(groups[:TOP_CAUSES])
    lines = [f"{g.phrase[:1].upper()}{g.phrase[1:]} in {g.seen_in(n_runs)} ({g.severity})." for g in top]
    if len(groups) > len(top):
        lines.append(f"{len(groups) - len(top)} more cause{'s' if len(groups) - len(top) != 1 else ''} below.")
    lines.append(f"First action: {top[0].action}")
    status = "fail" if top[0].severity in ("critical", "high") else "warn"
    return Conclusion(f"Top cause: {top[0].cause.lower()}", lines, status)


# ---- 04: A/B verdict ----------------------------------------------------------------------------

_STATISTIC_WORDS = {"p50": "at the median", "p99": "at P99", "error_rate": "in error rate"}


def _scale(row: Mapping[str, Any]) -> tuple[float, str]:
    """An error rate (a share) reads in percentage points, a latency in ms."""
    return (100.0, "pp") if row.get("unit") == "share" else (1.0, "ms")


def _difference(row: Mapping[str, Any]) -> str:
    """``26.5 ms slower at the median, [25.5, 27.7]`` (percentage points for the error rate)."""
    where = _STATISTIC_WORDS.get(str(row["statistic"]), f"in {row['metric']}")
    k, unit = _scale(row)
    share = unit == "pp"
    d = row["difference"]
    worse = ("higher " if share else "slower ") if d > 0 else ("lower " if share else "faster ") if d < 0 else ""
    return (f"{fmt_value(abs(d) * k, unit)} {worse}{where}, "
            f"[{fmt_value(row['lo'] * k)}, {fmt_value(row['hi'] * k)}]")


def _selector(text: str) -> str:
    """A run selector without its ``suite=`` pair (every arm of a suite shares it)."""
    return ",".join(p for p in text.split(",") if not p.startswith(f"{LABEL_SUITE}=")) or text


def ab_verdict(table: pd.DataFrame, verdict: str, n_baseline: int, n_candidate: int,
               confidence: float, arms: tuple[str, str] | None = None) -> Conclusion:
    """Notebook 04: the verdict in one sentence, the title (``the candidate is 26.5 ms slower at the
    median, [25.5, 27.7]`` under a FAIL status), which runs each arm is (``arms``: the baseline's and the
    candidate's selectors), then each metric's difference against its margin.
    ``table``: :meth:`perfkit.analyze.abtest.Verdict.table`; ``verdict``: pass, fail or inconclusive."""
    rows = [r for r in table.to_dict("records") if math.isfinite(r["difference"])]
    lead = next((r for r in rows if r["decision"] == verdict), rows[0] if rows else None)
    if lead is None:
        title = "Too few values to judge the candidate against the baseline"
    else:
        prefix = {"pass": "No regression as large as the margin: t", "fail": "T"}.get(verdict, "Inconclusive: t")
        title = f"{prefix}he candidate is {_difference(lead)}"
    lines = [f"Candidate {_selector(arms[1])} against baseline {_selector(arms[0])}."] if arms else []
    lines += [f"{r['metric']}: {_difference(r)} ({r['decision']}, margin "
              f"{fmt_value(r['margin'] * _scale(r)[0], _scale(r)[1])})." for r in rows]
    lines.append(f"{confidence:.0%} intervals over {n_baseline} baseline and {n_candidate} candidate runs "
                 "(the run is the unit of replication).")
    if min(n_baseline, n_candidate) < 2:
        lines.append("With one run on a side, run-to-run variance is unknown: repeat each arm (perfkit abtest).")
    return Conclusion(title, lines, {"fail": "fail", "pass": "pass"}.get(verdict, "warn"))


def ab(verdict: Verdict) -> Conclusion:
    """:func:`ab_verdict` of a :class:`perfkit.analyze.abtest.Verdict`."""
    return ab_verdict(verdict.table(), verdict.verdict, len(verdict.baseline.runs), len(verdict.candidate.runs),
                      verdict.thresholds.confidence, (verdict.baseline.selector, verdict.candidate.selector))


# ---- 05 / 06: hardware --------------------------------------------------------------------------

def _best(metric: pd.Series) -> str | None:
    m = pd.to_numeric(metric, errors="coerce")
    m = m.where(m > 0).dropna()
    return str(m.idxmax()) if not m.empty else None


def short_basis(basis: str) -> str:
    """``MLPerf v4.1 closed/NVIDIA/results/B200-SXM-180GBx1_TRT/llama2-70b-99/Server`` ->
    ``MLPerf v4.1 row NVIDIA/B200-SXM-180GBx1_TRT`` (other text as it is)."""
    head, _, path = str(basis).partition(" closed/")
    parts = path.split("/")
    if not head.startswith("MLPerf") or len(parts) < 3 or parts[1] != "results":
        return str(basis)
    return f"{head} row {parts[0]}/{parts[2]}"


_PROFILE_METRIC = {"latency-sensitive": ("Server per accelerator", "server_basis"),
                   "throughput-first": ("Offline per accelerator", "offline_basis"),
                   "cost-sensitive": ("Server per accelerator per USD/hour of rent", "server_basis")}


def hardware(evidence: Mapping[str, pd.DataFrame], measured: pd.DataFrame | None, slo_p99_ms: float) -> Conclusion:
    """Notebook 05: per profile the device that wins each MLPerf benchmark and on what evidence (the
    imported MLPerf row, among how many devices with one), then the best device measured here (its run,
    n requests). Datasheet estimates decide nothing."""
    from perfkit.analyze.hardware.evidence import profile_metrics

    wins: dict[str, list[str]] = {p: [] for p in _PROFILE_METRIC}
    for model, ev in evidence.items():
        for profile, metric in profile_metrics(ev).items():
            best = _best(metric)
            if best is None:
                wins[profile].append(f"no device has evidence for {model}")
                continue
            scenario, basis = _PROFILE_METRIC[profile]
            n = int(pd.to_numeric(metric, errors="coerce").gt(0).sum())
            wins[profile].append(f"{best} for {model} ({fmt_value(metric[best])} {ev.at[best, 'units']} {scenario}; "
                                 f"{short_basis(ev.at[best, basis])}, best of {n} devices)")
    lines = [f"{p[:1].upper()}{p[1:]}: {'; '.join(w)}." for p, w in wins.items() if w]
    if measured is not None and not measured.empty and measured["qps_at_slo"].notna().any():
        best = str(measured["qps_at_slo"].idxmax())
        n = int(measured.at[best, "requests_at_capacity"]) if "requests_at_capacity" in measured else 0
        lines.append(f"Measured here: {best}, {fmt_value(measured.at[best, 'qps_at_slo'], 'req/s')} within the "
                     f"{fmt_value(slo_p99_ms, 'ms')} P99 SLO ({measured.at[best, 'basis']}, n={n:,} requests; "
                     f"{len(measured)} hardware label{'s' if len(measured) != 1 else ''} measured).")
    else:
        lines.append("Measured here: no run labelled hardware=NAME met the SLO.")
    lines.append("Datasheet figures are labelled estimates and decide nothing here.")
    return Conclusion("Which device wins each profile, on imported MLPerf rows and runs measured here", lines, "info")


def tco(costs: Mapping[str, pd.DataFrame], fleet_line: str) -> Conclusion:
    """Notebook 06: per unit of work the cheapest device on MLPerf evidence (its row, the dated price,
    n devices priced), then the mixed fleet's line. ``costs``: unit -> :func:`mlperf_tco` frame."""
    lines = []
    for per, table in costs.items():
        column = f"usd_per_{per.replace(' ', '_')}"
        if table.empty:
            lines.append(f"Per {per}: no MLPerf row with a price.")
            continue
        best = table[column].idxmin()
        lines.append(f"Per {per}: {best} is cheapest at {fmt_value(table.at[best, column], 'USD')} "
                     f"({short_basis(table.at[best, 'basis'])}, rent as of {table.at[best, 'price_as_of']}; "
                     f"{len(table)} devices priced).")
    lines.append(f"Fleet: {fleet_line}")
    lines.append("Costs on datasheet estimates are shown below as the estimate tier and decide nothing here.")
    return Conclusion("Cheapest device per unit of work", lines, "info")


# ---- 07: trends ---------------------------------------------------------------------------------

def trends(open_changes: pd.DataFrame, n_cases: int, summary: str = "") -> Conclusion:
    """Notebook 07: the open regressions (case, metric, change with its interval, since which run), or none,
    then ``summary`` (:meth:`perfkit.analyze.history.Trend.summary`). ``open_changes``:
    :func:`perfkit.analyze.history.changes_frame` of the open ones."""
    tail = [summary] if summary else []
    if open_changes.empty:
        return Conclusion("No open regression",
                          [f"No unacknowledged regression in the {n_cases} case{'s' if n_cases != 1 else ''} "
                           "followed.", *tail], "pass")
    lines = [f"{r['case']} {r['metric']}: {r['change_pct']:+.1f} % {r['interval_pct']} since run {r['run_id']}"
             + (f" (version {r['version_after']})" if r.get("version_after") else "")
             + f", {int(r['runs_since'])} run{'s' if int(r['runs_since']) != 1 else ''} since."
             for r in open_changes.to_dict("records")]
    lines += ["perfkit trend --ack CHANGE_ID --reason TEXT acknowledges one.", *tail]
    n = len(open_changes)
    return Conclusion(f"{n} open regression{'s' if n != 1 else ''}", lines, "fail")


# ---- 08: model optimization ---------------------------------------------------------------------

def optimization(table: pd.DataFrame, sentence: str, best: str | None) -> Conclusion:
    """Notebook 08: the best variant that keeps 99 % of FP32 accuracy (``sentence``:
    :func:`perfkit.optimize.conclusion`; ``best``: its name, None when no variant keeps it), and how many
    variants keep it."""
    within = int(table["within_99"].fillna(False).astype(bool).sum()) if "within_99" in table else 0
    lines = [sentence, f"{within} of {len(table)} variants keep 99 % of FP32 accuracy on the held-out test split."]
    if best is None:
        return Conclusion("No variant keeps 99 % of FP32 accuracy", lines, "warn")
    return Conclusion(f"Best variant within 99 % of FP32 accuracy: {best}", lines, "pass")


def model_variants(table: pd.DataFrame, verdicts: pd.DataFrame | None) -> Conclusion:
    """:func:`optimization` of notebook 08's variant table and A/B verdicts (:mod:`perfkit.optimize`)."""
    from perfkit.optimize.results import conclusion, recommended

    best = recommended(table, verdicts)
    return optimization(table, conclusion(table, verdicts), None if best is None else str(best["variant"]))


# ---- 09: sweep ----------------------------------------------------------------------------------

def sweep(steps: pd.DataFrame, knee: int | None, saturated_from: int | None, metric: str,
          sweep_id: str = "") -> Conclusion:
    """Notebook 09: the knee (achieved rate, the metric with its interval and n) and where the service
    over-saturated. ``steps``: one row per step by intended rate (``intended_rps``, ``achieved_rps``,
    ``value_ms``, ``lo_ms``, ``hi_ms``, ``n``); ``knee``/``saturated_from``: rows of it, or None."""
    if steps.empty:
        return Conclusion("No sweep steps to judge", ["The sweep stored no step."], "warn")
    top = float(steps["intended_rps"].max())
    lines = [f"Sweep {sweep_id}: " if sweep_id else ""]
    if knee is None:
        title = "No knee found"
        lines[0] += (f"latency did not bend enough over {len(steps)} steps up to {fmt_value(top, 'req/s')} to "
                     "name a knee.")
    else:
        k = steps.iloc[knee]
        title = f"Knee at {fmt_value(k['achieved_rps'], 'req/s')} achieved"
        lines[0] += (f"knee at {fmt_value(k['achieved_rps'], 'req/s')} achieved of "
                     f"{fmt_value(k['intended_rps'], 'req/s')} intended, {metric} "
                     f"{fmt_interval(k['value_ms'], k['lo_ms'], k['hi_ms'], 'ms')} (n={int(k['n']):,}) over "
                     f"{len(steps)} steps. Keep the operating point below it.")
    lines[0] = lines[0][:1].upper() + lines[0][1:]
    if saturated_from is None:
        lines.append(f"Never over-saturated up to {fmt_value(top, 'req/s')}.")
    else:
        lines.append(f"Over-saturated from {fmt_value(steps.iloc[saturated_from]['intended_rps'], 'req/s')}: the "
                     "queue grew without bound there, and the sweep went no higher.")
    return Conclusion(title, lines, "info" if knee is not None else "warn")


def sweep_report(report: SweepReport) -> Conclusion:
    """:func:`sweep` of a :class:`perfkit.analyze.sweep_report.SweepReport`."""
    return sweep(report.steps, report.knee, report.saturated_from, report.metric.name, report.sweep_id)
