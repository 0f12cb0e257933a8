"""Prometheus text exposition (0.0.4) and OpenMetrics 1.0 parser, built for speed.

The whole text (or the file's bytes, UTF-8 checked in bulk) is split into
lines once by Arrow and handed to polars (Rust). The common sample line
(`name{k="v",...} value [ts] [# exemplar]`, pure ASCII, no escapes, single
spaces) is cut by literal finds into a prefix (``name{labels``), a histogram
bucket's ``le`` pair and the numbers; a run of lines sharing a prefix (a
histogram's buckets) has its prefix checked against the grammar and turned
into JSON by two literal replacements once, values and timestamps are cast in
bulk (the fast path: :mod:`perfkit.ingest.promtext_fast`). Lines the fast path
does not take (escaped or non-ASCII label values, tabs, extra blanks...) go
through a careful per-line parser that implements the grammar, or fail with
``path:line: problem`` (:mod:`perfkit.ingest.promtext_careful`). Comment lines
(`# TYPE`, `# HELP`, `# UNIT`, `# EOF`) are few and read here, in Python.

Timestamps: 0.0.4 timestamps are milliseconds, OpenMetrics ones seconds; both
come out as ``ts_unix_s`` (null where the line had none). Sample names stay as
exposed (prometheus_client renames a 0.0.4 counter ``x`` to ``x_total``;
Prometheus stores ``x``, and so do we).
Exemplars are validated and dropped (the store has no place for them).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from perfkit.errors import InputError
from perfkit.ingest.promtext_careful import NAME_RE, parse_line
from perfkit.ingest.promtext_fast import fast_columns, still_distinct

_TYPES_OM = {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
_TYPES_004 = {"counter", "gauge", "histogram", "summary", "untyped"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}
# Unit from a metric name's conventional suffix (Prometheus naming practice).
_UNIT_SUFFIXES = (
    ("_seconds", "seconds"), ("_bytes", "bytes"), ("_ratio", "ratio"), ("_percent", "percent"),
    ("_celsius", "celsius"), ("_joules", "J"), ("_watts", "W"), ("_hertz", "Hz"), ("_volts", "V"),
    ("_meters", "meters"), ("_grams", "grams"), ("_amperes", "A"),
)


@dataclass
class Family:
    """What `# TYPE` / `# UNIT` / `# HELP` said about one metric family."""

    name: str
    type: str
    unit: str | None = None
    help: str | None = None


@dataclass
class Exposition:
    """A parsed exposition: one row per sample (fast-path rows in file order, then the
    few rows the careful parser read, also in file order).

    ``samples`` columns: ``line`` (1-based), ``name``, ``labels`` (JSON object
    text, keys in file order), ``value``, ``ts_unix_s`` (null when absent).
    """

    samples: pl.DataFrame
    families: dict[str, Family] = field(default_factory=dict)
    openmetrics: bool = False
    #: True when the parser saw that no two rows share (name, labels): each row is
    #: its own series and grouping can be skipped. False means "not known".
    distinct_series: bool = False

    def __len__(self) -> int:
        return self.samples.height

    def family_of(self, sample_name: str) -> Family | None:
        """The family a sample name belongs to (``foo_bucket`` -> ``foo``), if declared."""
        fam = self.families.get(sample_name)
        if fam is not None:
            return fam
        for typ, suffixes in _SUFFIXES.items():
            for suffix in suffixes:
                if sample_name.endswith(suffix):
                    fam = self.families.get(sample_name[: -len(suffix)])
                    if fam is not None and fam.type == typ:
                        return fam
        return None

    def series_meta(self) -> pl.DataFrame:
        """name -> (type, unit) for every distinct sample name."""
        names = self.samples.get_column("name").unique(maintain_order=True).to_list()
        types, units = [], []
        for name in names:
            fam = self.family_of(name)
            typ = fam.type if fam else ("unknown" if self.openmetrics else "untyped")
            unit = fam.unit if fam and fam.unit else unit_from_name(fam.name if fam else name)
            if typ in ("histogram", "summary", "gaugehistogram") and fam is not None and (
                name.endswith(("_count", "_bucket", "_gcount"))
            ):
                unit = "count"  # observations; _sum keeps the family's unit
            types.append(typ)
            units.append(unit)
        return pl.DataFrame({"name": names, "type": types, "unit": units},
                            schema={"name": pl.String, "type": pl.String, "unit": pl.String})

    def as_records(self) -> list[tuple[str, dict[str, str], float, float | None]]:
        """(name, labels, value, timestamp) tuples: for tests and comparisons, not the hot path."""
        out = []
        cache: dict[str, dict[str, str]] = {}
        for name, labels, value, ts in self.samples.select(
            "name", "labels", "value", "ts_unix_s"
        ).iter_rows():
            parsed = cache.get(labels)
            if parsed is None:
                parsed = cache[labels] = json.loads(labels)
            out.append((name, parsed, value, ts))
        return out


def unit_from_name(name: str) -> str | None:
    """Unit implied by a Prometheus metric name (``_seconds`` -> seconds), None if none."""
    base = name
    for suffix in ("_total", "_created", "_bucket", "_sum", "_count"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    for suffix, unit in _UNIT_SUFFIXES:
        if base.endswith(suffix):
            return unit
    return None


_COUNTER_TOTAL_TYPE = re.compile(r"(?m)^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]*_total counter\s*$")
_COUNTER_TOTAL_TYPE_B = re.compile(_COUNTER_TOTAL_TYPE.pattern.encode())


def is_openmetrics(text: str | bytes) -> bool:
    """Guess the format of a file that did not say.

    OpenMetrics requires a final ``# EOF``; but 0.0.4 parsers ignore that line as
    a comment and some 0.0.4 files carry it (Prometheus' own test data), so a
    file whose counters are typed under their ``_total`` name (0.0.4 style; in
    OpenMetrics the family name drops ``_total``) is read as 0.0.4.
    """
    if isinstance(text, bytes):
        tail_b = text[-64:].rstrip()
        if not (tail_b.endswith(b"\n# EOF") or tail_b == b"# EOF"):
            return False
        return _COUNTER_TOTAL_TYPE_B.search(text) is None
    tail = text[-64:].rstrip()
    if not (tail.endswith("\n# EOF") or tail == "# EOF"):
        return False
    return _COUNTER_TOTAL_TYPE.search(text) is None


def not_utf8(data: bytes, path: str) -> InputError:
    """The error for bytes that are not UTF-8: the line and the first bad byte."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return InputError(path, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})")
    raise ValueError("the bytes are valid UTF-8")


def parse(text: str | bytes, path: str = "<text>", openmetrics: bool | None = None) -> Exposition:
    """Parse one exposition (text, or the file's bytes: UTF-8 is checked in bulk without
    building a Python string); raise :class:`InputError` (path:line) on the first bad line."""
    om = is_openmetrics(text) if openmetrics is None else openmetrics
    # split by Arrow (C++): a Python list of 10^5 line strings costs more than the
    # split, and polars' str.split measured up to twice as slow as Arrow's here
    if isinstance(text, bytes):
        try:  # one Arrow value over the bytes as they are (no copy), checked as UTF-8
            offsets = pa.py_buffer(np.array([0, len(text)], dtype=np.int64))
            whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(text)])
            whole = whole.cast(pa.large_string())
        except pa.ArrowInvalid:
            raise not_utf8(text, path) from None
    else:  # through polars: pyarrow's pa.array() would import pandas on first use
        whole = pl.Series([text], dtype=pl.String).to_arrow(compat_level=pl.CompatLevel.oldest())
    lines = cast(pl.Series, pl.from_arrow(pc.split_pattern(whole, "\n").flatten())).alias("text")
    frame = pl.DataFrame([lines]).with_row_index("line", offset=1)
    col = frame.get_column("text")
    # Candidates for the fast path: lines that start like a sample. str.find gives
    # byte offsets and str.slice takes character offsets: the fast path takes
    # pure-ASCII lines only (others go to the careful parser).
    fast_mask = col.str.contains("^[a-zA-Z_:]") & (col.str.len_bytes() == col.str.len_chars())
    fast = frame.filter(fast_mask)
    other = frame.filter(~fast_mask)

    # The few lines off the fast path: comments, blanks, escapes, odd spacing, errors.
    comment_rows: list[tuple[int, str]] = []
    careful_rows: list[tuple[int, str]] = []
    blank_lines: list[int] = []  # inside OpenMetrics text: checked below
    for line, text_ in other.iter_rows():
        if text_.startswith("#"):
            comment_rows.append((line, text_))
        elif not text_.strip(" \t\r"):
            if om and line < frame.height:
                blank_lines.append(line)
        else:
            careful_rows.append((line, text_))
    families, eof_line = _read_comments(comment_rows, path, om)
    if om:
        if eof_line is None:
            raise InputError(path, frame.height, "OpenMetrics text must end with '# EOF'")
        after = [line for line, _ in comment_rows + careful_rows if line > eof_line]
        if fast.height and int(fast.item(-1, "line")) > eof_line:  # fast rows are in file order
            after.append(int(fast.filter(pl.col("line") > eof_line).item(0, "line")))
        if after:
            raise InputError(path, min(after), "content after '# EOF'")
        for line in blank_lines:
            if line < eof_line:
                raise InputError(path, line, "blank line in OpenMetrics text")

    good, redo, distinct = fast_columns(fast, om)
    careful_rows = sorted(careful_rows + redo)  # so the first bad line is the one reported
    if careful_rows:
        rows = [parse_line(text_, line, path, om) for line, text_ in careful_rows]
        careful = pl.DataFrame(rows, schema=good.schema, orient="row")
        distinct = distinct and still_distinct(good, careful)
        # fast-path rows first, then the careful ones (each in file order): sorting
        # 10^5 rows back into file order would cost more than the whole parse
        good = pl.concat([good, careful])
    _check_types(good, families, path, om)
    return Exposition(samples=good, families=families, openmetrics=om, distinct_series=distinct)


def _read_comments(comments: list[tuple[int, str]], path: str, om: bool) -> tuple[dict[str, Family], int | None]:
    families: dict[str, Family] = {}
    typed: set[str] = set()
    eof_line = None
    valid_types = _TYPES_OM if om else _TYPES_004
    for line, text in comments:
        parts = text.split(None, 3)
        if eof_line is not None:
            continue  # anything after '# EOF' is reported by parse()
        if len(parts) >= 2 and parts[0] == "#" and parts[1] in ("TYPE", "HELP", "UNIT"):
            if len(parts) < 3:
                raise InputError(path, line, f"'# {parts[1]}' without a metric name")
            name = parts[2]
            if not NAME_RE.fullmatch(name):
                raise InputError(path, line, f"invalid metric name {name!r} in # {parts[1]}")
            fam = families.get(name)
            if parts[1] == "TYPE":
                typ = parts[3].strip() if len(parts) > 3 else ""
                if typ not in valid_types:
                    raise InputError(path, line, f"unknown metric type {typ!r} for {name} "
                                                 f"(expected one of {', '.join(sorted(valid_types))})")
                if name in typed:
                    raise InputError(path, line, f"second # TYPE for {name}")
                typed.add(name)
                if fam is None:
                    families[name] = Family(name, typ)
                else:
                    fam.type = typ
            else:
                if fam is None:
                    fam = families[name] = Family(name, "unknown" if om else "untyped")
                value = parts[3].strip() if len(parts) > 3 else ""
                if parts[1] == "UNIT":
                    fam.unit = value or None
                else:
                    fam.help = value
        elif text.rstrip() == "# EOF" and om:
            eof_line = line
    return families, eof_line


def _check_types(good: pl.DataFrame, families: dict[str, Family], path: str, om: bool) -> None:
    """Histogram buckets need an ``le`` label; summary quantiles a ``quantile`` label."""
    hist = {n for n, f in families.items() if f.type in ("histogram", "gaugehistogram")}
    if not hist:
        return
    buckets = good.filter(pl.col("name").is_in([n + "_bucket" for n in hist])
                          & ~pl.col("labels").str.contains('"le":', literal=True))
    if buckets.height:
        raise InputError(path, int(buckets.get_column("line")[0]), "histogram bucket without an 'le' label")


