"""``make report`` as a fresh clone runs it, then every page in headless Chromium.

The default suite against the demo server, every report rendered, each one and
the index screenshot into ``screenshots/`` and linked from the index. Then each
page is opened in the browser: it opens with its conclusion block, its figures
have alt text, and no table cell or summary block shows ``NaN``, a float with
more than four decimals, a bare ``0 1 2`` index column or text cut off with
``...`` (:data:`perfkit.report.browser.CHECK_JS`).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from perfkit.report import browser
from perfkit.report.render import load_records

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def default_reports(tmp_path_factory):
    """The command ``make report`` runs (make's venv target aside), into a temporary folder and store."""
    work = tmp_path_factory.mktemp("make-report")
    out, db = work / "reports", work / "perfkit.duckdb"
    res = subprocess.run([sys.executable, "-m", "perfkit", "report", "--suite", "default", "--screenshots",
                          "--no-progress", "--out", str(out), "--db", str(db)],
                         capture_output=True, text=True, cwd=REPO, timeout=1400)
    make = (REPO / "Makefile").read_text()
    assert "perfkit report --suite default --screenshots" in make  # what this test runs is what make runs
    return {"out": out, "result": res, "records": load_records(out)}


def test_every_report_renders_and_is_screenshot(default_reports):
    out, res, records = default_reports["out"], default_reports["result"], default_reports["records"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "no screenshots" not in res.stderr, res.stderr[-3000:]
    assert len(records) >= 10 and all(r.ok and r.html for r in records)
    index = (out / "index.html").read_text()
    for rec in records:
        png = out / "screenshots" / f"{rec.name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", rec.name
        assert f"href='screenshots/{rec.name}.png'" in index
    assert (out / "screenshots" / "index.png").stat().st_size > 0


def test_each_page_opens_with_its_conclusion_and_reads_cleanly(default_reports, chromium):
    out, records = default_reports["out"], default_reports["records"]
    problems: list[str] = []
    page = chromium.new_page()
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    for rec in records:
        page.goto((out / str(rec.html)).as_uri())
        page.wait_for_load_state("load")
        problems += browser.page_problems(page, str(rec.html))
        first = page.evaluate("""() => {
            const el = document.querySelector('.perfkit-conclusion, table, img');
            return el ? (el.classList.contains('perfkit-conclusion') ? 'conclusion' : el.tagName) : null; }""")
        if first != "conclusion":
            problems.append(f"{rec.html}: opens with {first}, not a conclusion block")
        alts = page.evaluate("Array.from(document.images).map(i => i.alt)")
        problems += [f"{rec.html}: a figure without alt text" for alt in alts if not alt or alt == "figure"]
        nb = nbformat.read(str(out / f"{rec.name}.ipynb"), as_version=4)
        assert rec.conclusions and nb.metadata["perfkit_report"]["conclusions"] == rec.conclusions
    page.goto((out / "index.html").as_uri())
    problems += browser.page_problems(page, "index.html")
    assert page.locator("div.summary").count() >= len(records)  # each report's conclusion line
    page.close()
    assert problems == []
