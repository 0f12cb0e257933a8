"""The report style: values, intervals and tables formatted for people; the conclusion block."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perfkit.report import style
from perfkit.report.index import conclusions_from_notebook


@pytest.mark.parametrize("x, sig, want", [
    (186.153846, 3, "186"), (0.928571, 3, "0.929"), (26.508420, 3, "26.5"), (12345.6, 3, "12,346"),
    (1234567, 3, "1,234,567"), (6000.0, 3, "6,000"), (35.2847, 4, "35.28"), (0.5, 3, "0.500"),
    (0.0000123, 3, "1.23e-05"), (0.00776, 3, "0.0078"), (0.001234, 3, "0.0012"), (-2.71828, 3, "-2.72"), (0.0, 3, "0"), (999.7, 3, "1,000"),
    (np.float32(2.5), 2, "2.5"), (np.int64(42), 3, "42"), (True, 3, "yes"), (math.inf, 3, "∞"),
])
def test_numbers_to_significant_figures_with_separators(x, sig, want):
    assert style.fmt_number(x, sig) == want


def test_values_carry_their_unit_and_missing_is_a_dash():
    assert style.fmt_value(35.2847, "ms") == "35.3 ms"
    assert style.fmt_value(26.5084, "%") == "26.5%"
    assert style.fmt_value(1234.5, "USD") == "$1,234" or style.fmt_value(1234.5, "USD") == "$1,235"
    for missing in (None, float("nan"), np.nan, pd.NA, pd.NaT):
        assert style.fmt_value(missing, "ms") == "—"
    assert style.fmt_value("cpu-demo") == "cpu-demo"


def test_intervals_read_value_unit_then_bounds():
    assert style.fmt_interval(35.28, 31.41, 44.83, "ms") == "35.3 ms [31.4, 44.8]"
    assert style.fmt_interval(35.28, None, 44.83, "ms") == "35.3 ms [—, 44.8]"
    assert style.fmt_interval(35.28, None, None, "ms") == "35.3 ms"
    assert style.fmt_interval(None, 1, 2, "ms") == "—"


def test_headers_name_the_unit():
    assert style.split_unit("p99_ms") == ("p99", "ms")
    assert style.split_unit("achieved_rps") == ("achieved", "req/s")
    assert style.split_unit("cost_per_1k_usd") == ("cost_per_1k", "USD")
    assert style.split_unit("case") == ("case", None)
    assert style.header_label("ci_low") == "CI low"
    assert style.header_label("ttft p99") == "ttft p99"  # already written for people: kept


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"case": ["steady", "a burst case with a long free-text reason"],
                         "p99_ms": [35.2847, np.nan], "p99_lo_ms": [31.41, np.nan], "p99_hi_ms": [44.83, np.nan],
                         "achieved_rps": [186.153846, 12345.6], "requests": [6000, 12]})


def test_table_shows_no_index_units_intervals_and_dashes():
    t = style.table(_frame(), intervals={"p99_ms": ("p99_lo_ms", "p99_hi_ms")}, notes={"P99": "inverted CDF"},
                    caption="two cases")
    assert list(t.data.columns) == ["Case", "P99", "Achieved (req/s)", "Requests"]
    assert style.header_label("n") == "n" and style.header_label("p99_x") == "P99 x"
    assert t.data.iloc[0].tolist() == ["steady", "35.3 ms [31.4, 44.8]", "186", "6,000"]
    assert t.data.iloc[1].tolist()[1:] == ["—", "12,346", "12"]
    html = t._repr_html_()
    assert "row_heading" not in html and "index_name" not in html       # no 0, 1 index column
    assert "<th" in html and "Achieved (req/s)" in html and "two cases" in html
    assert "— no data / not applicable" in html and "inverted CDF" in html
    assert "186.153846" not in html and "NaN" not in html and "nan" not in html.lower().replace("nanum", "")


def test_table_aligns_numbers_right_and_wraps_text():
    html = style.table(_frame()).to_html()
    assert "td.col0 {\n  text-align: left;\n  white-space: normal;" in html
    assert "td.col1 {\n  text-align: right;" in html


def test_index_only_when_asked_and_labels_override():
    df = pd.DataFrame({"p50_ms": [1.234]}, index=pd.Index(["cpu"], name="device"))
    assert list(style.table(df).data.columns) == ["P50 (ms)"]
    shown = style.table(df, index=True, labels={"p50_ms": "Median (ms)"}).data
    assert list(shown.columns) == ["Device", "Median (ms)"] and shown.iloc[0].tolist() == ["cpu", "1.23"]
    assert "— no data" not in style.table(df)._repr_html_()


def test_units_mapping_overrides_the_suffix():
    df = pd.DataFrame({"cost": [0.12345], "energy_j": [2.0]})
    assert list(style.table(df, units={"cost": "USD", "energy_j": "kJ"}).data.columns) == ["Cost (USD)",
                                                                                        "Energy (kJ)"]


def test_conclusion_is_shown_and_recorded_for_the_index():
    bundle = style.conclusion_bundle("FAIL: 26.5 ms slower <at> the median", ["P50 [25.5, 27.7]"], "fail")
    assert "class='perfkit-conclusion perfkit-fail'" in bundle["text/html"]
    assert "&lt;at&gt;" in bundle["text/html"]
    assert bundle[style.CONCLUSION_MIME] == {"title": "FAIL: 26.5 ms slower <at> the median",
                                             "lines": ["P50 [25.5, 27.7]"], "status": "fail"}
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": bundle}]}]}
    assert conclusions_from_notebook(nb) == [bundle[style.CONCLUSION_MIME]]
    with pytest.raises(ValueError):
        style.conclusion_bundle("x", [], "great")


def test_figures_state_n_and_units_and_carry_alt_text():
    from matplotlib.figure import Figure

    from perfkit.plots import style as plot_style

    assert plot_style.with_n("Latency", 6000, "ms") == "Latency (ms, n=6,000)"
    assert plot_style.with_n("Latency") == "Latency"
    fig = Figure()
    ax = fig.subplots()
    plot_style.title(ax, "Latency over time", n=2000)
    ax.set_xlabel("time (s)")
    assert plot_style.alt_text(fig) == "Latency over time (n=2,000) (x: time (s))"
    fig.suptitle("Run r1")
    assert plot_style.alt_text(fig).startswith("Run r1. Latency over time")
    assert plot_style.alt_text(plot_style.describe(fig, "P99 rises after 10 s")) == "P99 rises after 10 s"
    assert plot_style.color(0) == plot_style.PALETTE[0] == plot_style.color(len(plot_style.PALETTE))


def test_an_empty_table_says_so_and_a_bare_index_is_never_shown():
    empty = pd.DataFrame(columns=["metric", "p50_ms"])
    t = style.table(empty, index=True)
    assert list(t.data.columns) == ["Metric", "P50 (ms)"]
    assert "<table" not in t._repr_html_() and "none" in t._repr_html_()
    assert list(style.table(pd.DataFrame({"a": [1, 2]}), index=True).data.columns) == ["A"]


def test_booleans_times_and_text():
    import datetime as dt

    assert style.fmt_value(np.bool_(True)) == "yes" and style.fmt_value(False) == "no"
    when = pd.Timestamp("2026-11-25 03:00:00.25", tz="UTC")
    assert style.fmt_value(when) == "2026-11-25 03:00:00 UTC"
    assert style.fmt_value(dt.timedelta(seconds=90.5)) == "90.5 s"
    assert style.fmt_value("n/a", "ms") == "n/a"


def test_axis_labels_read_like_table_headers():
    from perfkit.plots import style as plot_style

    assert plot_style.axis_label("p99_ms") == "P99 (ms)" and plot_style.axis_label("achieved_rps") == "Achieved (req/s)"


def test_table_escapes_cells_headers_and_caption():
    """A run label, a target or a server's message can hold markup: the table shows it as text."""
    import pandas as pd

    from perfkit.report.style import table

    page = table(pd.DataFrame({"<b>label</b>": ["<script>alert(1)</script>"], "p99_ms": [1.5]}),
                 caption="<i>caption</i>")._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>label" not in page and "&lt;b&gt;label&lt;/b&gt;" in page
    assert "<i>caption" not in page
