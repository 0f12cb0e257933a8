"""Prometheus text exposition (0.0.4) and OpenMetrics 1.0 parser, built for speed.

The whole text is split into lines once and handed to polars (Rust): a strict
regex recognises the common sample line (`name{k="v",...} value [ts]
[# exemplar]`, pure ASCII, no escapes, single spaces); literal finds and slices
split it, two literal replacements turn its label block into
a JSON object string, values and timestamps are cast in bulk. Lines the fast
regex does not take (escaped or non-ASCII label values, tabs, extra blanks...)
go through a careful per-line parser that implements the grammar, or fail with
``path:line: problem``. Comment lines (`# TYPE`, `# HELP`, `# UNIT`, `# EOF`)
are few and read in Python.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

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
_FAST_TEXT = rf"^{_NAME}(?:\{{{_PAIRS}\}})? {_NUM}(?: {_NUM})?$"
_FAST_OM = (
    rf"^{_NAME}(?:\{{{_PAIRS}\}})? {_NUM}(?: {_NUM})?"
    rf"(?: # \{{{_PAIRS}\}} {_NUM}(?: {_NUM})?)?$"
)

_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perfkit-promtext")
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


def is_openmetrics(text: str) -> bool:
    """Guess the format of a file that did not say.

    OpenMetrics requires a final ``# EOF``; but 0.0.4 parsers ignore that line as
    a comment and some 0.0.4 files carry it (Prometheus' own test data), so a
    file whose counters are typed under their ``_total`` name (0.0.4 style; in
    OpenMetrics the family name drops ``_total``) is read as 0.0.4.
    """
    tail = text[-64:].rstrip()
    if not (tail.endswith("\n# EOF") or tail == "# EOF"):
        return False
    return _COUNTER_TOTAL_TYPE.search(text) is None


def parse(text: str, path: str = "<text>", openmetrics: bool | None = None) -> Exposition:
    """Parse one exposition; raise :class:`InputError` (path:line) on the first bad line."""
    om = is_openmetrics(text) if openmetrics is None else openmetrics
    lines = pl.Series("text", text.split("\n"), dtype=pl.String)
    frame = pl.DataFrame([lines]).with_row_index("line", offset=1)
    col = frame.get_column("text")
    # str.find gives byte offsets and str.slice takes character offsets: the fast
    # path takes pure-ASCII lines only (others go to the careful parser).
    fast_mask = col.str.contains(_FAST_OM if om else _FAST_TEXT) & (col.str.len_bytes() == col.str.len_chars())
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

    good, redo = _fast_columns(fast, om)
    careful_rows = sorted(careful_rows + redo)  # so the first bad line is the one reported
    if careful_rows:
        rows = [_parse_line(text_, line, path, om) for line, text_ in careful_rows]
        careful = pl.DataFrame(rows, schema=good.schema, orient="row")
        # fast-path rows first, then the careful ones (each in file order): sorting
        # 10^5 rows back into file order would cost more than the whole parse
        good = pl.concat([good, careful])
    _check_types(good, families, path, om)
    return Exposition(samples=good, families=families, openmetrics=om)


def _fast_columns(fast: pl.DataFrame, om: bool) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """Split fast-path lines (already validated by the fast regex) with literal string ops.

    One ``select`` holds every expression, so polars shares the common ones and
    runs the independent ones on separate cores.
    """
    text = pl.col("text")
    brace = text.str.find("{", literal=True)
    space = text.str.find(" ", literal=True)
    close = text.str.find("}", literal=True)
    has_labels = brace.is_not_null() & (brace < space)
    name_end = pl.when(has_labels).then(brace).otherwise(space)
    rest_start = pl.when(has_labels).then(close + 2).otherwise(space + 1)
    inner = text.str.slice(brace + 1, close - brace - 1)
    # a="1",b="2" -> {"a":"1","b":"2"}: fast-path values hold no quotes, do not start
    # with ',' nor end with '=', so '="' and '",' occur only at label boundaries
    labels = (
        pl.when(has_labels & (close > brace + 1))
        .then(pl.concat_str(
            pl.lit('{"'),
            inner.str.replace_all('="', '":"', literal=True).str.replace_all('",', '","', literal=True),
            pl.lit("}"),
        ))
        .otherwise(pl.lit("{}"))
    )
    rest = text.str.slice(rest_start)
    if om:  # value [ts] [# {labels} value [ts]]
        ex_at = rest.str.find(" # ", literal=True)
        vt = rest.str.slice(0, ex_at.fill_null(rest.str.len_bytes()))
        ex = rest.str.slice(ex_at + 3)
        ex_nums = ex.str.slice(ex.str.find("}", literal=True) + 2).str.splitn(" ", 2)
        ex_ok = ex.is_null() | (
            ex_nums.struct.field("field_0").cast(pl.Float64, strict=False).is_not_null()
            & (ex_nums.struct.field("field_1").is_null()
               | ex_nums.struct.field("field_1").cast(pl.Float64, strict=False).is_not_null()))
    else:  # the 0.0.4 fast regex admits no exemplar
        vt = rest
        ex_ok = pl.lit(True)
    parts = vt.str.splitn(" ", 2)
    v, t = parts.struct.field("field_0"), parts.struct.field("field_1")
    value = v.cast(pl.Float64, strict=False)
    ts = t.cast(pl.Float64, strict=False)
    ok = (value.is_not_null() & (t.is_null() | ts.is_finite()) & ex_ok).fill_null(False)
    out = fast.lazy().select("line", name=text.str.slice(0, name_end), labels=labels,
                             value=value, ts_unix_s=ts, ok=ok).collect()
    # the duplicate-label check needs only the labels: run it on another core while
    # this thread finishes the timestamps (polars releases the GIL)
    dup_future = _POOL.submit(_duplicate_label_names, out.get_column("labels"))
    if not om and out.get_column("ts_unix_s").null_count() < out.height:
        # milliseconds -> seconds with an IEEE division (numpy): polars may turn a
        # division by a literal into a multiplication by its inexact reciprocal
        ms = out.get_column("ts_unix_s").to_numpy()
        out = out.with_columns(ts_unix_s=pl.Series(ms / 1000.0, dtype=pl.Float64, nan_to_null=True))
    dup = dup_future.result()
    if dup is not None:
        out = out.with_columns(ok=pl.col("ok") & ~dup)
    cols = ["line", "name", "labels", "value", "ts_unix_s"]
    bad_lines = out.filter(~pl.col("ok")).get_column("line")
    if bad_lines.len() == 0:
        return out.select(cols), []
    # Rows whose numbers the bulk cast refused go to the careful parser, which
    # either reads them (e.g. 'Infinity') or names the problem precisely.
    redo = fast.filter(pl.col("line").is_in(bad_lines.implode()))
    return out.filter(pl.col("ok")).select(cols), list(redo.iter_rows())


_KEYS = r'"([a-zA-Z_][a-zA-Z0-9_]*)":"'


def _duplicate_label_names(labels: pl.Series) -> pl.Series | None:
    """Where a fast-path label set names a label twice (those rows go to the careful parser).

    Checked on the distinct label sets with a trailing ``le`` label cut off (a
    histogram's buckets share one), so the regex runs on a small fraction of rows.
    None when no row has a duplicate (the common case: no per-row mask built).
    """
    cut = labels.str.find(',"le":"', literal=True)
    stem = labels.str.slice(0, cut.fill_null(labels.str.len_bytes()))
    # a histogram's buckets are consecutive lines with one stem: compare neighbours
    # first (a memcmp) so only the changes are hashed and searched
    uniq = stem.filter(stem.ne_missing(stem.shift(1))).unique()
    keys = uniq.str.extract_all(_KEYS)
    dup_stems = uniq.filter(keys.list.n_unique() != keys.list.len())
    le_stems = uniq.filter(uniq.str.contains('"le":"', literal=True))
    le_twice = cut.is_not_null() & (labels.str.count_matches('"le":"', literal=True) > 1)
    if dup_stems.len() == 0 and le_stems.len() == 0 and not le_twice.any():
        return None
    out = stem.is_in(dup_stems.implode()) | (cut.is_not_null() & stem.is_in(le_stems.implode()))
    return (out | le_twice).fill_null(False)


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
