"""The report style: tables, values and intervals formatted for people, and the conclusion block.

Every table a report shows goes through :func:`table`: no index column unless
it means something, units in the headers (``P99 (ms)``), numbers to a few
significant figures with thousands separators, intervals as
``35.3 ms [31.4, 44.8]``, "—" for a missing value (with a footnote),
right-aligned numbers and wrapped text. Sentences use :func:`fmt_value` and
:func:`fmt_interval`, so a number reads the same in a table and in prose.

:func:`conclusion` opens a report with its verdict: a block at the top of the
page, recorded (like :mod:`perfkit.report.headline`) under
:data:`CONCLUSION_MIME` for the index. The formatting is pure; only
:func:`conclusion` displays.
"""
from __future__ import annotations

import datetime as dt
import html
import math
import numbers
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

CONCLUSION_MIME = "application/vnd.perfkit.conclusion+json"
#: What a missing value shows, and the footnote that says so.
MISSING = "—"
MISSING_NOTE = "— no data / not applicable"
#: No number is shown with more decimals than this (smaller magnitudes get an exponent).
MAX_DECIMALS = 4
Status = Literal["pass", "fail", "warn", "info"]
STATUSES: tuple[str, ...] = ("pass", "fail", "warn", "info")

#: Column-name suffix -> unit shown in the header (longest suffix first when matching).
UNIT_SUFFIXES: dict[str, str] = {
    "_ms": "ms", "_us": "µs", "_s": "s", "_min": "min", "_h": "h", "_rps": "req/s", "_qps": "queries/s",
    "_tps": "tokens/s", "_pct": "%", "_percent": "%", "_usd": "USD", "_w": "W", "_wh": "Wh", "_kwh": "kWh", "_j": "J",
    "_bytes": "bytes", "_kb": "kB", "_mb": "MB", "_gb": "GB", "_gib": "GiB", "_mib": "MiB",
}
#: Words written as people write them in headers.
_WORDS = {"p50": "P50", "p90": "P90", "p95": "P95", "p99": "P99", "p999": "P99.9", "p9999": "P99.99",
          "ci": "CI", "id": "ID", "ttft": "TTFT", "tpot": "TPOT", "itl": "ITL", "gpu": "GPU", "cpu": "CPU",
          "slo": "SLO", "tco": "TCO", "fp32": "FP32", "int8": "INT8", "fp16": "FP16", "mlperf": "MLPerf",
          "rps": "req/s", "qps": "QPS", "url": "URL", "http": "HTTP", "mttr": "MTTR", "onnx": "ONNX",
          "rss": "RSS", "n": "n", "t": "Time"}
_NUMBER_CSS = [("text-align", "right"), ("font-variant-numeric", "tabular-nums"), ("white-space", "nowrap")]
_TEXT_CSS = [("text-align", "left"), ("white-space", "normal"), ("overflow-wrap", "anywhere"),
             ("max-width", "32rem"), ("min-width", "8rem")]


# --------------------------------------------------------------------------- values


def is_missing(x: Any) -> bool:
    """None, NaN, NaT and pandas' NA all mean "no value"."""
    if x is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(x)) if not isinstance(x, (list, tuple, dict, set)) else False
    except (TypeError, ValueError):
        return False


def fmt_number(x: float, sig: int = 3) -> str:
    """``x`` to ``sig`` significant figures with thousands separators.

    Whole digits are never rounded away (``186.15 -> 186``, ``12,345.6 -> 12,346``),
    whole numbers stay whole (a count stored as a float), at most four decimals
    are shown (``0.00776 -> 0.0078``), and magnitudes below 0.001 use an exponent
    (``1.23e-04``).
    """
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, numbers.Integral):
        return f"{int(x):,}"
    v = float(x)
    if math.isnan(v):
        return MISSING
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) < 1e-3:
        return f"{v:.{max(sig - 1, 0)}e}"
    decimals = min(max(sig - 1 - math.floor(math.log10(abs(v))), 0), MAX_DECIMALS)
    return f"{v:,.{decimals}f}"


def _with_unit(text: str, unit: str | None) -> str:
    if not unit or text == MISSING:
        return text
    if unit in ("%",):
        return f"{text}%"
    if unit in ("USD", "$"):
        return f"${text}" if not text.startswith("-") else f"-${text[1:]}"
    return f"{text} {unit}"


def fmt_value(x: Any, unit: str | None = None, sig: int = 3) -> str:
    """One value for a sentence or a cell: ``fmt_value(35.2847, "ms") == "35.3 ms"``; missing -> "—".

    Booleans read yes/no, times ``2026-11-25 03:00:00 UTC``, durations in seconds; text is shown as is.
    """
    if is_missing(x):
        return MISSING
    if getattr(getattr(x, "dtype", None), "kind", "") == "b":  # numpy's bool is no numbers.Number
        x = bool(x)
    if isinstance(x, (numbers.Number, bool)) and not isinstance(x, complex):
        return _with_unit(fmt_number(x, sig), unit)  # type: ignore[arg-type]
    if isinstance(x, dt.datetime):
        return x.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if x.utcoffset() == dt.timedelta(0) else "")
    if isinstance(x, dt.timedelta):
        return _with_unit(fmt_number(x.total_seconds(), sig), "s")
    return str(x)  # text carries its own words; a unit is for numbers


def fmt_interval(x: Any, lo: Any, hi: Any, unit: str | None = None, sig: int = 3) -> str:
    """A value with its interval: ``fmt_interval(35.3, 31.4, 44.8, "ms") == "35.3 ms [31.4, 44.8]"``.

    A missing bound shows as "—"; a missing value shows only "—".
    """
    if is_missing(x):
        return MISSING
    if is_missing(lo) and is_missing(hi):
        return fmt_value(x, unit, sig)
    return f"{fmt_value(x, unit, sig)} [{fmt_value(lo, None, sig)}, {fmt_value(hi, None, sig)}]"


# --------------------------------------------------------------------------- headers


def split_unit(column: str) -> tuple[str, str | None]:
    """``"p99_ms" -> ("p99", "ms")``; a name without a known unit suffix -> (name, None)."""
    low = column.lower()
    for suffix in sorted(UNIT_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix) and len(column) > len(suffix):
            return column[: -len(suffix)], UNIT_SUFFIXES[suffix]
    return column, None


def header_label(name: str) -> str:
    """A column name as a header: ``"ci_low" -> "CI low"``, ``"achieved rps" -> "Achieved req/s"``."""
    if " " in name.strip() and "_" not in name:
        return name  # already written for people
    words = [w for w in name.replace("_", " ").split(" ") if w]
    shown = [_WORDS.get(w.lower(), w) for w in words]
    if words and words[0].lower() not in _WORDS:
        shown[0] = shown[0][:1].upper() + shown[0][1:]
    return " ".join(shown)


# --------------------------------------------------------------------------- tables


def _is_numeric(series: "pd.Series") -> bool:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return False
    if pd.api.types.is_numeric_dtype(series.dtype):
        return True
    values = [v for v in series if not is_missing(v)]
    return bool(values) and all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in values)


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        n = seen.get(label, 0)
        seen[label] = n + 1
        out.append(label if n == 0 else f"{label} ({n + 1})")
    return out


def formatted_frame(df: "pd.DataFrame", *, units: Mapping[str, str] | None = None,
                    intervals: Mapping[str, tuple[str, str]] | None = None,
                    labels: Mapping[str, str] | None = None, index: bool = False,
                    sig: int = 3) -> tuple["pd.DataFrame", list[bool], bool]:
    """The frame :func:`table` shows: strings only, headers with units, intervals merged.

    Returns the frame, which of its columns are numbers (right-aligned), and
    whether any value was missing (the "—" footnote).
    """
    import pandas as pd

    units, intervals, labels = dict(units or {}), dict(intervals or {}), dict(labels or {})
    unnamed_range = isinstance(df.index, pd.RangeIndex) and df.index.name is None
    frame = df.reset_index() if index and not unnamed_range else df  # a bare 0, 1, 2 index is never shown
    intervals = {k: v for k, v in intervals.items() if k in frame.columns}  # one mapping may serve several tables
    bounds = {c for pair in intervals.values() for c in pair} - set(intervals)
    headers: list[str] = []
    cells: list[list[str]] = []
    numeric: list[bool] = []
    for col in frame.columns:
        if col in bounds:
            continue
        name = str(col)
        base, unit = split_unit(name)
        unit = units.get(name, unit)
        series = frame[col]
        if col in intervals:
            lo, hi = intervals[col]
            cells.append([fmt_interval(x, a, b, unit, sig) for x, a, b in zip(series, frame[lo], frame[hi])])
            headers.append(labels.get(name) or header_label(base))  # each cell states its unit
            numeric.append(True)
            continue
        cells.append([fmt_value(x, None, sig) for x in series])
        header = labels.get(name) or header_label(base if unit else name)
        headers.append(f"{header} ({unit})" if unit and name not in labels else header)
        numeric.append(_is_numeric(series))
    missing = any(c == MISSING for column in cells for c in column)
    shown = pd.DataFrame(dict(enumerate(cells)), index=pd.RangeIndex(len(frame)), columns=range(len(cells)))
    shown.columns = pd.Index(_unique(headers))
    return shown, numeric, missing


def footnotes_html(notes: Mapping[str, str] | None, missing: bool) -> str:
    """The footnotes under a table: each note, then the "—" legend when a value was missing."""
    lines = [f"<b>{html.escape(str(k))}</b>: {html.escape(str(v))}" for k, v in (notes or {}).items()]
    if missing:
        lines.append(html.escape(MISSING_NOTE))
    if not lines:
        return ""
    return "<div class='perfkit-notes'>" + "".join(f"<p>{line}</p>" for line in lines) + "</div>"


def _styler_class() -> type:
    from pandas.io.formats.style import Styler

    class ReportTable(Styler):
        """A :class:`pandas.io.formats.style.Styler` whose HTML carries the table's footnotes."""

        footnotes: str = ""

        def __repr__(self) -> str:
            return str(self.data.to_string(index=False))

        def _repr_html_(self) -> str:
            body = "<p class='perfkit-empty'>none</p>" if self.data.empty else str(self.to_html())
            return "<div class='perfkit-table'>" + body + self.footnotes + "</div>"

    return ReportTable


def table(df: "pd.DataFrame", *, units: Mapping[str, str] | None = None,
          intervals: Mapping[str, tuple[str, str]] | None = None, labels: Mapping[str, str] | None = None,
          notes: Mapping[str, str] | None = None, index: bool = False, caption: str | None = None,
          sig: int = 3) -> "Styler":
    """A table for people, shown by Jupyter and in the HTML report.

    ``units`` overrides the unit a column's suffix implies (``p99_ms`` -> ms);
    ``intervals`` maps a value column to its (low, high) columns, merged into one
    cell (entries for columns the frame lacks are ignored); ``labels`` renames headers; ``notes`` are footnotes (``term: text``);
    ``caption`` goes under the table. The index is shown only with ``index=True``.
    A table without rows shows "none".
    """
    shown, numeric, missing = formatted_frame(df, units=units, intervals=intervals, labels=labels,
                                              index=index, sig=sig)
    styler = _styler_class()(shown, uuid_len=8, cell_ids=False)
    styler.footnotes = footnotes_html(notes, missing)
    styler.hide(axis="index")
    # Cells and headers may hold run labels, targets or server messages: never raw HTML.
    styler.format(escape="html")
    styler.format_index(escape="html", axis=1)
    styles = [{"selector": "", "props": [("border-collapse", "collapse"), ("margin", ".4rem 0")]},
              {"selector": "th", "props": [("text-align", "left"), ("vertical-align", "bottom"),
                                           ("border-bottom", "1px solid #9aa3b2"), ("padding", ".3rem .6rem")]},
              {"selector": "td", "props": [("vertical-align", "top"), ("padding", ".3rem .6rem"),
                                           ("border-bottom", "1px solid #e3e6ec")]},
              {"selector": "caption", "props": [("caption-side", "bottom"), ("text-align", "left"),
                                                ("color", "#5b6473"), ("font-size", ".85em"),
                                                ("padding-top", ".3rem")]}]
    for k, is_number in enumerate(numeric):
        styles.append({"selector": f"td.col{k}", "props": _NUMBER_CSS if is_number else _TEXT_CSS})
        if is_number:
            styles.append({"selector": f"th.col{k}", "props": [("text-align", "right")]})
    styler.set_table_styles(styles)
    styler.set_table_attributes("class='perfkit-table'")
    if caption:
        styler.set_caption(html.escape(caption))
    return styler


# --------------------------------------------------------------------------- conclusion


def conclusion_bundle(title: str, lines: Sequence[str], status: str = "info") -> dict[str, Any]:
    """The display bundle: a block for people, JSON for the index."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    shown = [str(line) for line in lines]
    data = {"title": str(title), "lines": shown, "status": status}
    items = "".join(f"<li>{html.escape(line)}</li>" for line in shown)
    block = (f"<div class='perfkit-conclusion perfkit-{status}'>"
             f"<p class='perfkit-conclusion-title'><span class='perfkit-badge'>{status.upper()}</span> "
             f"{html.escape(str(title))}</p>" + (f"<ul>{items}</ul>" if items else "") + "</div>")
    plain = "\n".join([summary_text(data)] + [f"- {line}" for line in shown])
    return {"text/html": _CONCLUSION_CSS + block, "text/plain": plain, CONCLUSION_MIME: data}


def conclusion(title: str, lines: Sequence[str], status: Status = "info") -> None:
    """Open a report with its verdict: ``title`` (one sentence), a few ``lines`` of evidence, a status.

    Shown as a coloured block and recorded for ``reports/index.html``, which
    shows the status and title next to the report's link.
    """
    from IPython.display import display

    display(conclusion_bundle(title, lines, status), raw=True)


def summary_text(data: Mapping[str, Any]) -> str:
    """``PASS: title`` from a recorded conclusion (the index line and the plain-text view)."""
    return f"{str(data.get('status', 'info')).upper()}: {data.get('title', '')}"


_CONCLUSION_CSS = """<style>
.perfkit-conclusion { border-left: 6px solid #5b6473; background: #f5f7fa; padding: .6rem 1rem;
  margin: .4rem 0 1rem; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
.perfkit-conclusion-title { font-size: 1.15rem; font-weight: 600; margin: 0 0 .3rem; }
.perfkit-conclusion ul { margin: .2rem 0 0 1.2rem; padding: 0; }
.perfkit-conclusion li { margin: .15rem 0; }
.perfkit-badge { display: inline-block; font-size: .75rem; letter-spacing: .05em; padding: .1rem .45rem;
  border-radius: .25rem; color: #fff; background: #5b6473; vertical-align: middle; }
.perfkit-pass { border-color: #1e7b34; background: #f0f8f2; } .perfkit-pass .perfkit-badge { background: #1e7b34; }
.perfkit-fail { border-color: #b3261e; background: #fdf1f0; } .perfkit-fail .perfkit-badge { background: #b3261e; }
.perfkit-warn { border-color: #a15c00; background: #fff7ea; } .perfkit-warn .perfkit-badge { background: #a15c00; }
.perfkit-info { border-color: #2f5fa7; background: #f1f5fb; } .perfkit-info .perfkit-badge { background: #2f5fa7; }
</style>"""

