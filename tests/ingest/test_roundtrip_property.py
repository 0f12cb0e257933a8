"""Property tests: rendered expositions round-trip; mutated ones fail cleanly, all or nothing."""
from __future__ import annotations

import math
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_om

from perfkit import store
from perfkit.errors import InputError
from perfkit.ingest import importers, promtext

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: not n.endswith(("_total", "_created", "_sum", "_count", "_bucket", "_info")))
LABEL_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in ("le", "quantile"))
LABEL_VALUES = st.text(alphabet=string.printable + "\u00e9\u6f22\\\"", max_size=12)
VALUES = st.floats(allow_nan=False, allow_infinity=True, width=64) | st.integers(-10**6, 10**6)


@st.composite
def registries(draw):
    """A registry with a few families of every type, with arbitrary label values."""
    reg = CollectorRegistry(auto_describe=True)
    used: set[str] = set()
    for kind in draw(st.lists(st.sampled_from(["counter", "gauge", "histogram", "summary"]),
                              min_size=1, max_size=4)):
        name = draw(NAMES.filter(lambda n: n not in used))
        used.add(name)
        labelnames = draw(st.lists(LABEL_NAMES, max_size=2, unique=True))
        children = draw(st.lists(st.tuples(*[LABEL_VALUES] * len(labelnames)), min_size=1,
                                 max_size=3, unique=True)) if labelnames else [()]
        if kind == "counter":
            metric = Counter(name, "help", labelnames, registry=reg)
        elif kind == "gauge":
            metric = Gauge(name, "help", labelnames, registry=reg)
        elif kind == "histogram":
            metric = Histogram(name, "help", labelnames, registry=reg, buckets=(0.1, 1.0, 10.0))
        else:
            metric = Summary(name, "help", labelnames, registry=reg)
        for values in children:
            child = metric.labels(*values) if labelnames else metric
            v = draw(VALUES)
            if kind == "counter":
                child.inc(abs(v) if math.isfinite(v) else 1)
            elif kind == "gauge":
                child.set(v)
            else:
                for _ in range(draw(st.integers(0, 3))):
                    child.observe(abs(v) if math.isfinite(v) else 5.0)
    return reg


def _collected(reg, om: bool):
    out = []
    for fam in reg.collect():
        for s in fam.samples:
            name = s.name
            if not om and fam.type == "counter" and name.endswith("_created"):
                pass
            out.append((name, tuple(sorted(s.labels.items())),
                        "nan" if math.isnan(s.value) else float(s.value)))
    return sorted(out)


def _parsed(text: str, om: bool):
    expo = promtext.parse(text, "gen", openmetrics=om)
    return sorted((n, tuple(sorted(l.items())), "nan" if math.isnan(v) else v)
                  for n, l, v, _ in expo.as_records())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_text_exposition_round_trips(reg):
    text = generate_latest(reg).decode()
    assert _parsed(text, om=False) == _collected(reg, om=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_openmetrics_exposition_round_trips(reg):
    text = generate_latest_om(reg).decode()
    assert promtext.is_openmetrics(text)
    assert _parsed(text, om=True) == _collected(reg, om=True)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    with store.connect(tmp_path_factory.mktemp("prop") / "p.duckdb") as connection:
        yield connection


def _counts(con):
    return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                 for t in ("sources", "series", "samples"))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(reg=registries(), data=st.data())
def test_mutated_exposition_is_all_or_nothing(reg, data, con, tmp_path):
    text = generate_latest(reg).decode()
    lines = text.split("\n")
    sample_lines = [i for i, ln in enumerate(lines) if ln and not ln.startswith("#")]
    i = data.draw(st.sampled_from(sample_lines))
    line = lines[i]
    # a draw independent of the line's length: _created lines carry the clock, so
    # their length changes between hypothesis' replays of one example
    pos = data.draw(st.integers(0, 10**6)) % max(1, len(line))
    junk = data.draw(st.sampled_from(['"', "{", "}", ",", "=", " ", "x", "\\", "#", "", "1e", "_"]))
    mutated = line[:pos] + junk + line[pos + 1:]
    lines[i] = mutated
    path = tmp_path / "mutated.prom"
    path.write_bytes("\n".join(lines).encode())
    before = _counts(con)
    try:
        result = importers.ingest_file(con, "prometheus", path, quiet=True)
    except InputError as exc:
        assert exc.path == str(path) and exc.line is not None and 1 <= exc.line <= len(lines)
        assert str(exc).startswith(f"{path}:{exc.line}: ") and "\n" not in exc.problem
        assert _counts(con) == before  # nothing written
    else:
        after = _counts(con)
        if result.skipped:
            assert after == before
        else:
            expected = len(promtext.parse(path.read_bytes().decode()))
            assert after[2] - before[2] == result.samples == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries(), st.booleans(), st.integers(0, 3))
def test_distinct_series_flag_matches_the_samples(reg, om, repeats):
    """The parser's ``distinct_series`` (which lets the importer skip grouping) is never
    True when a (name, labels) repeats: on a registry's exposition, and on the same
    exposition with some of its sample lines repeated under a later timestamp. (It may
    say False without a repeat: lines the fast path refuses make it conservative.)"""
    text = (generate_latest_om(reg) if om else generate_latest(reg)).decode()
    lines = text.rstrip("\n").split("\n")
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    # prometheus_client writes no timestamps: a repeated line carries one
    extra = [f"{ln} {1700000000 + k}" for k, ln in enumerate(body[:repeats])]
    if om:
        lines = [ln for ln in lines if ln != "# EOF"] + extra + ["# EOF"]
    else:
        lines = lines + extra
    expo = promtext.parse("\n".join(lines) + "\n", "gen", openmetrics=om)
    keys = [(n, tuple(sorted(lab.items()))) for n, lab, _, _ in expo.as_records()]
    if expo.distinct_series:
        assert len(set(keys)) == len(keys)
    if extra:
        assert not expo.distinct_series and len(set(keys)) < len(keys)
