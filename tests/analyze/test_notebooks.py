"""Notebooks 03 and 04 executed by papermill on a small store; their headlines reach the output."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import papermill as pm
import pytest

from analyze_synth import insert_run, insert_series
from perfkit import store
from perfkit.report.headline import HEADLINE_MIME
from perfkit.report.style import CONCLUSION_MIME

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _headline(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error"
            if HEADLINE_MIME in out.get("data", {}):
                return out["data"][HEADLINE_MIME]
    raise AssertionError("no headline in the executed notebook")


def _first_output(path: Path) -> dict:
    """The first thing the executed notebook shows: its conclusion block, by the report rule."""
    nb = nbformat.read(path, as_version=4)
    return next(o for c in nb.cells for o in c.get("outputs", []))


def _html(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", []))


def _images(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.fixture
def small_store(tmp_db):
    rng = np.random.default_rng(21)
    t0 = 1.75e9
    with store.connect(tmp_db) as con:
        insert_run(con, "fixed", rng.gamma(4, 8, 1500), rate_rps=100, t0=t0, label="suite=nb,batching=fixed")
        # the demo server's counters for the fixed run, scraped every 2 s: 16-slot batches, mostly padding
        rows = []
        for k in range(8):
            ts = t0 + 2 * k
            reqs = 200.0 * k
            rows += [("perfkit_demo_batch_size_sum", {}, ts, reqs), ("perfkit_demo_batch_size_count", {}, ts, reqs / 4),
                     ("perfkit_demo_batch_rows_total", {}, ts, reqs), ("perfkit_demo_batch_padding_rows_total", {}, ts, 3 * reqs),
                     ("perfkit_demo_queue_wait_seconds_sum", {}, ts, reqs * 0.028),
                     ("perfkit_demo_queue_wait_seconds_count", {}, ts, reqs),
                     ("perfkit_demo_inference_duration_seconds_sum", {}, ts, reqs / 4 * 0.001),
                     ("perfkit_demo_inference_duration_seconds_count", {}, ts, reqs / 4)]
        insert_series(con, "fixed", "scrape", rows)
        insert_run(con, "direct", rng.gamma(4, 0.25, 1500), rate_rps=100, t0=t0 + 100, label="suite=nb,proxy=none")
        insert_run(con, "proxied", rng.gamma(4, 0.25, 1500) + 0.3, rate_rps=100, t0=t0 + 200,
                   label="suite=nb,proxy=nginx")
    return tmp_db


def test_root_cause_notebook(small_store, tmp_path):
    out = tmp_path / "03.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "03_root_cause.ipynb"), str(out), kernel_name="python3",
                        parameters={"db": str(small_store)}, progress_bar=False)
    head = _headline(out)
    assert head["title"] == "Root cause" and "3 run(s)" in head["note"]
    figs = head["figures"]
    assert "75% padding" in figs["Batching"]
    assert figs["Proxy added"].startswith("p50 +0.3") and "(n=1,500/1,500)" in figs["Proxy added"]
    assert _images(out) >= 2
    first = _first_output(out)["data"][CONCLUSION_MIME]
    assert first["title"].startswith("Top cause: ") and any(" of 3 runs" in line for line in first["lines"])
    page = _html(out)
    assert "<h3>The proxy adds latency</h3>" in page
    assert "hl_shift_ms=" not in page                  # raw key=value strings stay in the JSON export


def test_ab_notebook(small_store, tmp_path):
    out = tmp_path / "04.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "04_ab_compare.ipynb"), str(out), kernel_name="python3",
                        parameters={"db": str(small_store), "baseline": "direct", "candidate": "proxied"},
                        progress_bar=False)
    head = _headline(out)
    assert head["run_id"] == "proxied" and head["figures"]["Verdict"].startswith("FAIL")
    assert "run-to-run variance is unknown" in head["note"]       # one run a side
    assert _images(out) == 3
    first = _first_output(out)["data"][CONCLUSION_MIME]
    assert first["status"] == "fail" and first["title"].startswith("The candidate is 0.3")


def test_notebooks_are_committed_clean_with_tagged_parameters():
    for name in ("03_root_cause.ipynb", "04_ab_compare.ipynb"):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", [])
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
        for line in code[0].source.splitlines():
            assert ": " in line and "  # " in line      # typed literal with a trailing comment
