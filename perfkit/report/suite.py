"""The report suites behind ``make report``: benchmark runs against the demo server, then reports.

A suite is declarative: a list of :class:`Case` (demo-server options, ``perfkit
bench`` flags, optionally an nginx proxy in front, and the per-run notebooks)
and a list of :class:`Comparison` (a notebook over several cases' runs, its
parameters naming runs as ``{run:CASE}``, all of them as ``{runs}``). To add a
case or a report, append one entry to ``DEFAULT_CASES`` / ``DEFAULT_REPORTS``.

Cases that share server options share one server process. A case or report
whose dependency is not available here (a bench pattern, nginx, a notebook) is
skipped with a one-line reason. Runs are labelled ``suite=<UTC stamp>,case=<name>``
so notebooks and ``perfkit runs`` can find them.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from perfkit.errors import UsageError
from perfkit.subprocesses import option_flags


@dataclass(frozen=True)
class Case:
    """One benchmark run of the suite."""

    name: str
    bench: Mapping[str, Any]                       # perfkit bench flags: {"rate": 200, "duration": 20}
    server: Mapping[str, Any] = field(default_factory=dict)   # DemoServer(**server) options
    proxy: bool = False                            # send the load through NginxProxy(server.url)
    notebooks: tuple[str, ...] = ("01_benchmark",)  # per-run notebooks (run_id injected)
    requires: tuple[str, ...] = ()                 # capabilities, see capability_missing()
    labels: str = ""                               # extra k=v label pairs, e.g. "hardware=cpu-demo"
    about: str = ""


@dataclass(frozen=True)
class Comparison:
    """One report over the suite's runs: ``{run:CASE}``, ``{runs}`` and ``{suite}`` are filled in."""

    name: str
    notebook: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    about: str = ""


@dataclass(frozen=True)
class Suite:
    name: str
    cases: tuple[Case, ...]
    reports: tuple[Comparison, ...] = ()


# ---- the default suite ----------------------------------------------------------------------
# Rates measured on a 2-core machine where the load generator and the demo server share the
# cores: the dynamic-batching classifier holds P99 near 10 ms up to ~1,000 req/s, so 200 req/s
# leaves head-room for other work; fixed batching at 100 req/s waits to fill batches of 16.

STEADY = {"pattern": "constant", "rate": 200, "duration": 20}
BATCHING_STEPS = {"pattern": "step", "rate": 50, "duration": 15, "step_rps": 50, "step_s": 5, "steps": 3}
# The demo server on this machine, as a "hardware" for notebooks 05/06 (label key hardware).
THIS_MACHINE = "hardware=cpu-demo"
# Its hourly price, a visible assumption: a 2-vCPU on-demand VM (AWS c6i.large, us-east-1 list price).
THIS_MACHINE_PRICE = "cpu-demo:0.085"

DEFAULT_CASES: tuple[Case, ...] = (
    Case("steady", STEADY, labels=THIS_MACHINE, notebooks=("01_benchmark", "02_telemetry"),
         about="constant 200 req/s, dynamic batching: the baseline"),
    Case("burst", {"pattern": "burst", "rate": 100, "duration": 20, "spike_rps": 600,
                   "spike_period_s": 5, "spike_s": 1}, requires=("bench:pattern:burst",), labels=THIS_MACHINE,
         about="100 req/s with a 1 s spike to 700 req/s every 5 s"),
    Case("step", {"pattern": "step", "rate": 100, "duration": 20, "step_rps": 150, "step_s": 4,
                  "steps": 5}, requires=("bench:pattern:step",), labels=THIS_MACHINE,
         about="100 to 700 req/s in five 4 s steps"),
    # batching cases step the load (50, 100, 150 req/s) so that 03_root_cause can see whether the
    # batch follows it (analyze: rootcause.fixed_batching needs >= 1.5x load variation)
    Case("batching-dynamic", BATCHING_STEPS, server={"batching": "dynamic", "max_batch": 16},
         requires=("bench:pattern:step",), labels="batching=dynamic,max_batch=16",
         about="dynamic batching (up to 16 or 5 ms) at 50, 100, 150 req/s"),
    Case("batching-fixed", BATCHING_STEPS, server={"batching": "fixed", "max_batch": 16},
         requires=("bench:pattern:step",), labels="batching=fixed,max_batch=16",
         about="fixed batching (wait to fill 16, padded) at 50, 100, 150 req/s, server otherwise the same"),
    # direct and proxy run back to back on the same warm server, so the nginx hop is the only
    # difference (steady runs first, on a cold server, and is no fair baseline for it)
    Case("direct", STEADY, requires=("nginx",), labels="proxy=none",
         about="the steady load straight to the server: the baseline for the proxy case"),
    Case("proxy", STEADY, proxy=True, requires=("nginx",), labels="proxy=nginx",
         about="the steady load through an nginx reverse proxy (compare with direct)"),
    Case("llm-stream", {"pattern": "poisson", "rate": 5, "duration": 20, "protocol": "openai",
                        "max_tokens": 24}, requires=("bench:protocol:openai",),
         about="OpenAI chat completions, streamed, Poisson 5 req/s, up to 24 tokens each"),
)

DEFAULT_REPORTS: tuple[Comparison, ...] = (
    Comparison("03_root_cause", "03_root_cause", {"run_ids": "{runs}"},
               about="ranked findings over the suite: fixed vs dynamic batching, the nginx hop, GPU export"),
    Comparison("04_ab_compare", "04_ab_compare",
               {"baseline": "{run:batching-dynamic}", "candidate": "{run:batching-fixed}"},
               about="A/B verdict: fixed batching (candidate) against dynamic batching (baseline)"),
    Comparison("04_ab_compare-proxy", "04_ab_compare", {"baseline": "{run:direct}", "candidate": "{run:proxy}"},
               about="A/B verdict: through nginx (candidate) against direct (baseline), same load"),
    Comparison("05_hardware_comparison", "05_hardware_comparison",
               {"price_overrides": THIS_MACHINE_PRICE},
               about="datasheets, MLPerf and this machine's measured runs (label hardware=cpu-demo)"),
    Comparison("06_tco", "06_tco", {"price_overrides": THIS_MACHINE_PRICE},
               about="cost per 1M requests and fleet sizing from the catalog and the measured runs"),
)

SUITES: dict[str, Suite] = {"default": Suite("default", DEFAULT_CASES, DEFAULT_REPORTS)}


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise UsageError(f"unknown suite {name!r} (known: {', '.join(sorted(SUITES))})") from None


# ---- capabilities: what this checkout and machine can run -------------------------------------

def _bench_choices(dest: str) -> set[str]:
    """Choices ``perfkit bench`` accepts for one flag (read from its parser)."""
    import argparse

    from perfkit.cli import build_parser

    for action in build_parser()._actions:
        if not isinstance(action, argparse._SubParsersAction) or "bench" not in action.choices:
            continue
        for act in action.choices["bench"]._actions:
            if act.dest == dest and act.choices:
                return {str(c) for c in act.choices}
    return set()


def capability_missing(name: str) -> str | None:
    """None when ``name`` is available, else a one-line reason."""
    kind, _, rest = name.partition(":")
    if kind == "bench":
        flag, _, value = rest.partition(":")
        choices = _bench_choices(flag)
        return None if value in choices else f"perfkit bench has no --{flag} {value} yet"
    if kind == "nginx":
        try:
            from perfkit.demo.proxy import NginxProxy, nginx_binary  # noqa: F401

            nginx_binary()
        except ImportError:
            return "perfkit.demo.proxy.NginxProxy is not available yet"
        except UsageError as exc:
            return str(exc)
        return None
    if kind == "notebook":
        from perfkit.report.render import available_notebooks

        return None if any(p.stem == rest for p in available_notebooks()) else f"notebook {rest} not found"
    if kind == "module":
        import importlib

        try:
            importlib.import_module(rest)
        except ImportError as exc:
            return f"{rest} is not available yet ({exc})"
        return None
    if kind == "which":
        return None if shutil.which(rest) else f"{rest} is not installed"
    raise ValueError(f"unknown capability {name!r}")


def comparison_problem(rep: Comparison) -> str | None:
    """Why a comparison report cannot render here (a capability, its notebook, a parameter), else None."""
    why = missing((*rep.requires, f"notebook:{rep.notebook}"))
    if why:
        return why
    from perfkit.report.render import notebook_parameters, resolve_notebook

    nb = resolve_notebook(rep.notebook)
    undeclared = sorted(set(rep.parameters) - set(notebook_parameters(nb)))
    if undeclared:
        return f"{nb.name} declares no parameter {', '.join(undeclared)}"
    return None


def missing(requires: Sequence[str]) -> str | None:
    for req in requires:
        reason = capability_missing(req)
        if reason:
            return reason
    return None


def describe(suite: Suite) -> list[str]:
    """One line per case and report: name, what it does, and why it would be skipped."""
    lines = [f"suite {suite.name}:"]
    for case in suite.cases:
        why = missing(case.requires)
        lines.append(f"  case   {case.name:<18} {'SKIP: ' + why if why else 'ok'}  {case.about}")
    for rep in suite.reports:
        why = comparison_problem(rep)
        lines.append(f"  report {rep.name:<18} {'SKIP: ' + why if why else 'ok'}  {rep.about}")
    return lines


# ---- pure helpers -------------------------------------------------------------------------------

def server_key(options: Mapping[str, Any]) -> str:
    return json.dumps(dict(options), sort_keys=True, default=str)


_RUN_REF = re.compile(r"\{run:([^{}]+)\}")


def fill_parameters(params: Mapping[str, Any], run_ids: Mapping[str, str], suite_label: str) -> dict[str, Any]:
    """Replace ``{run:CASE}``, ``{runs}`` and ``{suite}`` inside string parameters.

    ``"{run:steady},{run:proxy}"`` becomes ``"RUN1,RUN2"``; a case without a run raises KeyError.
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str):
            value = _RUN_REF.sub(lambda m: run_ids[m.group(1)], value)
            value = value.replace("{runs}", ",".join(run_ids.values())).replace("{suite}", suite_label)
        out[key] = value
    return out


def suite_stamp(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# ---- running ------------------------------------------------------------------------------------

@dataclass
class CaseResult:
    case: Case
    run_id: str | None = None
    summary: dict[str, Any] | None = None
    skipped: str | None = None
    failed: str | None = None


def _run_bench(case: Case, target: str, db: str | None, label: str, pid: int | None,
               log: Path) -> CaseResult:
    with tempfile.TemporaryDirectory() as tmp:
        summary_path = Path(tmp) / "summary.json"
        cmd = [sys.executable, "-m", "perfkit", "bench", "--target", target, "--label", label,
               "--summary-json", str(summary_path), "--quiet", *option_flags(case.bench)]
        if db:
            cmd += ["--db", str(db)]
        if pid is not None:
            cmd += ["--target-pid", str(pid)]
        limit_s = float(case.bench.get("duration", 60)) * 3 + 120
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"\n$ {' '.join(cmd)}\n")
            fh.flush()
            try:
                res = subprocess.run(cmd, stdout=fh, stderr=subprocess.PIPE, text=True, timeout=limit_s,
                                     stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return CaseResult(case, failed=f"perfkit bench did not finish within {limit_s:.0f} s")
            fh.write(res.stderr)
        if not summary_path.exists():
            last = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
            return CaseResult(case, failed=f"perfkit bench exited {res.returncode}: {last}")
        summary = json.loads(summary_path.read_text())
        return CaseResult(case, run_id=str(summary["run_id"]), summary=summary)


@contextlib.contextmanager
def _target(case: Case, server: Any) -> Iterator[str]:
    if not case.proxy:
        yield server.url
        return
    from perfkit.demo.proxy import NginxProxy

    with NginxProxy(server.url) as proxy:
        yield proxy.url


def _one_line(result: CaseResult) -> str:
    name = result.case.name
    if result.skipped:
        return f"  {name}: skipped ({result.skipped})"
    if result.failed:
        return f"  {name}: FAILED ({result.failed})"
    s = result.summary or {}
    lat = s.get("latency_ms") or {}
    p99 = lat.get("p99")
    p99_text = f"{p99:,.1f} ms" if isinstance(p99, (int, float)) else "n/a"
    errors = sum((s.get("errors") or {}).values())
    return (f"  {name}: run {result.run_id}, {s.get('requests', 0):,} requests, {errors:,} errors, "
            f"P99 {p99_text}, {s.get('achieved_rate_rps') or 0:,.1f} req/s achieved")


def run_cases(cases: Sequence[Case], db: str | None, stamp: str, log: Path, progress: bool = True,
              say: Callable[[str], None] = print) -> list[CaseResult]:
    """Run every available case; one demo server per distinct set of server options."""
    from tqdm import tqdm

    from perfkit.demo.launch import DemoServer

    results: dict[str, CaseResult] = {}
    runnable: list[Case] = []
    for case in cases:
        why = missing(case.requires)
        if why:
            results[case.name] = CaseResult(case, skipped=why)
        else:
            runnable.append(case)
    groups: dict[str, list[Case]] = {}
    for case in runnable:
        groups.setdefault(server_key(case.server), []).append(case)
    total_s = sum(float(c.bench.get("duration", 0)) for c in runnable)
    bar = tqdm(total=round(total_s), desc="benchmarks", unit="s", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s of load [{elapsed}<{remaining}]{postfix}")
    try:
        for key, group in groups.items():
            try:
                server_cm = DemoServer(**json.loads(key))
                server = server_cm.start()
            except Exception as exc:  # the server did not come up: its cases fail, others go on
                for case in group:
                    results[case.name] = CaseResult(case, failed=f"demo server: {str(exc).splitlines()[0]}")
                    bar.update(round(float(case.bench.get("duration", 0))))
                continue
            try:
                for case in group:
                    bar.set_postfix_str(case.name)
                    label = ",".join(x for x in (f"suite={stamp},case={case.name}", case.labels) if x)
                    try:
                        with _target(case, server) as url:
                            results[case.name] = _run_bench(case, url, db, label, server.pid, log)
                    except Exception as exc:  # nginx did not start, ...: this case fails, others go on
                        results[case.name] = CaseResult(case, failed=f"{type(exc).__name__}: "
                                                        f"{str(exc).splitlines()[0] if str(exc) else ''}")
                    bar.update(round(float(case.bench.get("duration", 0))))
            finally:
                server_cm.stop()
    finally:
        bar.close()
    ordered = [results[c.name] for c in cases]
    for res in ordered:
        say(_one_line(res))
    return ordered


def report_jobs(suite: Suite, results: Sequence[CaseResult], stamp: str,
                overrides: Mapping[str, str] | None = None,
                say: Callable[[str], None] = print) -> list:
    """The notebooks to render: each case's per-run notebooks, then the comparisons."""
    from perfkit.report.cli import build_jobs
    from perfkit.report.render import ReportJob, available_notebooks, resolve_notebook, safe_name

    jobs: list[ReportJob] = []
    run_ids = {r.case.name: r.run_id for r in results if r.run_id}
    known = {p.stem for p in available_notebooks()}
    raw = [[k, v] for k, v in (overrides or {}).items()]
    for res in results:
        if not res.run_id:
            continue
        for nb_name in res.case.notebooks:
            if nb_name not in known:
                say(f"  report {nb_name}-{res.case.name}: skipped (notebook {nb_name} not found)")
                continue
            nb = resolve_notebook(nb_name)
            job = build_jobs([nb], [r for r in raw if r[0] != "run_id"], safe_name(f"{nb_name}-{res.case.name}"))[0]
            job.parameters["run_id"] = res.run_id
            jobs.append(job)
    for rep in suite.reports:
        why = comparison_problem(rep)
        if why:
            say(f"  report {rep.name}: skipped ({why})")
            continue
        try:
            params = fill_parameters(rep.parameters, run_ids, f"suite={stamp}")
        except KeyError as exc:
            say(f"  report {rep.name}: skipped (case {exc.args[0]} has no run)")
            continue
        nb = resolve_notebook(rep.notebook)
        jobs.append(ReportJob(notebook=nb, name=safe_name(rep.name), parameters=params))
    return jobs


def run_suite(suite: Suite, db: str | None = None, out_dir: Path = Path("reports"), progress: bool = True,
              overrides: Mapping[str, str] | None = None) -> int:
    """Run the suite's cases, render its reports, print where they are; exit 1 if anything failed."""
    from perfkit.report.render import render_reports
    from perfkit.paths import db_path as default_db_path

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = suite_stamp()
    db_path = str(default_db_path(db))
    log = out_dir / "suite.log"
    log.write_text(f"perfkit report --suite {suite.name} at {stamp}, db {db_path}\n", encoding="utf-8")
    started = time.monotonic()
    print(f"suite {suite.name} ({stamp}): {len(suite.cases)} cases against the demo server; "
          f"runs go to {db_path}, bench output to {log}")
    results = run_cases(suite.cases, db_path, stamp, log, progress)
    jobs = report_jobs(suite, results, stamp, overrides)
    print(f"rendering {len(jobs)} reports into {out_dir}/")
    records = render_reports(jobs, out_dir, db=db_path, progress=progress)
    failed_cases = [r for r in results if r.failed]
    failed_reports = [r for r in records if not r.ok]
    for rec in failed_reports:
        print(f"  report {rec.name}: FAILED at {rec.error.message()}")  # type: ignore[union-attr]
    print(f"{len(records) - len(failed_reports)} of {len(records)} reports ok, "
          f"{sum(1 for r in results if r.run_id)} runs, {sum(1 for r in results if r.skipped)} cases skipped, "
          f"in {time.monotonic() - started:,.0f} s")
    print(f"open {(out_dir / 'index.html').resolve().as_uri()}")
    return 1 if failed_cases or failed_reports else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m perfkit.report.suite [NAME]``: the same as ``perfkit report --suite NAME``."""
    from perfkit.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    name = args.pop(0) if args and not args[0].startswith("-") else "default"
    return cli_main(["report", "--suite", name, *args])


if __name__ == "__main__":
    sys.exit(main())
