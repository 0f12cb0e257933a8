"""The report index: records read from executed notebooks, and the escaped front page."""
from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from perfkit.report.headline import HEADLINE_MIME, headline_bundle
from perfkit.report.index import (ReportError, ReportRecord, build_index_html, error_from_notebook,
                                  headlines_from_notebook)

HOSTILE = "<script>alert('x')</script>"


def _executed_notebook(with_error: bool = False) -> nbformat.NotebookNode:
    nb = new_notebook()
    bundle = headline_bundle("Benchmark A", {"P99": "41.2 ms (n=6,000)", "errors": "0 of 6,000"},
                             run_id="run-1", note="a note")
    nb.cells = [
        new_code_cell("x = 1", execution_count=1),
        new_code_cell("headline(...)", execution_count=2,
                      outputs=[new_output("display_data", data=bundle)]),
    ]
    if with_error:
        nb.cells.append(new_code_cell("load_run(db, 'nope')\nmore()", execution_count=3, outputs=[
            new_output("error", ename="StoreError", evalue="no run with id 'nope'", traceback=["..."])]))
    return nb


def test_headlines_read_back_from_display_outputs():
    heads = headlines_from_notebook(_executed_notebook())
    assert heads == [{"title": "Benchmark A", "run_id": "run-1", "note": "a note",
                      "figures": {"P99": "41.2 ms (n=6,000)", "errors": "0 of 6,000"}}]


def test_headlines_survive_a_json_round_trip(tmp_path):
    path = tmp_path / "x.ipynb"
    nbformat.write(_executed_notebook(), str(path))
    heads = headlines_from_notebook(nbformat.read(str(path), as_version=4))
    assert heads[0]["figures"]["P99"] == "41.2 ms (n=6,000)"


def test_error_names_the_cell_and_the_exception():
    assert error_from_notebook(_executed_notebook()) is None
    err = error_from_notebook(_executed_notebook(with_error=True))
    assert err == ReportError(cell=3, ename="StoreError", evalue="no run with id 'nope'",
                              source_line="load_run(db, 'nope')")
    assert err.message() == "cell 3 (load_run(db, 'nope')): StoreError: no run with id 'nope'"


def _record(**kw) -> ReportRecord:
    base = dict(name="01_benchmark-steady", notebook="notebooks/01_benchmark.ipynb",
                html="01_benchmark-steady.html", rendered_at="2026-11-25T03:10:00+00:00",
                headlines=[{"title": "Steady", "run_id": "r1", "note": None,
                            "figures": {"P99": "41.2 ms (n=6,000)"}}],
                run_started_at={"r1": "2026-11-25T03:00:00+00:00"})
    base.update(kw)
    return ReportRecord(**base)


def test_index_lists_each_report_with_run_date_and_figures():
    page = build_index_html([_record(), _record(name="01_benchmark-burst", html="01_benchmark-burst.html",
                                                headlines=[])], "2026-11-25T03:11:00+00:00")
    assert page.count("<tr class='ok'>") == 2
    assert "href='01_benchmark-steady.html'" in page
    assert "<code>r1</code>" in page
    assert "2026-11-25 03:00 UTC" in page and "generated 2026-11-25 03:11:00 UTC" in page
    assert "<dt>P99</dt><dd>41.2 ms (n=6,000)</dd>" in page
    assert "(rendered)" in page  # the report without a run falls back to its render date
    assert "2 reports" in page


def test_index_escapes_everything_that_came_from_data():
    rec = _record(name=HOSTILE, notebook=HOSTILE, html=f"{HOSTILE}.html",
                  headlines=[{"title": HOSTILE, "run_id": HOSTILE, "note": HOSTILE,
                              "figures": {HOSTILE: HOSTILE}}],
                  run_started_at={HOSTILE: HOSTILE},
                  error=ReportError(cell=2, ename=HOSTILE, evalue=HOSTILE, source_line=HOSTILE))
    page = build_index_html([rec], HOSTILE, title="reports")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    # the link target is URL-quoted, so it cannot break out of the attribute either
    assert "href='%3Cscript%3Ealert%28%27x%27%29%3C/script%3E.html'" in page


def test_failed_report_shows_its_error_and_the_count():
    err = ReportError(cell=5, ename="ValueError", evalue="bad rate", source_line="plot(data)")
    page = build_index_html([_record(), _record(name="b", error=err)], "now")
    assert page.count("<tr class='failed'>") == 1
    assert "failed: cell 5 (plot(data)): ValueError: bad rate" in page
    assert "2 reports, 1 failed" in page


def test_record_round_trips_through_notebook_metadata():
    rec = _record(error=ReportError(cell=1, ename="E", evalue="v"), parameters={"rate_rps": 5.0})
    assert ReportRecord.from_dict(rec.to_dict()) == rec


def test_empty_index_says_how_to_get_reports():
    assert "make report" in build_index_html([], "now")


def test_headline_mime_is_the_documented_one():
    assert HEADLINE_MIME == "application/vnd.perfkit.headline+json"
