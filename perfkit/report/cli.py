"""``perfkit report``: execute report notebooks with papermill, write HTML and reports/index.html.

With ``--suite`` the command hands over to :mod:`perfkit.pipeline`, which runs
the benchmarks first and then renders through :mod:`perfkit.report.render`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from perfkit.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``perfkit report`` to ``perfkit``."""
    from perfkit.cliutil import add_command, add_db_argument
    from perfkit.paths import DEFAULT_REPORTS

    p = add_command(
        sub, "report", _cmd_report, help="render notebooks to HTML reports and reports/index.html",
        description=(
            "Execute notebooks with papermill (parameters injected), convert each to one "
            "self-contained HTML file without code cells, and rebuild the index. With --suite, "
            "first run the named benchmark suite against the demo server. Without NOTEBOOK, "
            "every notebook in notebooks/ is rendered with its default parameters. "
            "Exit 1 if a notebook failed (the others are still rendered), 2 on bad input."
        ),
    )
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                   help="path, name or number prefix, e.g. notebooks/01_benchmark.ipynb, 01_benchmark, 01")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="notebook parameter (repeatable); typed as the parameters cell declares it")
    add_db_argument(p)
    p.add_argument("--out", metavar="DIR", default=str(DEFAULT_REPORTS),
                   help=f"output folder (default: {DEFAULT_REPORTS})")
    p.add_argument("--name", metavar="STEM", default=None,
                   help="output file stem when rendering one notebook (default: the notebook's stem)")
    p.add_argument("--suite", metavar="NAME", default=None,
                   help="run a benchmark suite first (see perfkit/pipeline/suite.py), e.g. default")
    p.add_argument("--list-suite", action="store_true",
                   help="list the suite's cases and whether each can run here, then exit")
    p.add_argument("--index-only", action="store_true",
                   help="only rebuild index.html from the reports already in --out")
    p.add_argument("--screenshots", action="store_true",
                   help="also screenshot each report and the index into OUT/screenshots/ (headless Chromium) "
                        "and print the style problems found on the pages")
    p.add_argument("--install-missing", action="store_true",
                   help="with --suite: first install what its cases need (nginx) with apt-get, as root or with "
                        "passwordless sudo (make report does)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _cmd_report(args: argparse.Namespace) -> int:
    from perfkit.report import render

    out_dir = Path(args.out)
    if args.index_only:
        out_dir.mkdir(parents=True, exist_ok=True)
        if args.screenshots:
            render.screenshot_reports(out_dir, render.load_records(out_dir))
        else:
            render.write_index(out_dir)
        print(out_dir / "index.html")
        return 0
    if args.suite or args.list_suite:
        if args.notebooks:
            raise UsageError("--suite renders its own notebooks; give either NOTEBOOK or --suite")
        from perfkit.pipeline.run import suite_command

        return suite_command(args.suite or "default", list_only=args.list_suite, db=args.db,
                             out_dir=out_dir, progress=not args.no_progress, overrides=dict(args.parameter),
                             screenshots=args.screenshots, install=args.install_missing)
    specs = args.notebooks or [str(p) for p in render.available_notebooks()]
    if not specs:
        raise UsageError("no notebooks found (looked in ./notebooks)")
    notebooks = [render.resolve_notebook(s) for s in specs]
    if args.name and len(notebooks) != 1:
        raise UsageError("--name needs exactly one NOTEBOOK")
    jobs = render.build_jobs(notebooks, args.parameter, args.name)
    records = render.render_reports(jobs, out_dir, db=args.db, progress=not args.no_progress,
                                    screenshots=args.screenshots)
    for rec in records:
        state = "ok" if rec.error is None else f"FAILED ({rec.error.message()})"
        print(f"{out_dir / (rec.html or rec.name)}  {state}")
    print(f"index: {out_dir / 'index.html'}")
    return 0 if all(r.ok for r in records) else 1
