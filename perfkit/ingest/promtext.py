"""Prometheus text exposition (0.0.4) and OpenMetrics 1.0 parser, built for speed.

The whole text (or the file's bytes, UTF-8 checked in bulk) is split into
lines once by Arrow and handed to polars (Rust). The common sample line
(`name{k="v",...} value [ts] [# exemplar]`, pure ASCII, no escapes, single
spaces) is cut by literal finds into a prefix (``name{labels``), a histogram
bucket's ``le`` pair and the numbers; a run of lines sharing a prefix (a
histogram's buckets) has its prefix checked against the grammar and turned
into JSON by two literal replacements once, values and timestamps are cast in
bulk. Lines the fast path does not take (escaped or non-ASCII label values,
tabs, extra blanks...) go through a careful per-line parser that implements
the grammar, or fail with ``path:line: problem``. Comment lines (`# TYPE`,
`# HELP`, `# UNIT`, `# EOF`) are few and read in Python.

Timestamps: 0.0.4 timestamps are milliseconds, OpenMetrics ones seconds; both
come out as ``ts_unix_s`` (null where the line had none). Sample names stay as
exposed (prometheus_client renames a 0.0.4 counter ``x`` to ``x_total``;
Prometheus stores ``x``, and so do we).
Exemplars are validated and dropped (the store has no place for them).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from perfkit.errors import InputError

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
# Fast-path label values: no escapes, quotes, braces or control characters, not
# starting with ',' and not ending in '=' -- so '="' and '",' occur only at label
# boundaries and the label block becomes JSON by two literal replacements.
_LVAL = r'"(?:[^"\\\x00-\x1f{},=]|[^"\\\x00-\x1f{},][^"\\\x00-\x1f{}]*[^"\\\x00-\x1f{}=])?"'
_PAIR = _LNAME + "=" + _LVAL
_PAIRS = rf"(?:{_PAIR}(?:,{_PAIR})*)?"
_NUM = r"[^ #\t{}_]+"
# The pieces a fast-path line is cut into (see _fast_columns): with the float
# casts they make `^NAME(\{PAIRS\})? NUM( NUM)?$` (OpenMetrics: plus an exemplar).
_NAME_ONLY_RE = rf"^{_NAME}$"
_STEM_RE = rf"^{_PAIRS}$"  # prefix = NAME or NAME{STEM
_LEAF_RE = rf"^le={_LVAL}$"
_TAIL_OM = rf"^ {_NUM}(?: {_NUM})?(?: # \{{{_PAIRS}\}} {_NUM}(?: {_NUM})?)?$"

_NAME_RE = re.compile(_NAME)
_LNAME_RE = re.compile(_LNAME)
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
    else:
        whole = pa.array([text], pa.large_string())
    lines = pl.from_arrow(pc.split_pattern(whole, "\n").flatten()).alias("text")
    frame = pl.DataFrame([lines]).with_row_index("line", offset=1)
    col = frame.get_column("text")
    # Candidates for the fast path: lines that start like a sample. str.find gives
    # byte offsets and str.slice takes character offsets: the fast path takes
    # pure-ASCII lines only (others go to the careful parser).
    fast_mask = col.str.contains("^[a-zA-Z_:]") & (col.str.len_bytes() == col.str.len_chars())
    fast = frame.filter(fast_mask)
    other = frame.filter(~fast_mask)

    # The few lines off the fast path: comments, blanks, escapes, odd spacing, errors.
    comment_rows, careful_rows = [], []
    for line, text_ in other.iter_rows():
        if text_.startswith("#"):
            comment_rows.append((line, text_))
        elif not text_.strip(" \t\r"):
            if om and line < frame.height:
                careful_rows.append((line, None))  # blank line inside OpenMetrics: checked below
        else:
            careful_rows.append((line, text_))
    families, eof_line = _read_comments(comment_rows, path, om)
    if om:
        if eof_line is None:
            raise InputError(path, frame.height, "OpenMetrics text must end with '# EOF'")
        after = [line for line, t in comment_rows + careful_rows if line > eof_line and t is not None]
        if fast.height and int(fast.get_column("line").max()) > eof_line:
            after.append(int(fast.filter(pl.col("line") > eof_line).get_column("line").min()))
        if after:
            raise InputError(path, min(after), "content after '# EOF'")
        for line, text_ in careful_rows:
            if text_ is None and line < eof_line:
                raise InputError(path, line, "blank line in OpenMetrics text")
    careful_rows = [(line, t) for line, t in careful_rows if t is not None]

    good, redo, distinct = _fast_columns(fast, om)
    careful_rows = sorted(careful_rows + redo)  # so the first bad line is the one reported
    if careful_rows:
        rows = [_parse_line(text_, line, path, om) for line, text_ in careful_rows]
        careful = pl.DataFrame(rows, schema=good.schema, orient="row")
        distinct = distinct and _still_distinct(good, careful)
        # fast-path rows first, then the careful ones (each in file order): sorting
        # 10^5 rows back into file order would cost more than the whole parse
        good = pl.concat([good, careful])
    _check_types(good, families, path, om)
    return Exposition(samples=good, families=families, openmetrics=om, distinct_series=distinct)


def _still_distinct(fast: pl.DataFrame, careful: pl.DataFrame) -> bool:
    """Whether the careful rows add no (name, labels) seen before (the fast rows being distinct).

    A careful row whose labels JSON holds an escape or a non-ASCII character
    cannot equal a fast-path row's (those have neither), so only the others are
    looked up among the fast rows.
    """
    ident = pl.concat_str(pl.col("name"), pl.lit("\x00"), pl.col("labels"))
    if not careful.select(ident.is_unique().all()).item():
        return False
    lab = careful.get_column("labels")
    plain = careful.filter(~lab.str.contains("\\", literal=True)
                           & (lab.str.len_bytes() == lab.str.len_chars()))
    if plain.height == 0:
        return True
    near = fast.filter(pl.col("name").is_in(plain.get_column("name").unique().implode()))
    return not near.select(ident.is_in(plain.select(ident).to_series().implode()).any()).item()


_KEYS = r'"([a-zA-Z_][a-zA-Z0-9_]*)":"'
_LEAF = ',le="'  # the label that tells a histogram's bucket lines apart (written last)


def _fast_columns(fast: pl.DataFrame, om: bool) -> tuple[pl.DataFrame, list[tuple[int, str]], bool]:
    """Read candidate sample lines with literal finds and slices, checking them piece by piece.

    A line ``name{stem,le="x"} value [ts]`` is cut into a *prefix*
    (``name{stem``), an optional *leaf* (a bucket's ``le`` pair) and a *tail*
    (`` value [ts] [# exemplar]``). Consecutive lines with one prefix (a
    histogram's buckets) form a run: its prefix is matched against the grammar
    and turned into JSON once per run, and label names are checked for
    repeats once per distinct stem; only the short leaf and tail are checked
    per line (the tail by the bulk float cast, which refuses blanks, '#',
    braces and '_'). Together the pieces' checks accept exactly the strict
    fast-path grammar ``NAME({PAIRS})? NUM( NUM)?``, so a line failing any of
    them (escapes, odd blanks, a '}' in a value, numbers the cast refuses) goes
    to the careful parser, which reads it or names the problem.

    Returns (rows in file order, lines for the careful parser, whether every
    row's (name, labels) is distinct).
    """
    text = pl.col("text")
    # step by step: each step's columns are computed once, in parallel
    rows = fast.select(
        "line", "text",
        space=text.str.find(" ", literal=True), brace=text.str.find("{", literal=True),
        close=text.str.find("}", literal=True), cut=text.str.find(_LEAF, literal=True))
    space, brace, close, cut = (pl.col(c) for c in ("space", "brace", "close", "cut"))
    has_labels = (brace < space).fill_null(False)
    rows = rows.with_columns(
        has_labels=has_labels,
        has_leaf=(has_labels & (cut > brace + 1) & (cut < close)).fill_null(False))
    has_labels, has_leaf = pl.col("has_labels"), pl.col("has_leaf")
    rows = rows.select(
        "line", "text", "has_leaf",
        prefix=text.str.slice(0, pl.when(has_leaf).then(cut).when(has_labels).then(close)
                              .otherwise(space)),
        tail=text.str.slice(pl.when(has_labels).then(close + 1).otherwise(space)),
        leaf=pl.when(has_leaf).then(text.str.slice(cut + 1, close - cut - 1)))
    tail, leaf = pl.col("tail"), pl.col("leaf")
    if om:  # `` value [ts] [# {labels} value [ts]]``
        ex_at = tail.str.find(" # ", literal=True)
        vt = tail.str.slice(1, ex_at.fill_null(tail.str.len_bytes()) - 1)
        ex = tail.str.slice(ex_at + 3)
        ex_nums = ex.str.slice(ex.str.find("}", literal=True) + 2).str.splitn(" ", 2)
        tail_ok = tail.str.contains(_TAIL_OM) & (ex.is_null() | (
            ex_nums.struct.field("field_0").cast(pl.Float64, strict=False).is_not_null()
            & (ex_nums.struct.field("field_1").is_null()
               | ex_nums.struct.field("field_1").cast(pl.Float64, strict=False).is_not_null())))
    else:  # `` value [ts]``: the casts below refuse any other character
        vt = tail.str.slice(1)
        tail_ok = tail.str.starts_with(" ")
    parts = vt.str.splitn(" ", 2)
    rows = rows.select(
        "line", "prefix", "has_leaf",
        # le="0.5" -> ,"le":"0.5" (no quotes inside a fast-path value)
        leaf_json=pl.concat_str(pl.lit(',"le":"'), leaf.str.slice(4)),
        le=leaf.str.slice(4, leaf.str.len_bytes() - 5).cast(pl.Float64, strict=False),
        leaf_ok=leaf.str.contains(_LEAF_RE).fill_null(True),
        value=parts.struct.field("field_0").cast(pl.Float64, strict=False),
        t=parts.struct.field("field_1"),
        ts_unix_s=parts.struct.field("field_1").cast(pl.Float64, strict=False),
        tail_ok=tail_ok)
    ok = (pl.col("value").is_not_null() & (pl.col("t").is_null() | pl.col("ts_unix_s").is_finite())
          & pl.col("tail_ok") & pl.col("leaf_ok")).fill_null(False)
    rows = rows.with_columns(ok=ok)
    prefix = rows.get_column("prefix")
    starts = prefix.ne_missing(prefix.shift(1))
    run = (starts.cum_sum() - 1).cast(pl.UInt32)
    runs = _runs(prefix.filter(starts))
    bad_run = ~runs.get_column("run_ok") | runs.get_column("dup")
    ok = rows.get_column("ok") & ~(bad_run | runs.get_column("stem_has_le")).gather(run)
    if not ok.all():  # a bucket's le must not repeat one in its stem
        ok = rows.get_column("ok") & ~bad_run.gather(run) & ~(
            rows.get_column("has_leaf") & runs.get_column("stem_has_le").gather(run))
    out = rows.select(
        "line",
        name=runs.get_column("name").gather(run),
        labels=pl.concat_str([runs.get_column("stem_json").gather(run), pl.col("leaf_json"),
                              pl.lit("}")], ignore_nulls=True),
        value="value", ts_unix_s="ts_unix_s",
    )
    if not om and out.get_column("ts_unix_s").null_count() < out.height:
        # milliseconds -> seconds with an IEEE division (numpy): polars may turn a
        # division by a literal into a multiplication by its inexact reciprocal
        ms = out.get_column("ts_unix_s").to_numpy()
        out = out.with_columns(ts_unix_s=pl.Series(ms / 1000.0, dtype=pl.Float64, nan_to_null=True))
    # every (name, labels) distinct: no two runs with one name and stem, and no
    # two lines of one run with one leaf (a run without leaves is a single line)
    # (within a run, bucket bounds that strictly increase are distinct: cheaper than hashing)
    within = pl.DataFrame({"run": run, "has_leaf": rows.get_column("has_leaf"),
                           "le": rows.get_column("le"), "leaf": rows.get_column("leaf_json")})
    r, hl, le = pl.col("run"), pl.col("has_leaf"), pl.col("le")
    increasing = within.select(
        ((r != r.shift(1)) | (hl & hl.shift(1) & (le > le.shift(1)))).fill_null(True).all()).item()
    distinct = bool(
        runs.select(pl.struct("name", "stem_json").is_unique().all()).item()
        and (increasing or within.select(pl.struct("run", "leaf").is_unique().all()).item())
    )
    if ok.all():
        return out, [], distinct
    # Rows the bulk checks refused go to the careful parser, which either reads
    # them (e.g. 'Infinity', escaped values) or names the problem precisely.
    # (``distinct`` holds for the rows kept: a repeat among them is one among all rows)
    redo = fast.filter(~ok)
    return out.filter(ok), list(redo.iter_rows()), distinct


def _runs(prefixes: pl.Series) -> pl.DataFrame:
    """Per run's prefix (``name`` or ``name{stem``): the name, the labels' JSON opening
    (``{"a":"1"`` or ``{``), whether it matches the grammar (``run_ok``), whether a
    label name repeats (``dup``), whether the stem has an ``le`` label."""
    p = pl.col("prefix")
    at = p.str.find("{", literal=True)
    runs = pl.DataFrame({"prefix": prefixes}).lazy().select(
        name=pl.when(at.is_null()).then(p).otherwise(p.str.slice(0, at)),
        stem=pl.when(at.is_not_null()).then(p.str.slice(at + 1)).otherwise(pl.lit("")),
    ).with_columns(name_ok=pl.col("name").str.contains(_NAME_ONLY_RE).fill_null(False)).collect()
    # a histogram's _bucket, _sum and _count runs share a stem: grammar, JSON and
    # the repeated-name check once per change of stem
    stems = runs.get_column("stem")
    changes = stems.ne_missing(stems.shift(1))
    group = (changes.cum_sum() - 1).cast(pl.UInt32)
    s = pl.col("stem")
    # a="1",b="2" -> {"a":"1","b":"2" : fast-path values hold no quotes, do not
    # start with ',' nor end with '=', so '="' and '",' occur only at label boundaries
    per_stem = pl.DataFrame({"stem": stems.filter(changes)}).lazy().select(
        stem_json=pl.when(s.str.len_bytes() == 0).then(pl.lit("{")).otherwise(pl.concat_str(
            pl.lit('{"'), s.str.replace_all('="', '":"', literal=True)
            .str.replace_all('",', '","', literal=True))),
        stem_ok=s.str.contains(_STEM_RE).fill_null(False),
        stem_has_le=(s.str.starts_with('le="') | s.str.contains(_LEAF, literal=True)).fill_null(False),
    ).collect()
    keys = per_stem.get_column("stem_json").str.extract_all(_KEYS)
    per_stem = per_stem.with_columns(dup=(keys.list.n_unique() != keys.list.len()).fill_null(False))
    return pl.DataFrame({
        "name": runs.get_column("name"),
        "run_ok": runs.get_column("name_ok") & per_stem.get_column("stem_ok").gather(group),
        "stem_json": per_stem.get_column("stem_json").gather(group),
        "stem_has_le": per_stem.get_column("stem_has_le").gather(group),
        "dup": per_stem.get_column("dup").gather(group),
    })


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
            if not _NAME_RE.fullmatch(name):
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


def _parse_number(token: str, what: str, path: str, line: int) -> float:
    if "_" in token or not token:
        raise InputError(path, line, f"invalid {what} {token!r}")
    try:
        return float(token)
    except ValueError:
        raise InputError(path, line, f"invalid {what} {token!r}") from None


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_labels(text: str, pos: int, path: str, line: int) -> tuple[dict[str, str], int]:
    """Labels starting after ``{``; return (labels, index after ``}``)."""
    labels: dict[str, str] = {}
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == "}":
            return labels, pos + 1
        m = _LNAME_RE.match(text, pos)
        if not m:
            raise InputError(path, line, f"expected a label name at column {pos + 1}")
        key = m.group(0)
        pos = m.end()
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != "=":
            raise InputError(path, line, f"expected '=' after label {key!r}")
        pos += 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != '"':
            raise InputError(path, line, f"label {key!r}: value must be a double-quoted string")
        pos += 1
        buf = []
        while True:
            if pos >= n:
                raise InputError(path, line, f"label {key!r}: unterminated label value")
            ch = text[pos]
            if ch == "\\":
                if pos + 1 >= n:
                    raise InputError(path, line, f"label {key!r}: unterminated escape")
                nxt = text[pos + 1]
                buf.append(_ESCAPES.get(nxt, "\\" + nxt))
                pos += 2
                continue
            if ch == '"':
                pos += 1
                break
            buf.append(ch)
            pos += 1
        if key in labels:
            raise InputError(path, line, f"duplicate label {key!r}")
        labels[key] = "".join(buf)
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == ",":
            pos += 1
            continue
        if pos < n and text[pos] == "}":
            return labels, pos + 1
        raise InputError(path, line, f"expected ',' or '}}' after label {key!r}")


def _parse_line(text: str, line: int, path: str, om: bool) -> tuple:
    """The careful path: one sample line with the full grammar (escapes, blanks)."""
    raw = text.rstrip("\r")
    if not om:
        raw = raw.strip(" \t")
    m = _NAME_RE.match(raw)
    if not m:
        raise InputError(path, line, f"expected a metric name, got {raw[:40]!r}")
    name = m.group(0)
    pos = m.end()
    labels: dict[str, str] = {}
    if pos < len(raw) and raw[pos] == "{":
        labels, pos = _parse_labels(raw, pos + 1, path, line)
    rest = raw[pos:]
    exemplar = None
    if " # " in rest:
        rest, exemplar = rest.split(" # ", 1)
        if not om:
            raise InputError(path, line, "exemplars are only allowed in OpenMetrics text")
    if rest and rest[0] not in " \t":
        raise InputError(path, line, f"expected a blank before the value of {name}")
    tokens = rest.split()
    if not tokens:
        raise InputError(path, line, f"missing value for {name}")
    if len(tokens) > 2:
        raise InputError(path, line, f"unexpected text after the timestamp: {tokens[2][:40]!r}")
    value = _parse_number(tokens[0], "value", path, line)
    ts = None
    if len(tokens) == 2:
        ts = _parse_number(tokens[1], "timestamp", path, line)
        if not math.isfinite(ts):
            raise InputError(path, line, f"invalid timestamp {tokens[1]!r}")
        if not om:
            ts = ts / 1000.0
    if exemplar is not None:
        ex = exemplar.strip()
        if not ex.startswith("{"):
            raise InputError(path, line, "exemplar must start with '{'")
        _, epos = _parse_labels(ex, 1, path, line)
        etoks = ex[epos:].split()
        if not etoks or len(etoks) > 2:
            raise InputError(path, line, "exemplar needs a value and an optional timestamp")
        for tok in etoks:
            _parse_number(tok, "exemplar number", path, line)
    return (line, name, json.dumps(labels, separators=(",", ":"), ensure_ascii=False), value, ts)
