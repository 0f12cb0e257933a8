"""The Prometheus / OpenMetrics parser: equal to prometheus_client on real files, exact errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from perfkit.errors import InputError
from perfkit.ingest import promtext

DATA_ROOT = Path(__file__).resolve().parents[1] / "data"
DATA = DATA_ROOT / "ingest"
TEXT_FILES = [  # under tests/data
    "ingest/shared_node_exporter_e2e-output.txt",
    "ingest/shared_prometheus_alltypes.237mfs.prom.txt",
    "ingest/shared_node_exporter_textfile_histogram.prom",
    "ingest/shared_node_exporter_client_side_timestamp.prom",
    "analyze/dcgm-exporter_T4_A10G_datadog-fixture.txt",  # one copy, shared with analyze's tests
]


def _key(name, labels, value, ts):
    return (name, tuple(sorted(labels.items())), "NaN" if math.isnan(value) else value, ts)


def client_samples(text: str, om: bool) -> list[tuple]:
    out = []
    for fam in (om_families if om else text_families)(text):
        for s in fam.samples:
            ts = s.timestamp
            if ts is not None and not isinstance(ts, (int, float)):
                ts = ts.sec + ts.nsec / 1e9
            out.append(_key(s.name, s.labels, float(s.value), ts))
    return sorted(out)


def perfkit_samples(expo: promtext.Exposition) -> list[tuple]:
    out = []
    for name, labels, value, ts in expo.as_records():
        fam = expo.family_of(name)
        # prometheus_client renames a 0.0.4 counter sample without _total (its internal
        # OpenMetrics form); the exposed name is what Prometheus stores, and what we keep.
        if (not expo.openmetrics and fam is not None and fam.type == "counter"
                and fam.name == name and not name.endswith("_total")):
            name += "_total"
        out.append(_key(name, labels, value, ts))
    return sorted(out)


@pytest.mark.parametrize("name", TEXT_FILES)
def test_equal_to_prometheus_client_sample_for_sample(name):
    text = (DATA_ROOT / name).read_text()
    expo = promtext.parse(text, name)
    assert not expo.openmetrics
    mine, theirs = perfkit_samples(expo), client_samples(text, om=False)
    assert len(mine) == len(theirs) > 0
    assert mine == theirs


def test_sample_counts_match_the_shared_readme():
    assert len(promtext.parse((DATA_ROOT / TEXT_FILES[0]).read_text())) == 3027
    assert len(promtext.parse((DATA_ROOT / TEXT_FILES[1]).read_text())) == 1857
    assert len(promtext.parse((DATA_ROOT / TEXT_FILES[4]).read_text())) == 38


def test_openmetrics_histogram_with_exemplars_equals_client():
    text = (DATA / "shared_prometheus_1histogram.om.txt").read_text()
    expo = promtext.parse(text, "1histogram.om.txt")
    assert expo.openmetrics
    assert perfkit_samples(expo) == client_samples(text, om=True)


def test_openmetrics_alltypes_by_hand():
    # prometheus_client refuses this file (negative histogram _sum); Prometheus' own parser
    # accepts it, and so do we. Expectations read off the file.
    expo = promtext.parse((DATA / "shared_prometheus_alltypes.5mfs.om.txt").read_text(), "5mfs")
    recs = {(n, tuple(sorted(l.items()))): (v, t) for n, l, v, t in expo.as_records()}
    assert len(expo) == 53
    assert recs[("go_build_info", (("checksum", ""), ("path", ""), ("version", "")))] == (1.0, None)
    assert recs[("rpc_durations_histogram_seconds_bucket", (("le", "-0.0002899999999999998"),))][0] == 3
    assert recs[("rpc_durations_histogram_seconds_sum", ())][0] == pytest.approx(-8.452185437166741e-05)
    assert expo.family_of("rpc_durations_histogram_seconds_bucket").type == "histogram"
    assert expo.family_of("promhttp_metric_handler_errors_total").type == "counter"
    assert expo.family_of("rpc_durations_seconds_count").type == "summary"


def test_timestamps_text_ms_openmetrics_seconds():
    text004 = "a 1 1441205977284\nb{x=\"y\"} 2 1441205977285\n"
    recs = promtext.parse(text004).as_records()
    assert recs[0][3] == 1441205977.284 and recs[1][3] == 1441205977.285
    om = "# TYPE a gauge\na 1 1441205977.284\n# EOF\n"
    assert promtext.parse(om).as_records()[0][3] == 1441205977.284


def test_escaped_label_values_take_the_careful_path():
    text = 'm{path="C:\\\\dir\\\\f",q="say \\"hi\\"",nl="a\\nb",u="\u00e9\u6f22"} 1\n'
    (name, labels, value, ts), = promtext.parse(text).as_records()
    assert labels == {"path": "C:\\dir\\f", "q": 'say "hi"', "nl": "a\nb", "u": "\u00e9\u6f22"}
    assert client_samples(text, False) == perfkit_samples(promtext.parse(text))


def test_special_values_and_blanks():
    text = 'a NaN\nb +Inf\nc -Inf\nd{l="v"}   7   \ne\t8\n'
    recs = promtext.parse(text).as_records()
    assert math.isnan(recs[0][2]) and recs[1][2] == math.inf and recs[2][2] == -math.inf
    assert recs[3][2] == 7 and recs[4][2] == 8
    assert perfkit_samples(promtext.parse(text)) == client_samples(text, False)


def test_label_values_that_look_like_syntax():
    text = 'm{a="x=",b="",c="}{ # 1",d="k=\\"v\\""} 1\nn{a="1",} 2\n'
    recs = promtext.parse(text).as_records()
    assert recs[0][1] == {"a": "x=", "b": "", "c": "}{ # 1", "d": 'k="v"'}
    assert recs[1][1] == {"a": "1"}
    for _, labels_json in promtext.parse(text).samples.select("line", "labels").iter_rows():
        json.loads(labels_json)


@pytest.mark.parametrize("text, line, problem", [
    ('ok 1\nbad{a=b} 2\n', 2, "double-quoted"),
    ('ok 1\nbad 1_000\n', 2, "invalid value"),
    ('ok 1\n\nbad{a="1"\n', 3, "expected ','"),
    ('ok 1\nbad{a="1 2\n', 2, "unterminated"),
    ('x 1\ny abc\n', 2, "invalid value"),
    ('x 1 notatime\n', 1, "invalid timestamp"),
    ('x{a="1",a="2"} 1\n', 1, "duplicate label"),
    ('# TYPE x histogram\nx_bucket 1\n', 2, "le"),
    ('# TYPE x gauge\n# TYPE x counter\nx 1\n', 2, "second # TYPE"),
    ('# TYPE x wibble\nx 1\n', 1, "unknown metric type"),
    ('# TYPE x gauge\nx 1\n# EOF\nx 2\n# EOF\n', 4, "after '# EOF'"),
    ('# TYPE x gauge\nx 1\n\nx 2\n# EOF\n', 3, "blank line in OpenMetrics"),
    ('h_bucket{a="1",le="1",le="2"} 1\n', 1, "duplicate label 'le'"),
    ('x 1 # {a="b"} 1\n', 1, "exemplars are only allowed in OpenMetrics"),
    ('9x 1\n', 1, "metric name"),
])
def test_bad_input_names_file_line_and_problem(text, line, problem):
    with pytest.raises(InputError) as err:
        promtext.parse(text, "bad.prom")
    assert err.value.path == "bad.prom" and err.value.line == line
    assert problem in err.value.problem
    assert str(err.value).startswith(f"bad.prom:{line}: ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, distinct", [
    ('a{x="1"} 1 1000\na{x="2"}  2 2000\n', True),             # second line on the careful path
    ('a{x="1"} 1 1000\na{x="1"}  2 2000\n', False),            # ... repeating the first series
    ("a 1 1000\na{} 2 2000\n", False),                         # no labels, written two ways
    ('h{a="1",le="1"} 1 1000\nh{a="1",le="1"} 2 2000\n', False),
    ('h{a="1",le="1"} 1\nh{a="1",le="2"} 2\nh{a="1"} 2\n', True),
    ('h{a="1"} 1 1000\ng 1\nh{a="1"} 2 2000\n', False),        # a series again, later
    ('a{x="\\\\"} 1 1000\na{x="\\\\"} 2 2000\n', False),       # escaped, both careful
])
def test_distinct_series_flag_is_never_wrong(text, distinct):
    """``distinct_series`` lets the importer skip grouping: it must be False whenever a
    (name, labels) repeats (it may be conservatively False otherwise)."""
    expo = promtext.parse(text)
    keys = [(n, json.dumps(lab, sort_keys=True)) for n, lab, _, _ in expo.as_records()]
    assert expo.distinct_series == distinct
    assert len(set(keys)) == len(keys) or not expo.distinct_series


@pytest.mark.parametrize("name", TEXT_FILES)
def test_distinct_series_flag_on_real_files(name):
    expo = promtext.parse((DATA_ROOT / name).read_text(), name)
    keys = {(n, json.dumps(lab, sort_keys=True)) for n, lab, _, _ in expo.as_records()}
    assert expo.distinct_series == (len(keys) == len(expo))
