"""The fast path of the Prometheus text / OpenMetrics parser: sample lines read in bulk.

The common sample line (``name{k="v",...} value [ts] [# exemplar]``, pure ASCII,
no escapes, single spaces) is cut by literal finds into a prefix
(``name{labels``), a histogram bucket's ``le`` pair and the numbers, all as
polars expressions over the whole column of lines; a run of lines sharing a
prefix (a histogram's buckets) has its prefix checked against the grammar and
turned into JSON once. A line failing any check is handed back for
:mod:`perfkit.ingest.promtext_careful`.
"""
from __future__ import annotations

import polars as pl

from perfkit.ingest.promtext_careful import LNAME, NAME

# Fast-path label values: no escapes, quotes, braces or control characters, not
# starting with ',' and not ending in '=' -- so '="' and '",' occur only at label
# boundaries and the label block becomes JSON by two literal replacements.
_LVAL = r'"(?:[^"\\\x00-\x1f{},=]|[^"\\\x00-\x1f{},][^"\\\x00-\x1f{}]*[^"\\\x00-\x1f{}=])?"'
_PAIR = LNAME + "=" + _LVAL
_PAIRS = rf"(?:{_PAIR}(?:,{_PAIR})*)?"
_NUM = r"[^ #\t{}_]+"
# The pieces a fast-path line is cut into (see fast_columns): with the float
# casts they make `^NAME(\{PAIRS\})? NUM( NUM)?$` (OpenMetrics: plus an exemplar).
_NAME_ONLY_RE = rf"^{NAME}$"
_STEM_RE = rf"^{_PAIRS}$"  # prefix = NAME or NAME{STEM
_LEAF_RE = rf"^le={_LVAL}$"
_TAIL_OM = rf"^ {_NUM}(?: {_NUM})?(?: # \{{{_PAIRS}\}} {_NUM}(?: {_NUM})?)?$"

_KEYS = r'"([a-zA-Z_][a-zA-Z0-9_]*)":"'
_LEAF = ',le="'  # the label that tells a histogram's bucket lines apart (written last)


def fast_columns(fast: pl.DataFrame, om: bool) -> tuple[pl.DataFrame, list[tuple[int, str]], bool]:
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
    line_ok = (pl.col("value").is_not_null() & (pl.col("t").is_null() | pl.col("ts_unix_s").is_finite())
          & pl.col("tail_ok") & pl.col("leaf_ok")).fill_null(False)
    rows = rows.with_columns(ok=line_ok)
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




def still_distinct(fast: pl.DataFrame, careful: pl.DataFrame) -> bool:
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

