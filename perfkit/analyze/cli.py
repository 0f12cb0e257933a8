"""Sub-commands of perfkit.analyze: ``perfkit compare`` and ``perfkit abtest`` (A/B verdicts), ``perfkit diagnose``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfkit.errors import UsageError

if TYPE_CHECKING:
    from perfkit.analyze.abtest import Thresholds, Verdict

_JUDGE = ("The unit of replication is the run: each side is one or more runs, and the P50, P99 and error-rate "
          "differences get hierarchical bootstrap intervals (runs resampled, then blocks within runs, block "
          "length from the data; one run on a side falls back to the within-run block bootstrap and says that "
          "run-to-run variance is unknown). A metric FAILs when its whole interval lies above the practical "
          "margin, PASSes when it lies below it, else it is INCONCLUSIVE; no p-value decides. "
          "Exit 0 pass or inconclusive, 1 fail (regression), 2 bad input.")


def _add_judge_arguments(p: argparse.ArgumentParser) -> None:
    """The judge's flags, shared by compare and abtest."""
    p.add_argument("--metric", action="append", default=None,
                   help="latency_ms (default), service_ms, ttft_ms, tpot_ms, ...; repeatable")
    p.add_argument("--json", metavar="PATH",
                   help="write the verdict as JSON here ('-' for stdout; perfkit/analyze/verdict.schema.json)")
    p.add_argument("--margin-rel", type=float, default=0.05,
                   help="practical effect, share of the baseline P50/P99 (default 0.05)")
    p.add_argument("--margin-ms", type=float, default=0.1, help="practical effect floor in ms (default 0.1)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="one-sided error of each interval bound; intervals are 1 - 2 alpha (default 0.05: 90%%)")
    p.add_argument("--fail-on-inconclusive", action="store_true",
                   help="exit 1 also when the verdict is inconclusive")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to `perfkit`."""
    from perfkit.bench.cli import add_load_arguments
    from perfkit.cliutil import add_command, add_db_argument

    cmp_ = add_command(sub, "compare", _cmd_compare,
                       help="A/B verdict between runs or sets of runs (exit 1 on a regression)",
                       description="Compare candidate runs with baseline runs. " + _JUDGE)
    cmp_.add_argument("baseline_run", nargs="?", metavar="BASELINE",
                      help="baseline run id(s), comma-separated, or a label selector (default: the run "
                           "before the candidate)")
    cmp_.add_argument("candidate_run", nargs="?", metavar="CANDIDATE",
                      help="candidate run id(s) or a label selector (default: latest)")
    cmp_.add_argument("--baseline", metavar="SEL", help="baseline runs: ids or labels, e.g. 'case=direct,suite=...'")
    cmp_.add_argument("--candidate", metavar="SEL", help="candidate runs: ids or labels, e.g. 'case=proxy'")
    cmp_.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    add_db_argument(cmp_)
    _add_judge_arguments(cmp_)

    ab = add_command(
        sub, "abtest", _cmd_abtest,
        help="run baseline and candidate N times each, interleaved, then judge (exit 1 on a regression)",
        description=("Benchmark two targets (or two scenario files) REPEATS times each in an interleaved "
                     "ABBA or random order, store every run labelled abtest=ID,arm=baseline|candidate,"
                     "repeat=I, then judge them. Takes every `perfkit bench` flag but --target. " + _JUDGE))
    for arm in ("baseline", "candidate"):
        ab.add_argument(f"--{arm}-target", metavar="URL", required=True, help=f"the {arm}'s URL")
        ab.add_argument(f"--{arm}-scenario", metavar="TOML", help=f"the {arm}'s scenario file (default: SCENARIO)")
        ab.add_argument(f"--{arm}-metrics-url", action="append", metavar="URL",
                        help=f"the {arm}'s metrics endpoint (repeatable; default: --metrics-url)")
    ab.add_argument("--repeats", type=int, default=3, help="runs per arm (default 3)")
    ab.add_argument("--order", choices=("abba", "random"), default="abba",
                    help="abba: AB BA AB ...; random: each round's order by a seeded coin (default abba)")
    add_load_arguments(ab)
    _add_judge_arguments(ab)

    diag = sub.add_parser(
        "diagnose", help="ranked root-cause findings for runs",
        description=("Run the root-cause rules (queueing, fixed batching, proxy overhead, GPU memory, "
                     "lagged correlation and change points, schedule lag, availability/MTTR, SLO) "
                     "over runs and print the ranked findings. GPU findings use each run's own GPU "
                     "telemetry or GPU exports whose samples fall inside its time window."))
    diag.add_argument("runs", nargs="*", help="run ids (default: every run of the newest suite)")
    add_db_argument(diag)
    diag.add_argument("--json", metavar="PATH", help="write the findings as JSON here ('-' for stdout)")
    diag.add_argument("--fail-on", choices=("critical", "high", "medium", "low"), default=None,
                      help="exit 1 when a finding of this severity or worse is found (for pipelines)")
    diag.add_argument("--gpu-source", type=int, action="append", default=None, metavar="SOURCE_ID",
                      help="GPU export to judge the GPU by (a source id; repeatable). Default: the runs' "
                           "own GPU telemetry, or exports whose samples fall inside a run's time window")
    diag.add_argument("--server-kind", default=None, metavar="KIND",
                      help="read the servers' metrics as this kind (demo, triton, vllm, tgi, torchserve, sglang, "
                           "mlserver, kserve); default: detected from each run's metric names")
    diag.set_defaults(func=_cmd_diagnose)


def _write_json(path: str, data: object) -> None:
    from perfkit.jsonsafe import dumps

    text = dumps(data, indent=2, default=str)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n", encoding="utf-8")


def _thresholds(args: argparse.Namespace) -> tuple[list[str], Thresholds]:
    from perfkit.analyze import abtest
    from perfkit.store import runs

    metrics = args.metric or ["latency_ms"]
    for m in metrics:
        if m not in runs.LATENCY_COLUMNS:
            raise UsageError(f"--metric {m}: unknown; one of {', '.join(runs.LATENCY_COLUMNS)}")
    if not 0 < args.alpha < 0.5:
        raise UsageError(f"--alpha {args.alpha}: must be within (0, 0.5)")
    if args.margin_rel < 0 or args.margin_ms < 0:
        raise UsageError("--margin-rel and --margin-ms must be >= 0")
    return metrics, abtest.Thresholds(alpha=args.alpha, margin_rel=args.margin_rel, margin_abs_ms=args.margin_ms)


def _report(verdict: Verdict, args: argparse.Namespace) -> int:
    """Print the runs, the metric rows and the verdict; write --json; the exit code."""
    import pandas as pd

    out = sys.stdout if args.json != "-" else sys.stderr
    with pd.option_context("display.width", 200, "display.max_colwidth", 100):
        runs = verdict.runs()[["arm", "repeat", "run_id", "requests", "effective_requests", "block_length",
                               "p50_ms", "p99_ms", "error_rate"]]
        print(runs.to_string(index=False, float_format=lambda v: f"{v:.4g}"), file=out)
        table = verdict.table()[["metric", "decision", "baseline", "candidate", "difference", "lo", "hi", "margin"]]
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"), file=out)
    for note in verdict.notes:
        print(f"note: {note}", file=out)
    print(verdict.sentence(), file=out)
    print(f"verdict: {verdict.verdict.upper()}", file=out)
    if args.json:
        _write_json(args.json, verdict.to_dict())
    if verdict.verdict == "fail" or (args.fail_on_inconclusive and verdict.verdict == "inconclusive"):
        return 1
    return 0


def _side(positional: str | None, flag: str | None, name: str) -> str:
    if positional and flag:
        raise UsageError(f"the {name} is given twice (positional and --{name}); give one")
    return flag or positional or ""


def _cmd_compare(args: argparse.Namespace) -> int:
    from perfkit import store
    from perfkit.analyze import abtest

    metrics, th = _thresholds(args)
    baseline = _side(args.baseline_run, args.baseline, "baseline")
    candidate = _side(args.candidate_run, args.candidate, "candidate")
    with store.connect(args.db, read_only=True) as con:
        verdict = abtest.compare_runs(con, baseline, candidate, metrics, th, seed=args.seed)
    return _report(verdict, args)


def _cmd_abtest(args: argparse.Namespace) -> int:
    from perfkit import store
    from perfkit.analyze import abtest, experiment
    from perfkit.bench.cli import config_from_args

    if args.target or args.summary_json:
        raise UsageError("abtest takes --baseline-target/--candidate-target (not --target) and writes no "
                         "--summary-json (use --json for the verdict)")
    metrics, th = _thresholds(args)
    configs: dict[str, Any] = {}
    for arm in experiment.ARMS:
        given = argparse.Namespace(**vars(args))
        given.target = getattr(args, f"{arm}_target")
        given.scenario = getattr(args, f"{arm}_scenario") or args.scenario
        given.metrics_url = getattr(args, f"{arm}_metrics_url") or args.metrics_url
        configs[arm] = config_from_args(given)
        configs[arm].validate()
    seed = args.seed or 0
    order = experiment.run_order(args.repeats, args.order, seed)
    log = sys.stderr if args.json == "-" else sys.stdout
    print(f"abtest: {args.repeats} run(s) per arm, order {''.join(a[0].upper() for a, _ in order)}",
          file=log, flush=True)

    def said(arm: str, repeat: int, s: Any) -> None:
        p50, p99 = s["latency_ms"]["p50"], s["latency_ms"]["p99"]
        print(f"  {arm} {repeat}: run {s['run_id']}, {s['requests']:,} requests, "
              f"P50 {p50 or 0:.2f} ms, P99 {p99 or 0:.2f} ms", file=log, flush=True)

    exp = experiment.run_experiment(configs, args.repeats, args.order, seed, on_run=said)
    print(f"abtest {exp.id}: judge again with `perfkit compare --baseline '{exp.selector('baseline')}' "
          f"--candidate '{exp.selector('candidate')}'`", file=log)
    with store.connect(args.db, read_only=True) as con:
        verdict = abtest.compare_runs(con, exp.selector("baseline"), exp.selector("candidate"), metrics, th,
                                      seed=seed)
    return _report(verdict, args)


def _cmd_diagnose(args: argparse.Namespace) -> int:
    import pandas as pd

    from perfkit import store
    from perfkit.analyze import rootcause

    with store.connect(args.db, read_only=True) as con:
        found = rootcause.diagnose(con, args.runs or None, gpu_sources=args.gpu_source or (),
                                   server_kind=args.server_kind)
    if args.json:
        _write_json(args.json, [f.to_dict() for f in found])
    if not found:
        print("no findings: none of the rules' causes is supported by these runs' data")
        return 0
    table = rootcause.findings_table(found)
    with pd.option_context("display.width", 220, "display.max_colwidth", 120):
        print(table[["severity", "title", "action"]].to_string(index=False),
              file=sys.stdout if args.json != "-" else sys.stderr)
    if args.fail_on:
        bar = rootcause.SEVERITY_RANK[args.fail_on]
        worst = [f for f in found if rootcause.SEVERITY_RANK[f.severity] >= bar]
        if worst:
            print(f"perfkit diagnose: {len(worst)} finding(s) at {args.fail_on} or worse", file=sys.stderr)
            return 1
    return 0
