"""Running a suite: demo servers up, each case benchmarked, then every report rendered.

Cases run in :func:`perfkit.pipeline.suite.schedule` order (repeats, A/B arms
interleaved). Cases that share server options share one demo server process,
started before its first run and stopped after its last, so the two servers of
an interleaved pair are up together. A case or report whose dependency is not
available here (a bench pattern, nginx, a notebook) is skipped with a one-line
reason; one that fails does not stop the others.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterator, Mapping, Sequence

from perfkit.names import LABEL_SUITE
from perfkit.paths import DEFAULT_REPORTS, db_path as default_db_path
from perfkit.pipeline.bench import BenchFailed, run_bench, run_sweep
from perfkit.pipeline.capabilities import comparison_problem, enable_command, install_missing, missing
from perfkit.pipeline.history import build_demo_history
from perfkit.pipeline.placement import Placement, here
from perfkit.pipeline.suite import Case, Suite, fill_parameters, run_label, schedule, server_key, suite_stamp
from perfkit.summary import RunSummary

if TYPE_CHECKING:
    from perfkit.demo.launch import DemoServer
    from perfkit.report.render import ReportJob


@dataclass
class CaseResult:
    """What became of one run of a case: a run (with its summary), or why it was skipped or failed."""

    case: Case
    run_id: str | None = None
    summary: RunSummary | None = None
    skipped: str | None = None
    failed: str | None = None
    repeat: int = 1
    note: str | None = None        # a sweep's headline: its knee and where it over-saturated


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]


def bench_case(case: Case, target: str, db: str | None, label: str, pid: int | None, log: Path,
               repeat: int = 1, cpus: Collection[int] | None = None) -> CaseResult:
    """Benchmark one case against ``target`` (a sweep case: sweep it), the load generator on ``cpus`` when
    given; a bench failure is recorded in the result."""
    limit_s = (case.load_s or 60) * 3 + 120
    try:
        if case.sweep:
            res = run_sweep(target, {**case.bench, **case.sweep, "quiet": True}, label=label, db=db,
                            target_pid=pid, log=log, timeout_s=limit_s, cpus=cpus)
            last = res["points"][-1]["run_id"] if res.get("points") else None
            return CaseResult(case, run_id=last, repeat=repeat, note=res.get("headline"))
        summary = run_bench(target, {**case.bench, "quiet": True}, label=label, db=db, target_pid=pid,
                            log=log, timeout_s=limit_s, cpus=cpus)
    except BenchFailed as exc:
        return CaseResult(case, failed=str(exc), repeat=repeat)
    return CaseResult(case, run_id=str(summary["run_id"]), summary=summary, repeat=repeat)


@contextlib.contextmanager
def _target(case: Case, server: DemoServer) -> Iterator[str]:
    if not case.proxy:
        yield server.url
        return
    from perfkit.demo.proxy import NginxProxy

    with NginxProxy(server.url) as proxy:
        yield proxy.url


def one_line(result: CaseResult) -> str:
    """``  steady: run R, 4,000 requests, 0 errors, P99 9.8 ms, 199.9 req/s achieved`` (or why not)."""
    name = result.case.name + (f" #{result.repeat}" if result.case.repeats > 1 and not result.skipped else "")
    if result.skipped:
        return f"  {name}: skipped ({result.skipped})"
    if result.failed:
        return f"  {name}: FAILED ({result.failed})"
    s = result.summary
    if s is None:
        return f"  {name}: run {result.run_id}" + (f", {result.note}" if result.note else "")
    p99 = s["latency_ms"]["p99"]
    p99_text = f"{p99:,.1f} ms" if p99 is not None else "n/a"
    return (f"  {name}: run {result.run_id}, {s['requests']:,} requests, {sum(s['errors'].values()):,} errors, "
            f"P99 {p99_text}, {s['achieved_rate_rps'] or 0:,.1f} req/s achieved")


def run_cases(cases: Sequence[Case], db: str | None, stamp: str, log: Path, progress: bool = True,
              say: Callable[[str], None] = print, placement: Placement | None = None) -> list[CaseResult]:
    """Run every available case, each repeat, in schedule order; one demo server per distinct set of
    server options, up from its first run to its last. ``placement`` (default :func:`placement.here`):
    the CPUs of the servers and of the load generator."""
    placement = placement or here()
    from tqdm import tqdm

    skipped = {c.name: why for c in cases if (why := missing(c.requires))}
    slots = schedule([c for c in cases if c.name not in skipped])
    last = {server_key(c.server): k for k, (c, _) in enumerate(slots)}
    total_s = sum(c.load_s for c, _ in slots)
    bar = tqdm(total=round(total_s), desc="benchmarks", unit="s", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s of load [{elapsed}<{remaining}]{postfix}")
    servers: dict[str, DemoServer | Exception] = {}
    done: dict[tuple[str, int], CaseResult] = {}
    try:
        for k, (case, repeat) in enumerate(slots):
            bar.set_postfix_str(case.name)
            done[(case.name, repeat)] = _run_slot(case, repeat, servers, db, stamp, log, placement)
            bar.update(round(case.load_s))
            key = server_key(case.server)
            if last[key] == k:  # its last run: stop it now
                server = servers.pop(key)
                if not isinstance(server, Exception):
                    server.stop()
    finally:
        bar.close()
        for server in servers.values():
            if not isinstance(server, Exception):
                server.stop()
    ordered = [CaseResult(c, skipped=skipped[c.name]) if c.name in skipped else done[(c.name, i)]
               for c in cases for i in range(1, (1 if c.name in skipped else c.repeats) + 1)]
    for res in ordered:
        say(one_line(res))
    return ordered


def _run_slot(case: Case, repeat: int, servers: dict[str, DemoServer | Exception], db: str | None, stamp: str,
              log: Path, placement: Placement) -> CaseResult:
    """One run of a case, its demo server started first if it is not up (a server that did not come up
    fails each of its runs)."""
    from perfkit.demo.launch import DemoServer

    key = server_key(case.server)
    if key not in servers:
        try:
            servers[key] = DemoServer(cpus=placement.server, **json.loads(key)).start()
        except Exception as exc:  # the server did not come up: its cases fail, others go on
            servers[key] = exc
    server = servers[key]
    if isinstance(server, Exception):
        return CaseResult(case, failed=f"demo server: {_first_line(server)}", repeat=repeat)
    try:
        with _target(case, server) as url:
            return bench_case(case, url, db, run_label(stamp, case, repeat), server.pid, log, repeat,
                              placement.generator)
    except Exception as exc:  # nginx did not start, ...: this run fails, others go on
        return CaseResult(case, failed=f"{type(exc).__name__}: {_first_line(exc)}", repeat=repeat)


def report_jobs(suite: Suite, results: Sequence[CaseResult], stamp: str,
                overrides: Mapping[str, str] | None = None,
                say: Callable[[str], None] = print, skipped: list[dict[str, str]] | None = None) -> list[ReportJob]:
    """The notebooks to render: each case's per-run notebooks, then the comparisons. A report that cannot
    render is said, and appended to ``skipped`` (``{"report", "why"}``) when given."""
    from perfkit.report.render import ReportJob, available_notebooks, build_jobs, resolve_notebook, safe_name

    def skip(name: str, why: str) -> None:
        say(f"  report {name}: skipped ({why})")
        if skipped is not None:
            skipped.append({"report": name, "why": why})

    jobs: list[ReportJob] = []
    run_ids: dict[str, str] = {}       # a case's first run: its per-run reports, {run:CASE}, {runs}
    for r in results:
        if r.run_id:
            run_ids.setdefault(r.case.name, r.run_id)
    firsts = [r for r in results if r.run_id and run_ids[r.case.name] == r.run_id]
    known = {p.stem for p in available_notebooks()}
    raw = [(k, v) for k, v in (overrides or {}).items() if k != "run_id"]
    for res in firsts:
        for nb_name in res.case.notebooks:
            if nb_name not in known:
                skip(f"{nb_name}-{res.case.name}", f"notebook {nb_name} not found")
                continue
            job = build_jobs([resolve_notebook(nb_name)], raw, safe_name(f"{nb_name}-{res.case.name}"))[0]
            job.parameters["run_id"] = res.run_id
            jobs.append(job)
    for rep in suite.reports:
        why = comparison_problem(rep)
        if why:
            skip(rep.name, why)
            continue
        try:
            params = fill_parameters(rep.parameters, run_ids, f"{LABEL_SUITE}={stamp}")
        except KeyError as exc:
            skip(rep.name, f"case {exc.args[0]} has no run")
            continue
        jobs.append(ReportJob(notebook=resolve_notebook(rep.notebook), name=safe_name(rep.name), parameters=params))
    return jobs


def suite_notes(suite: Suite, stamp: str, placement: Placement, results: Sequence[CaseResult],
                installed: Sequence[str] = (), skipped_reports: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """What the index says about the suite (:func:`perfkit.report.index.suite_html`): where the server and the
    load generator ran, the runs whose generator fell behind (schedule lag), what was installed, and each
    skipped case with why and the command that enables it."""
    behind = []
    for r in results:
        if r.summary is not None and not r.summary["validity"]["generator_kept_up"]:
            lag = r.summary["schedule_lag_ms"]
            behind.append({"case": r.case.name + (f" #{r.repeat}" if r.case.repeats > 1 else ""),
                           "run_id": r.run_id, "lag_p99_ms": lag["p99"], "late_fraction": lag["late_fraction"]})
    return {"suite": suite.name, "stamp": stamp, "placement": placement.note, "pinned": placement.pinned,
            "runs": sum(1 for r in results if r.summary is not None), "behind": behind, "installed": list(installed),
            "skipped": [{"case": r.case.name, "why": r.skipped, "enable": enable_command(r.case.requires)}
                        for r in results if r.skipped],
            "skipped_reports": [dict(x) for x in skipped_reports]}


def run_suite(suite: Suite, db: str | None = None, out_dir: Path = DEFAULT_REPORTS, progress: bool = True,
              overrides: Mapping[str, str] | None = None, screenshots: bool = False, install: bool = False) -> int:
    """Run the suite's cases, render its reports, print where they are; exit 1 if anything failed.

    ``install``: first install what the cases need (nginx) the way ``.ci/run`` does, where root or
    passwordless sudo allows. The index says where the server and the load generator ran, which runs
    the generator fell behind in, and each skipped case with the command that enables it.
    """
    from perfkit.report.index import SUITE_NOTES_FILE
    from perfkit.report.render import render_reports

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = suite_stamp()
    db_path = str(default_db_path(db))
    log = out_dir / "suite.log"
    log.write_text(f"perfkit report --suite {suite.name} at {stamp}, db {db_path}\n", encoding="utf-8")
    started = time.monotonic()
    installed = install_missing([r for c in suite.cases for r in c.requires], log) if install else []
    for line in installed:
        print(line)
    placement = here()
    print(f"suite {suite.name} ({stamp}): {len(suite.cases)} cases against the demo server; "
          f"runs go to {db_path}, bench output to {log}; {placement.note}")
    results = run_cases(suite.cases, db_path, stamp, log, progress, placement=placement)
    build_demo_history(db_path, stamp, log, placement=placement)  # once per database: a history for 07_trends
    skipped_reports: list[dict[str, str]] = []
    jobs = report_jobs(suite, results, stamp, overrides, skipped=skipped_reports)
    notes = suite_notes(suite, stamp, placement, results, installed, skipped_reports)
    (out_dir / SUITE_NOTES_FILE).write_text(json.dumps(notes, indent=1), encoding="utf-8")
    if notes["behind"]:
        print(f"the load generator fell behind in {len(notes['behind'])} of {notes['runs']} runs (see the index)")
    print(f"rendering {len(jobs)} reports into {out_dir}/")
    records = render_reports(jobs, out_dir, db=db_path, progress=progress, screenshots=screenshots)
    failed_cases = [r for r in results if r.failed]
    failed_reports = [r for r in records if not r.ok]
    for rec in records:
        if rec.error is not None:
            print(f"  report {rec.name}: FAILED at {rec.error.message()}")
    print(f"{len(records) - len(failed_reports)} of {len(records)} reports ok, "
          f"{sum(1 for r in results if r.run_id)} runs, {sum(1 for r in results if r.skipped)} cases skipped, "
          f"in {time.monotonic() - started:,.0f} s")
    print(f"open {(out_dir / 'index.html').resolve().as_uri()}")
    return 1 if failed_cases or failed_reports else 0


def suite_command(name: str, *, list_only: bool = False, db: str | None = None, out_dir: Path = DEFAULT_REPORTS,
                  progress: bool = True, overrides: Mapping[str, str] | None = None, screenshots: bool = False,
                  install: bool = False) -> int:
    """``perfkit report --suite NAME`` (run it) and ``--list-suite`` (print the plan); the exit code."""
    from perfkit.pipeline.capabilities import describe
    from perfkit.pipeline.suite import get_suite

    suite = get_suite(name)
    if list_only:
        for line in describe(suite):
            print(line)
        return 0
    return run_suite(suite, db=db, out_dir=out_dir, progress=progress, overrides=overrides,
                     screenshots=screenshots, install=install)
