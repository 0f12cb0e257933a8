"""Executing report notebooks with papermill and turning them into code-free HTML.

The I/O edge of the report stage: find notebooks, inject parameters, run them
in the venv's own kernel, convert the result to one self-contained HTML file
(no code cells, figures embedded, no script fetched from the network), and
write ``index.html`` from the records of every executed notebook in the
output folder. The index itself is built by the pure :mod:`perfkit.report.index`.
The kernel shows every figure with its alt text (:mod:`perfkit.plots.style`);
with ``screenshots`` each report and the index are opened in headless Chromium
(:mod:`perfkit.report.browser`) and their first screens saved next to them.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import nbformat

from perfkit.errors import UsageError
from perfkit.paths import DEFAULT_REPORTS, display_path, notebook_dirs
from perfkit.report.index import (RECORD_KEY, SUITE_NOTES_FILE, ReportError, ReportRecord, ReportSet,
                                  build_index_html, conclusions_from_notebook, error_from_notebook,
                                  headlines_from_notebook)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
KERNEL_NAME = "python3"
#: Run in the report kernel before the notebook: figures are shown with their alt text.
_KERNEL_SETUP = "import perfkit.plots.style as _style; _style.enable_alt_text(); del _style"
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class ReportJob:
    """One notebook to execute with its parameters, written as ``<name>.ipynb/.html``."""

    notebook: Path
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


def utc_now_iso() -> str:
    """Now, UTC, ISO 8601 with microseconds (records sort by it)."""
    return dt.datetime.now(dt.timezone.utc).isoformat()


def safe_name(text: str) -> str:
    """A file-name-safe stem (report names come from case names and notebook names)."""
    return _NAME_RE.sub("_", text).strip("._") or "report"


def available_notebooks() -> list[Path]:
    """Every notebook in :func:`perfkit.paths.notebook_dirs` (first one of a name wins), by name."""
    found: dict[str, Path] = {}
    for d in notebook_dirs():
        for p in sorted(d.glob("*.ipynb")):
            found.setdefault(p.name, p)
    return [found[k] for k in sorted(found)]


def resolve_notebook(spec: str) -> Path:
    """A path, a file name in notebooks/, a stem (``01_benchmark``) or a number prefix (``01``)."""
    direct = Path(spec)
    if direct.suffix == ".ipynb" and direct.is_file():
        return direct
    candidates = available_notebooks()
    for p in candidates:
        if spec in (p.name, p.stem):
            return p
    prefixed = [p for p in candidates if p.stem.split("_", 1)[0] == spec]
    if len(prefixed) == 1:
        return prefixed[0]
    names = ", ".join(p.stem for p in candidates) or "none"
    raise UsageError(f"unknown notebook {spec!r} (available: {names})")


def notebook_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The notebook's ``parameters`` cell as papermill reads it: name -> {inferred_type_name, default, help}."""
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


def coerce_value(text: str, type_name: str | None = None) -> Any:
    """A ``-p KEY VALUE`` string as the type the parameters cell declares (else inferred)."""
    t = (type_name or "").lower()
    if t in ("str", "string"):
        return text
    if t == "bool" or (not t or t == "none") and text.lower() in ("true", "false"):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise UsageError(f"-p value {text!r} is not a bool (true/false)")
    if t == "int":
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"-p value {text!r} is not an int") from None
    if t == "float":
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"-p value {text!r} is not a number") from None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def build_jobs(notebooks: Sequence[Path], raw_params: Sequence[Sequence[str]],
               name: str | None = None) -> list[ReportJob]:
    """One job per notebook, each given the ``-p KEY VALUE`` pairs its parameters cell declares.

    Values are typed as the cell declares them; a key no notebook declares is a
    :class:`UsageError`. ``name`` is the output stem (one notebook only).
    """
    jobs = []
    used: set[str] = set()
    for nb in notebooks:
        declared = notebook_parameters(nb)
        params = {}
        for key, value in raw_params:
            if key in declared:
                params[key] = coerce_value(value, declared[key].get("inferred_type_name"))
                used.add(key)
        jobs.append(ReportJob(notebook=nb, name=safe_name(name or nb.stem), parameters=params))
    unknown = sorted({k for k, _ in raw_params} - used)
    if unknown:
        raise UsageError(f"parameter(s) {', '.join(unknown)} not declared by "
                         f"{', '.join(p.name for p in notebooks)}")
    return jobs


@contextlib.contextmanager
def _env(overrides: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def notebook_to_html(nb: nbformat.NotebookNode) -> str:
    """Self-contained HTML with no code cells: inputs and prompts excluded, figures inline."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_template_paths=[str(TEMPLATES_DIR)],
        template_file="perfkit_report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _resources = exporter.from_notebook_node(nb)
    return body


def run_dates(db: str | None, run_ids: Sequence[str]) -> dict[str, str]:
    """ISO UTC start time of each run id found in the store (missing ones are left out)."""
    if not run_ids:
        return {}
    from perfkit import store
    from perfkit.store import runs

    try:
        con = store.connect(db, read_only=True, quiet=True, wait_s=30)
    except store.StoreError:
        return {}
    try:
        started_at = runs.started_at(con, run_ids)
    finally:
        con.close()
    out = {}
    for rid, started in started_at.items():
        if started is not None:
            out[str(rid)] = started.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()
    return out


def execute_report(job: ReportJob, out_dir: Path, db: str | None = None,
                   timeout_s: float = 600.0) -> ReportRecord:
    """Execute one notebook into ``out_dir`` and convert it; a failure is recorded, not raised."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    out_nb = out_dir / f"{job.name}.ipynb"
    out_html = out_dir / f"{job.name}.html"
    params = dict(job.parameters)
    try:
        declared = notebook_parameters(job.notebook)
    except Exception as exc:  # not a notebook at all: recorded as this report's error
        return ReportRecord(name=job.name, notebook=display_path(job.notebook), html=None,
                            rendered_at=utc_now_iso(), parameters=params,
                            error=ReportError(cell=None, ename=type(exc).__name__,
                                              evalue=(str(exc).strip().splitlines() or [""])[0]))
    if db and "db" in declared and "db" not in params:
        params["db"] = str(db)
    env = {"PERFKIT_DB": str(db)} if db else {}
    # Matplotlib's inline figures as PNG (embedded base64), headless backend in the kernel.
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    error: ReportError | None = None
    with _env(env):
        try:
            papermill.execute_notebook(
                str(job.notebook), str(out_nb), parameters=params, kernel_name=KERNEL_NAME,
                progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                execution_timeout=timeout_s, cwd=None,
                # the kernel's own log (start-up notes, the interrupt sent at shutdown) stays off our
                # stderr; errors inside the notebook are in its outputs and in the index
                extra_arguments=["--IPKernelApp.log_level=CRITICAL", f"--IPKernelApp.exec_lines={_KERNEL_SETUP}"],
            )
        except PapermillExecutionError as exc:
            error = ReportError(cell=None, ename=exc.ename, evalue=str(exc.evalue))
        except Exception as exc:  # kernel died, timeout, unreadable notebook: record, go on
            error = ReportError(cell=None, ename=type(exc).__name__, evalue=str(exc).strip().splitlines()[0]
                                if str(exc).strip() else "")
    html_name: str | None = None
    headlines: list[dict[str, Any]] = []
    conclusions: list[dict[str, Any]] = []
    if out_nb.exists():
        nb = nbformat.read(str(out_nb), as_version=4)
        headlines = headlines_from_notebook(nb)
        conclusions = conclusions_from_notebook(nb)
        found = error_from_notebook(nb)
        if error is not None and found is not None:
            error = found  # same error, with the cell's first line of code
        out_html.write_text(notebook_to_html(nb), encoding="utf-8")
        html_name = out_html.name
    record = ReportRecord(
        name=job.name, notebook=display_path(job.notebook), html=html_name,
        rendered_at=utc_now_iso(), parameters=params, headlines=headlines, error=error,
        conclusions=conclusions,
    )
    record.run_started_at = run_dates(db, record.run_ids)
    if out_nb.exists():
        nb = nbformat.read(str(out_nb), as_version=4)
        nb.metadata[RECORD_KEY] = record.to_dict()
        nbformat.write(nb, str(out_nb))
    return record


def load_records(out_dir: Path) -> list[ReportRecord]:
    """The records of every executed report notebook in ``out_dir`` (newest render wins)."""
    records = []
    for p in sorted(out_dir.glob("*.ipynb")):
        try:
            nb = nbformat.read(str(p), as_version=4)
        except Exception:  # a half-written or foreign file is not a report
            continue
        data = nb.metadata.get(RECORD_KEY)
        if data:
            records.append(ReportRecord.from_dict(data))
    return records


def write_index(out_dir: Path, title: str = "perfkit reports",
                latest: Sequence[ReportRecord] = ()) -> Path:
    """Rebuild ``out_dir/index.html`` from every report there.

    ``latest`` are records of this invocation; they replace stored ones of the same
    name and also cover a notebook that failed before papermill wrote any output.
    """
    merged = {rec.name: rec for rec in load_records(out_dir)}
    merged.update({rec.name: rec for rec in latest})
    path = out_dir / "index.html"
    notes = out_dir / SUITE_NOTES_FILE
    suite = json.loads(notes.read_text(encoding="utf-8")) if notes.exists() else None
    path.write_text(build_index_html(list(merged.values()), utc_now_iso(), title, report_sets(out_dir),
                                     current_screenshots(out_dir, merged.values()), suite), encoding="utf-8")
    if out_dir.parent.resolve() == DEFAULT_REPORTS.resolve():  # a set in reports/: list it in reports/index.html
        write_index(out_dir.parent, title)
    return path


def current_screenshots(out_dir: Path, records: Iterable[ReportRecord]) -> dict[str, str]:
    """Report name -> its screenshot (relative to ``out_dir``), where one was taken of the current HTML."""
    from perfkit.report.browser import screenshot_paths

    found = {}
    for rec in records:
        png = screenshot_paths(out_dir, [rec.name])[rec.name]
        html = out_dir / rec.html if rec.html else None
        if html and png.exists() and html.exists() and png.stat().st_mtime >= html.stat().st_mtime:
            found[rec.name] = png.relative_to(out_dir).as_posix()
    return found


def report_sets(out_dir: Path) -> list[ReportSet]:
    """The report sets kept in sub-folders of ``out_dir`` (each with its own rendered reports)."""
    found = []
    for sub in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        records = load_records(sub)
        if records:
            found.append(ReportSet(sub.name, records))
    return found


def render_reports(jobs: Sequence[ReportJob], out_dir: Path, db: str | None = None,
                   progress: bool = True, log: Callable[[str], None] | None = None,
                   screenshots: bool = False) -> list[ReportRecord]:
    """Execute every job (a failure does not stop the others), then write the index.

    With ``screenshots``, each report's first screen and the index's go to
    ``out_dir/screenshots/`` (see :func:`screenshot_reports`).
    """
    from tqdm import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr))
    records = []
    bar = tqdm(jobs, desc="reports", unit="notebook", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    for job in bar:
        bar.set_postfix_str(job.name)
        rec = execute_report(job, out_dir, db=db)
        if rec.error is not None:
            log(f"perfkit report: {rec.notebook} ({rec.name}) failed at {rec.error.message()}")
        records.append(rec)
    bar.close()
    if screenshots:
        screenshot_reports(out_dir, records, log)
    else:
        write_index(out_dir, latest=records)
    return records


def screenshot_reports(out_dir: Path, records: Sequence[ReportRecord],
                       log: Callable[[str], None] | None = None) -> list[str]:
    """Screenshot each report's first screen, rebuild the index (linking them), screenshot it too.

    Returns (and logs) the style problems the browser found on the pages; where no
    browser can run here the index is still written and the log says why.
    """
    from perfkit.report import browser

    log = log or (lambda msg: print(msg, file=sys.stderr))
    why = browser.missing()
    if why:
        write_index(out_dir, latest=records)
        log(f"perfkit report: no screenshots: {why}")
        return []
    found: dict[str, list[str]] = {}
    shots = browser.screenshot_paths(out_dir, [r.name for r in records if r.html] + ["index"])
    with browser.open_browser() as chromium:
        for rec in records:
            if rec.html and (out_dir / rec.html).exists():
                found[rec.html] = browser.screenshot(chromium, out_dir / rec.html, shots[rec.name])
        index = write_index(out_dir, latest=records)
        found[index.name] = browser.screenshot(chromium, index, shots["index"])
    for page, problems in found.items():
        for problem in problems[:3]:
            log(f"perfkit report: {problem}")
        if len(problems) > 3:
            log(f"perfkit report: {page}: {len(problems) - 3} more style problems")
    return [p for problems in found.values() for p in problems]
