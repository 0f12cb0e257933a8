"""``perfkit report``: notebooks found, parameters typed, executed in the venv's kernel, HTML without code."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from perfkit.errors import UsageError
from perfkit.report import render

REPO = Path(__file__).resolve().parents[2]


def _write_nb(path: Path, body: str, params: str = 'label: str = "x"  # a label\nscale: float = 1.0  # a scale') -> Path:
    nb = new_notebook()
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell("# Tiny report"), p, new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_notebooks_resolve_by_path_stem_and_number():
    nb01 = render.resolve_notebook("01")
    assert nb01.name == "01_benchmark.ipynb"
    assert render.resolve_notebook("01_benchmark") == nb01
    assert render.resolve_notebook(str(nb01)) == nb01
    with pytest.raises(UsageError, match="unknown notebook 'nope'"):
        render.resolve_notebook("nope")


def test_parameter_values_take_the_declared_type():
    assert render.coerce_value("123", "str") == "123"
    assert render.coerce_value("5", "float") == 5.0 and isinstance(render.coerce_value("5", "float"), float)
    assert render.coerce_value("7", "int") == 7
    assert render.coerce_value("false", "bool") is False
    assert render.coerce_value("2.5") == 2.5
    assert render.coerce_value("abc") == "abc"
    with pytest.raises(UsageError):
        render.coerce_value("fast", "float")


def test_parameters_go_to_the_notebooks_that_declare_them(tmp_path):
    nb = _write_nb(tmp_path / "t.ipynb", "print(label)")
    jobs = render.build_jobs([nb], [["label", "123"], ["scale", "2"]])
    assert jobs[0].parameters == {"label": "123", "scale": 2.0}
    with pytest.raises(UsageError, match="rate_rps"):
        render.build_jobs([nb], [["rate_rps", "5"]])


def test_safe_name():
    assert render.safe_name("01_benchmark-case=steady/../x") == "01_benchmark-case_steady_.._x"


@pytest.mark.slow
def test_report_runs_in_the_venv_kernel_and_hides_code(tmp_path):
    nb = _write_nb(tmp_path / "tiny.ipynb", (
        "import sys\nimport matplotlib.pyplot as plt\nfrom perfkit.report import headline\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2, 3], [1, 4, 9]); plt.show()\n"
        "headline('Tiny ' + label, {'prefix': sys.prefix, 'scale': f'{scale:.1f}'}, run_id='r-1')"))
    out = tmp_path / "out"
    job = render.ReportJob(notebook=nb, name="tiny", parameters={"label": "<b>bold</b>", "scale": 3.0})
    records = render.render_reports([job], out, progress=False)
    rec = records[0]
    assert rec.ok, rec.error
    # the kernel ran the same interpreter environment as perfkit itself
    assert rec.headlines[0]["figures"]["prefix"] == sys.prefix
    assert rec.headlines[0]["figures"]["scale"] == "3.0"
    html = (out / "tiny.html").read_text()
    assert "import matplotlib" not in html and "headline(" not in html  # no code cells
    assert "jp-InputPrompt" not in html.split("</style>")[-1]  # no prompt in the body
    assert re.search(r"<img[^>]+src=\"data:image/png;base64,", html)  # figure embedded
    assert "<script src=" not in html  # nothing fetched from the network
    index = (out / "index.html").read_text()
    assert "Tiny &lt;b&gt;bold&lt;/b&gt;" in index and "href='tiny.html'" in index


@pytest.mark.slow
def test_a_failing_notebook_is_reported_and_the_others_still_render(tmp_path):
    good = _write_nb(tmp_path / "a_good.ipynb", "from perfkit.report import headline\nheadline('Good', {'x': '1'})")
    bad = _write_nb(tmp_path / "b_bad.ipynb", "x = 1\nraise ValueError('rate too high: ' + label)")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "perfkit", "report", str(good), str(bad), "--out", str(out),
                          "--no-progress"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 1
    assert "b_bad.ipynb (b_bad) failed at cell 3 (x = 1): ValueError: rate too high: x" in res.stderr
    assert (out / "a_good.html").exists() and (out / "b_bad.html").exists()
    index = (out / "index.html").read_text()
    assert "failed: cell 3 (x = 1): ValueError: rate too high: x" in index
    assert "2 reports, 1 failed" in index


def test_unknown_notebook_is_one_line_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "perfkit", "report", "99_nope", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perfkit report: unknown notebook '99_nope'")
    assert not (tmp_path / "index.html").exists()


def test_undeclared_parameter_is_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "perfkit", "report", "01", "-p", "nosuch", "1",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "perfkit report: parameter(s) nosuch not declared by 01_benchmark.ipynb"]


def test_a_notebook_that_cannot_even_start_is_still_in_the_index(tmp_path):
    broken = tmp_path / "c_broken.ipynb"
    broken.write_text("{ not json", encoding="utf-8")
    out = tmp_path / "out"
    records = render.render_reports([render.ReportJob(notebook=broken, name="c_broken")], out, progress=False)
    assert records[0].error is not None and records[0].html is None
    index = (out / "index.html").read_text()
    assert "c_broken" in index and "1 report, 1 failed" in index
