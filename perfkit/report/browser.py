"""Reports opened in a headless Chromium: a screenshot of each one's first screen, and its style checks.

``perfkit report --screenshots`` (``make report``) writes
``<out>/screenshots/<report>.png`` for every report and for the index, which
links them. While a page is open, :data:`CHECK_JS` looks at what a reader
sees in its tables and its headline and conclusion blocks: a cell showing
``NaN``, a float with more than four decimals, a bare ``0 1 2`` index column,
text cut off with ``...``. The problems are printed here and asserted empty by
the browser tests. Chromium is Debian's (``$PERFKIT_CHROMIUM`` or ``chromium``
on ``PATH``), driven by Playwright (a ``dev`` extra); where either is missing,
:func:`missing` says so and no screenshot is taken.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

SCREENSHOTS_DIR = "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: Returns a list of ``[where, text, problem]`` for the page it runs in.
CHECK_JS = r"""() => {
  const out = [];
  const text = el => (el.innerText || el.textContent || "").trim();
  const nan = /(^|[^A-Za-z])(NaN|nan|NaT)([^A-Za-z]|$)|^(None|<NA>|inf|-inf)$/;
  const longFloat = /(^|[^\w.])-?\d+\.\d{5,}(?![\w.])/;
  const cut = /(\.\.\.|…)$/;
  const look = (el, where) => {
    const t = text(el);
    if (nan.test(t)) out.push([where, t, "NaN shown"]);
    if (longFloat.test(t)) out.push([where, t, "float with more than four decimals"]);
    if (cut.test(t) || t === "..." || t === "…") out.push([where, t, "text cut off"]);
  };
  document.querySelectorAll("table").forEach((table, k) => {
    const rows = Array.from(table.querySelectorAll("tbody tr"));
    rows.forEach((tr, r) => tr.querySelectorAll("td, th").forEach((cell, c) =>
      look(cell, `table ${k + 1} row ${r + 1} column ${c + 1}`)));
    const first = rows.map(tr => tr.querySelector("td, th")).filter(Boolean).map(text);
    const head = table.querySelector("thead tr th, thead tr td");
    // pandas' default index: 0, 1, 2... under an empty header cell (a column of such values with a
    // header, e.g. "Time (s)", is data)
    const bare = first.length > 0 && first.every((t, i) => t === String(i)) && (!head || text(head) === "");
    if (bare) out.push([`table ${k + 1}`, first.slice(0, 3).join(" "), "bare 0 1 2 index column"]);
  });
  document.querySelectorAll(".perfkit-headline, .perfkit-conclusion").forEach((block, k) =>
    block.querySelectorAll("h3, p, li, dt, dd").forEach(el => look(el, `summary block ${k + 1}`)));
  return out;
}"""


def chromium_path() -> str | None:
    """Debian's Chromium: ``$PERFKIT_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on PATH."""
    env = os.environ.get("PERFKIT_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    """Why no screenshot can be taken here (and the command that fixes it), or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (make venv installs it with the dev extra)"
    if chromium_path() is None:
        return "chromium not found (apt-get install chromium, or set PERFKIT_CHROMIUM)"
    return None


def page_problems(page: Any, name: str) -> list[str]:
    """The style problems :data:`CHECK_JS` finds on an open Playwright page, as ``name: where: 'text' (problem)``."""
    return [f"{name}: {where}: {text[:80]!r} ({problem})" for where, text, problem in page.evaluate(CHECK_JS)]


@contextlib.contextmanager
def open_browser(executable: str | None = None) -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable or chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(browser: Any, html: Path, png: Path) -> list[str]:
    """Open ``html``, save its first screen as ``png``; the page's style problems."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(html.resolve().as_uri())
        page.wait_for_load_state("load")
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png))
        return page_problems(page, html.name)
    finally:
        page.close()


def screenshot_paths(out_dir: Path, names: Sequence[str]) -> dict[str, Path]:
    """Where the screenshot of each report (by output stem) goes."""
    return {name: out_dir / SCREENSHOTS_DIR / f"{name}.png" for name in names}
