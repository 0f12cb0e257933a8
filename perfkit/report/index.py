"""The report index: records read back from executed notebooks, and the front page built from them.

Everything here is pure: a notebook (an ``nbformat`` node or plain dict) in,
records out; records in, an HTML string out. Every value that came from data
(labels, run ids, error messages, figures) is HTML-escaped on the way out.
"""
from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from perfkit.names import HEADLINE_OPEN_REGRESSIONS
from perfkit.report.headline import HEADLINE_MIME
from perfkit.report.style import CONCLUSION_MIME, STATUSES, summary_text

#: Key of the record stored in an executed notebook's metadata by ``perfkit report``.
RECORD_KEY = "perfkit_report"


@dataclass
class ReportError:
    """Where and why a notebook failed: the cell and the exception's last line."""

    cell: int | None          # position of the failing cell in the source notebook (1-based)
    ename: str
    evalue: str
    source_line: str = ""     # first line of the failing cell's code

    def message(self) -> str:
        where = f"cell {self.cell}" if self.cell is not None else "kernel"
        code = f" ({self.source_line})" if self.source_line else ""
        return f"{where}{code}: {self.ename}: {self.evalue}".strip()


@dataclass
class ReportRecord:
    """One rendered report as the index shows it."""

    name: str                                 # output stem, e.g. "01_benchmark-steady"
    notebook: str                             # source notebook, e.g. "notebooks/01_benchmark.ipynb"
    html: str | None                          # HTML file name relative to the index, None if none written
    rendered_at: str                          # ISO 8601 UTC
    parameters: dict[str, Any] = field(default_factory=dict)
    headlines: list[dict[str, Any]] = field(default_factory=list)
    run_started_at: dict[str, str] = field(default_factory=dict)  # run_id -> ISO UTC start
    error: ReportError | None = None
    conclusions: list[dict[str, Any]] = field(default_factory=list)  # perfkit.report.conclusion blocks

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def run_ids(self) -> list[str]:
        """Run ids named by the headlines, in order, without repeats."""
        seen: list[str] = []
        for head in self.headlines:
            rid = head.get("run_id")
            if rid and str(rid) not in seen:
                seen.append(str(rid))
        return seen

    @property
    def title(self) -> str:
        for head in self.headlines:
            if head.get("title"):
                return str(head["title"])
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ReportRecord":
        err = data.get("error")
        return cls(
            name=str(data["name"]), notebook=str(data.get("notebook", "")),
            html=data.get("html"), rendered_at=str(data.get("rendered_at", "")),
            parameters=dict(data.get("parameters") or {}),
            headlines=list(data.get("headlines") or []),
            run_started_at=dict(data.get("run_started_at") or {}),
            error=ReportError(**err) if err else None,
            conclusions=list(data.get("conclusions") or []),
        )


def _outputs(nb: Mapping[str, Any]) -> Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []) or []:
            yield cell, out


def _displayed(nb: Mapping[str, Any], mime: str) -> Iterable[Mapping[str, Any]]:
    """The ``mime`` payloads an executed notebook displayed, in order."""
    for _cell, out in _outputs(nb):
        if out.get("output_type") in ("display_data", "execute_result"):
            data = (out.get("data") or {}).get(mime)
            if isinstance(data, Mapping):
                yield data


def headlines_from_notebook(nb: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``perfkit.report.headline`` bundles an executed notebook displayed, in order."""
    return [{"title": data.get("title"), "run_id": data.get("run_id"), "note": data.get("note"),
             "figures": {str(k): str(v) for k, v in dict(data.get("figures") or {}).items()}}
            for data in _displayed(nb, HEADLINE_MIME)]


def conclusions_from_notebook(nb: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``perfkit.report.conclusion`` blocks an executed notebook displayed, in order."""
    return [{"title": str(data.get("title", "")), "lines": [str(line) for line in data.get("lines") or []],
             "status": str(data.get("status")) if data.get("status") in STATUSES else "info"}
            for data in _displayed(nb, CONCLUSION_MIME)]


def _source_text(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


_INJECTED_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def error_from_notebook(nb: Mapping[str, Any]) -> ReportError | None:
    """The first error output of an executed notebook (the cell papermill stopped at).

    The cell is named by its position in the *source* notebook (cells papermill
    injected are not counted) and by its first line of code, since the HTML
    report shows neither code nor prompts.
    """
    position = 0
    for cell in nb.get("cells", []):
        tags = set((cell.get("metadata") or {}).get("tags") or [])
        if tags & _INJECTED_TAGS:
            continue
        position += 1
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                first = next((ln.strip() for ln in _source_text(cell).splitlines() if ln.strip()), "")
                if len(first) > 80:
                    first = first[:77] + "..."
                return ReportError(cell=position, ename=str(out.get("ename", "")),
                                   evalue=str(out.get("evalue", "")), source_line=first)
    return None


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 80rem; color: #1d2433; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
p.meta { color: #5b6473; margin-top: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .55rem .6rem; border-bottom: 1px solid #dde1e8; }
th { background: #f3f5f8; font-weight: 600; }
td.figs { min-width: 22rem; }
td.figs dl { display: grid; grid-template-columns: minmax(6rem, max-content) minmax(14rem, 1fr);
             gap: .1rem .8rem; margin: 0; }
td.figs dt { color: #5b6473; }
td.figs dd { margin: 0; font-variant-numeric: tabular-nums; }
code { font-size: .85em; }
td.date { white-space: nowrap; }
tr.failed td { background: #fff3f2; }
span.err { color: #b3261e; font-family: ui-monospace, monospace; font-size: .85em; white-space: pre-wrap; }
span.ok { color: #1e7b34; }
div.summary { margin-top: .35rem; font-weight: 600; max-width: 30rem; }
span.badge { display: inline-block; font-size: .7rem; letter-spacing: .05em; padding: .05rem .4rem;
             border-radius: .25rem; color: #fff; background: #2f5fa7; margin-right: .3rem; }
.st-pass span.badge { background: #1e7b34; } .st-fail span.badge { background: #b3261e; }
.st-warn span.badge { background: #a15c00; }
a.shot { display: inline-block; margin-top: .25rem; font-size: .8rem; }
section.suite { margin: .6rem 0 1.2rem; } section.suite p { margin: .25rem 0; }
section.suite table { width: auto; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _figures_html(record: ReportRecord) -> str:
    blocks = []
    for head in record.headlines:
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in head.get("figures", {}).items())
        note = f"<div class='note'>{_e(head['note'])}</div>" if head.get("note") else ""
        blocks.append(f"<dl>{items}</dl>{note}")
    return "".join(blocks) or "&mdash;"


def _runs_html(record: ReportRecord) -> tuple[str, str]:
    rids = record.run_ids
    if not rids:
        return "&mdash;", _e(record.rendered_at[:16].replace("T", " ")) + " <small>(rendered)</small>"
    runs = "<br>".join(f"<code>{_e(r)}</code>" for r in rids)
    dates = [record.run_started_at.get(r) for r in rids]
    shown = [d[:16].replace("T", " ") + " UTC" for d in dates if d]
    date = "<br>".join(_e(d) for d in shown) if shown else (
        _e(record.rendered_at[:16].replace("T", " ")) + " UTC <small>(rendered)</small>")
    return runs, date


def _short_time(iso: str) -> str:
    """``2026-11-25T03:13:25.52+00:00`` -> ``2026-11-25 03:13:25 UTC`` (other text as given)."""
    if len(iso) >= 19 and iso[10] == "T" and (iso.endswith("+00:00") or iso.endswith("Z")):
        return iso[:19].replace("T", " ") + " UTC"
    return iso


OPEN_REGRESSIONS = HEADLINE_OPEN_REGRESSIONS


@dataclass
class ReportSet:
    """One pipeline run's reports kept in their own folder (``perfkit report --out reports/<id>/``)."""

    name: str                        # the folder name: a date or a pipeline id
    records: list[ReportRecord]

    @property
    def rendered_at(self) -> str:
        return max((r.rendered_at for r in self.records), default="")


def _set_row(rep: ReportSet) -> str:
    heads = [(rec, head) for rec in rep.records for head in rec.headlines if head.get("figures")]
    figures = "".join(
        f"<dt>{_e(rec.title)}</dt><dd>"
        + _e(", ".join(f"{k}: {v}" for k, v in list(head["figures"].items())[:2] if k != OPEN_REGRESSIONS))
        + "</dd>" for rec, head in heads)
    regressions = [str(head["figures"][OPEN_REGRESSIONS]) for _, head in heads
                   if head["figures"].get(OPEN_REGRESSIONS) not in (None, "none")]
    failed = sum(1 for r in rep.records if not r.ok)
    status = f"<span class='err'>{failed} failed</span>" if failed else "<span class='ok'>ok</span>"
    open_html = ("<span class='err'>" + "<br>".join(_e(r) for r in regressions) + "</span>") if regressions \
        else "none"
    return (f"<tr class='{'failed' if failed or regressions else 'ok'}'>"
            f"<td><a href='{_e(quote(rep.name))}/index.html'>{_e(rep.name)}</a></td>"
            f"<td class='date'>{_e(_short_time(rep.rendered_at))}</td>"
            f"<td class='figs'><dl>{figures}</dl></td><td>{open_html}</td>"
            f"<td>{len(rep.records)} reports, {status}</td></tr>")


def sets_html(sets: Sequence[ReportSet]) -> str:
    """The dated report sets, newest first, each with its headline figures and open regressions."""
    if not sets:
        return ""
    rows = "\n".join(_set_row(s) for s in sorted(sets, key=lambda s: (s.rendered_at, s.name), reverse=True))
    return ("<h2>Report sets</h2>\n<table>\n<thead><tr><th>Set</th><th>Rendered</th><th>Headline figures</th>"
            "<th>Open regressions</th><th>Status</th></tr></thead>\n<tbody>\n" + rows + "\n</tbody>\n</table>\n")


def _summary_html(record: ReportRecord, screenshot: str | None) -> str:
    """The report's conclusion line(s) (status badge and title) and its screenshot link, under its name."""
    lines = [f"<div class='summary st-{_e(c.get('status', 'info'))}'><span class='badge'>"
             f"{_e(str(c.get('status', 'info')).upper())}</span> {_e(c.get('title', ''))}</div>"
             for c in record.conclusions]
    if screenshot:
        lines.append(f"<a class='shot' href='{_e(quote(screenshot))}'>screenshot</a>")
    return "".join(lines)


#: What ``perfkit report --suite`` writes next to its reports for the index (:func:`suite_html` reads it).
SUITE_NOTES_FILE = "suite.json"


def suite_html(notes: Mapping[str, Any] | None) -> str:
    """The suite's own notes above the reports: where the server and the load generator ran, the runs
    whose generator fell behind, what was installed, and each skipped case with why and the command that
    enables it. ``notes``: the dict :func:`perfkit.pipeline.run.suite_notes` writes."""
    if not notes:
        return ""
    parts = [f"<section class='suite'><h2>Suite {_e(notes.get('suite'))} ({_e(notes.get('stamp'))})</h2>",
             f"<p>CPU placement: {_e(notes.get('placement'))}.</p>"]
    parts += [f"<p>{_e(line)}.</p>" for line in notes.get("installed") or []]
    behind, runs = list(notes.get("behind") or []), int(notes.get("runs") or 0)
    if behind:
        which = "; ".join(f"{b['case']} (schedule lag P99 {b['lag_p99_ms']:,.1f} ms)" for b in behind)
        parts.append(f"<p><span class='err'>The load generator fell behind in {len(behind)} of {runs} runs</span>: "
                     f"{_e(which)}. Those runs offered less load than intended, and their latencies (from the intended "
                     "send) include the generator's own delay: lower the rates or give the generator more CPUs.</p>")
    elif runs:
        parts.append(f"<p><span class='ok'>The load generator kept up in all {runs} runs.</span></p>")
    skipped = list(notes.get("skipped") or []) + list(notes.get("skipped_reports") or [])
    if skipped:
        rows = "".join(f"<tr><td>{_e(x.get('case') or x.get('report'))}</td><td>{_e(x.get('why'))}</td>"
                       f"<td>{'<code>' + _e(x['enable']) + '</code>' if x.get('enable') else '&mdash;'}</td></tr>"
                       for x in skipped)
        parts.append("<table><thead><tr><th>Skipped</th><th>Why</th><th>To enable it</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    return "".join(parts) + "</section>\n"


def build_index_html(records: Sequence[ReportRecord], generated_at: str,
                     title: str = "perfkit reports", sets: Sequence[ReportSet] = (),
                     screenshots: Mapping[str, str] | None = None, suite: Mapping[str, Any] | None = None) -> str:
    """The front page: one row per report with its conclusion, run(s), date, headline figures and status.

    ``screenshots`` maps a report name to its screenshot's path relative to the index; ``suite``: the
    notes of the suite that produced the reports (:func:`suite_html`), shown above them.
    """
    rows = []
    shots = dict(screenshots or {})
    for rec in sorted(records, key=lambda r: (r.notebook, r.rendered_at, r.name)):
        link = (f"<a href='{_e(quote(rec.html))}'>{_e(rec.title)}</a>" if rec.html else _e(rec.title))
        runs, date = _runs_html(rec)
        if rec.error is None:
            status = "<span class='ok'>ok</span>"
        else:
            status = f"<span class='err'>failed: {_e(rec.error.message())}</span>"
        rows.append(
            f"<tr class='{'ok' if rec.ok else 'failed'}'>"
            f"<td>{link}<br><small>{_e(rec.notebook)} &middot; {_e(rec.name)}</small>"
            f"{_summary_html(rec, shots.get(rec.name))}</td>"
            f"<td>{runs}</td><td class='date'>{date}</td><td class='figs'>{_figures_html(rec)}</td>"
            f"<td>{status}</td></tr>"
        )
    failed = sum(1 for r in records if not r.ok)
    summary = f"{len(records)} report{'s' if len(records) != 1 else ''}"
    if failed:
        summary += f", {failed} failed"
    body = "\n".join(rows) if rows else "<tr><td colspan='5'>no reports yet: run <code>make report</code></td></tr>"
    table = ("<table>\n<thead><tr><th>Report</th><th>Run</th><th>Date</th><th>Headline figures</th>"
             "<th>Status</th></tr></thead>\n<tbody>\n" + body + "\n</tbody>\n</table>\n")
    if sets and not records:
        table, summary = "", f"{len(sets)} report set{'s' if len(sets) != 1 else ''}"
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n<p class='meta'>{_e(summary)} &middot; generated {_e(_short_time(generated_at))}</p>\n"
        + suite_html(suite) + sets_html(sets) + table + "</body>\n</html>\n"
    )
