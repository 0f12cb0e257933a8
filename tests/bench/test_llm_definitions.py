"""Each LLM metric's stated convention, checked against hand-computed values on a recorded stream.

Four streamed requests with known token times go through the real recorder (worker batch ->
``requests`` and ``token_gaps`` rows), the store and the summary. The five TPOT/ITL forms
differ on this run, so a series computed under the wrong convention shows.

    request  intended  sent   token arrivals (ms)                  done   tokens  outcome
    0           0        10   110, 120, 140, 170                    170     4     ok
    1        1000      1000   1050, 1090                           1090     2     ok
    2        2000      2001   2020, 2025, 2030, 2035, 2040, 2120   2125     6     ok
    3        3000      3000   3010, 4010                           4010     2     truncated stream
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from factories import make_run

from perfkit import store
from perfkit.bench.client import ERRORS
from perfkit.bench.config import parse_slo
from perfkit.bench.engine import COLUMNS
from perfkit.bench.queries import load_columns
from perfkit.bench.recorder import gaps_table, to_table
from perfkit.bench.summary import DEFINITIONS, summarize, summary_from_frame
from perfkit.errors import UsageError
from perfkit.jsonsafe import json_safe
from perfkit.report import benchmark
from perfkit.store import runs, write

T0_MONO_NS = 5_000_000_000
T0_UNIX_S = 1_800_000_000.0
MS = 1_000_000  # ns
# (intended, sent, token arrivals, done) in ms from t0, and the error kind (None: ok)
STREAMS = [
    (0, 10, [110, 120, 140, 170], 170, None),
    (1000, 1000, [1050, 1090], 1090, None),
    (2000, 2001, [2020, 2025, 2030, 2035, 2040, 2120], 2125, None),
    (3000, 3000, [3010, 4010], 4010, "truncated_stream"),
]


def recorded_run(con, run_id: str = "llm", slo: dict[str, float] | None = None) -> str:
    """Store STREAMS as ``perfkit bench`` would: one worker batch through the recorder."""
    rows, gaps = [], []
    for seq, (intended, sent, tokens, done, err) in enumerate(STREAMS):
        row = dict.fromkeys(COLUMNS, 0)
        row.update(seq=seq, intended_ns=T0_MONO_NS + intended * MS, sent_ns=T0_MONO_NS + sent * MS,
                   first_ns=T0_MONO_NS + tokens[0] * MS, done_ns=T0_MONO_NS + done * MS,
                   status=200, err=ERRORS.index(err), prompt_tokens=7, output_tokens=len(tokens),
                   itl_max_ns=max(np.diff(tokens)) * MS, connect_ns=-1, bytes_out=100, bytes_in=500,
                   stream_tokens=len(tokens))
        rows.append([row[c] for c in COLUMNS])
        gaps += [(seq, g * MS) for g in np.diff(tokens)]
    batch = np.array(rows, dtype=np.int64)
    write.insert_requests(con, run_id, to_table(batch, 0, T0_MONO_NS, T0_UNIX_S, ["fixed"], np.array([100]),
                                                llm=True))
    write.insert_token_gaps(con, run_id, gaps_table(np.array(gaps, dtype=np.int64)))
    run = {"run_id": run_id, "status": "completed", "protocol": "openai", "t0_unix_s": T0_UNIX_S,
           "tool": "perfkit", "scenario": {"workers": 1, "scheduled": len(STREAMS), "slo": slo or {}}}
    make_run(con, **run, summary=json_safe(summary_from_frame(load_columns(con, run_id), run)))
    return run_id


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "r.duckdb"
    with store.connect(path) as c:
        recorded_run(c)
    return path


@pytest.fixture()
def con(db):
    c = store.connect(db)
    yield c
    c.close()


def test_each_definition_matches_the_hand_computation(con):
    s = summarize(con, "llm")
    assert s["ok"] == 3 and s["errors"] == {"truncated_stream": 1}  # request 3 is in none of the figures
    # TTFT, from the intended send: 110 - 0, 1050 - 1000, 2020 - 2000
    assert s["ttft_intended_ms"]["mean"] == pytest.approx((110 + 50 + 20) / 3)
    assert s["ttft_intended_ms"]["max"] == pytest.approx(110)
    # TTFT from the actual send: 110 - 10, 1050 - 1000, 2020 - 2001
    assert s["ttft_ms"]["mean"] == pytest.approx((100 + 50 + 19) / 3)

    # TPOT excluding TTFT, (done - first token) / (tokens - 1):
    #   (170 - 110) / 3 = 20, (1090 - 1050) / 1 = 40, (2125 - 2020) / 5 = 21
    tpot = s["tpot_ms"]
    assert (tpot["n"], tpot["mean"], tpot["p50"], tpot["max"]) == (3, pytest.approx(27.0), pytest.approx(21.0),
                                                                    pytest.approx(40.0))
    # TPOT including TTFT, (done - intended send) / tokens:
    #   170 / 4 = 42.5, 90 / 2 = 45, 125 / 6 = 20.833...
    incl = s["tpot_incl_ttft_ms"]
    assert incl["n"] == 3 and incl["mean"] == pytest.approx((42.5 + 45 + 125 / 6) / 3)
    assert incl["p50"] == pytest.approx(42.5) and incl["max"] == pytest.approx(45.0)

    # ITL pooled: the 9 gaps 10, 20, 30 | 40 | 5, 5, 5, 5, 80 (request 3's 1000 ms gap is not counted)
    #   sorted 5 5 5 5 10 20 30 40 80: mean 200 / 9, P50 = 5th value = 10, P90 = 9th (ceil 8.1) = 80
    pooled = s["itl_ms"]
    assert (pooled["n"], pooled["p50"], pooled["p90"], pooled["max"]) == (9, 10.0, 80.0, 80.0)
    assert pooled["mean"] == pytest.approx(200 / 9)
    # ITL per-request mean: 60 / 3 = 20, 40 / 1 = 40, 100 / 5 = 20; mean 80 / 3, P50 = 2nd of 20 20 40 = 20
    per_req = s["itl_request_mean_ms"]
    assert (per_req["n"], per_req["p50"], per_req["max"]) == (3, pytest.approx(20.0), pytest.approx(40.0))
    assert per_req["mean"] == pytest.approx(80 / 3)
    # ITL per-request largest gap: 30, 40, 80; mean 50, P50 = 40
    largest = s["itl_max_ms"]
    assert (largest["n"], largest["mean"], largest["p50"], largest["max"]) == (3, 50.0, 40.0, 80.0)

    # the pooled and per-request means differ on this run (22.2 against 26.7 ms): two conventions, two fields
    assert pooled["mean"] != pytest.approx(per_req["mean"])
    # each form carries its formula, in the definitions and (new fields, ITL) next to its figures
    formulas = {"tpot_ms": "(response complete - first token) / (output tokens - 1)",
                "tpot_incl_ttft_ms": "(response complete - intended send) / output tokens",
                "itl_ms": "every gap between consecutive tokens of every successful request",
                "itl_request_mean_ms": "mean of each request's gaps", "itl_max_ms": "each request's largest gap"}
    for key, formula in formulas.items():
        assert formula in s["definitions"][key]
    for key in ("tpot_incl_ttft_ms", "itl_ms", "itl_request_mean_ms", "itl_max_ms"):
        assert s[key]["definition"] == DEFINITIONS[key]


def test_the_report_reader_gives_the_same_per_request_series(con):
    """The store's SQL for the per-request forms (01 report, root cause) matches the summary."""
    for metric, expected in (("tpot_incl_ttft_ms", [20.8333, 42.5, 45.0]), ("itl_request_mean_ms", [20, 20, 40])):
        assert np.sort(runs.values(con, "llm", metric)) == pytest.approx(expected, abs=1e-3)
        assert runs.percentiles(con, "llm", metric, qs=(0.5,))[0.5].value == pytest.approx(expected[1])


def test_the_01_report_shows_every_form_with_its_formula(db):
    table = benchmark.token_table(benchmark.load_run(str(db), "llm"))
    p50 = table.xs("P50", level="percentile")
    names = dict(benchmark.TOKEN_METRICS)
    assert p50.loc[names["tpot_ms"], "latency_ms"] == pytest.approx(21.0)
    assert p50.loc[names["tpot_incl_ttft_ms"], "latency_ms"] == pytest.approx(42.5)
    assert p50.loc[names["itl_request_mean_ms"], "latency_ms"] == pytest.approx(20.0)
    assert p50.loc[names["itl_ms_max"], "latency_ms"] == pytest.approx(40.0)
    pooled = p50.loc[benchmark.POOLED_ITL]
    assert (pooled["latency_ms"], pooled["n"]) == (10.0, 9) and np.isnan(pooled["ci_low_ms"])
    assert "(done − first token) / (tokens − 1)" in names["tpot_ms"]
    assert "(done − intended send) / tokens" in names["tpot_incl_ttft_ms"]


# key, bound: the requests within it on the series the key names, and (in the comment) what a
# series of another convention would have let through
SLO_CASES = [
    ("latency_ms", 100, 1),           # 170, 90, 125: request 1
    ("ttft_ms", 105, 2),              # from the intended send 110, 50, 20 (from the actual send: 3 within)
    ("tpot_ms", 30, 2),               # excl. TTFT 20, 40, 21 (incl. TTFT: 1 within)
    ("tpot_incl_ttft_ms", 30, 1),     # 42.5, 45, 20.8
    ("itl_max_ms", 35, 1),            # largest gaps 30, 40, 80 (mean gaps: 2 within)
    ("itl_request_mean_ms", 35, 2),   # mean gaps 20, 40, 20
]


@pytest.mark.parametrize("key,bound,good", SLO_CASES)
def test_goodput_bounds_the_series_its_key_names(con, key, bound, good):
    run = runs.get_run(con, "llm")
    s = summary_from_frame(load_columns(con, "llm"), {**run, "scenario": {"slo": {key: bound}}})
    assert (s["goodput"]["good"], s["goodput"]["n"]) == (good, 4)
    assert runs.goodput(con, "llm", {key: bound})["good_requests"] == good  # the root-cause reader agrees


def test_every_slo_key_is_named_and_itl_ms_is_refused(tmp_path):
    assert parse_slo(",".join(f"{k}={b}" for k, b, _ in SLO_CASES)) == {k: float(b) for k, b, _ in SLO_CASES}
    with pytest.raises(UsageError, match="ambiguous") as err:
        parse_slo("itl_ms=50")
    assert "itl_max_ms" in str(err.value) and "itl_request_mean_ms" in str(err.value)
    db = tmp_path / "r.duckdb"
    res = subprocess.run([sys.executable, "-m", "perfkit", "bench", "--db", str(db), "--no-collect", "--quiet",
                          "--target", "http://127.0.0.1:1", "--protocol", "openai", "--rate", "5", "--duration", "1",
                          "--slo", "itl_ms=50"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and not db.exists()
    line, = res.stderr.strip().splitlines()
    assert "itl_ms" in line and "itl_max_ms" in line and "itl_request_mean_ms" in line


def test_runs_stored_with_the_old_itl_key_still_read_as_the_largest_gap(con):
    """Runs stored before the keys were named kept ``itl_ms`` for the largest gap."""
    run = runs.get_run(con, "llm")
    s = summary_from_frame(load_columns(con, "llm"), {**run, "scenario": {"slo": {"itl_ms": 35}}})
    assert s["goodput"]["good"] == 1 == runs.goodput(con, "llm", {"itl_ms": 35})["good_requests"]


def test_root_cause_verdicts_read_the_series_each_key_names(tmp_path):
    from perfkit.analyze import rootcause

    with store.connect(tmp_path / "s.duckdb") as c:
        recorded_run(c, "slo", slo={"ttft_ms": 105, "itl_max_ms": 35, "itl_request_mean_ms": 35})
        out = rootcause.analyze_run(c, "slo")
    assert out["goodput"]["good_requests"] == 0  # request 0's TTFT 110, request 1's gaps 40, request 2's 80
    # P99 of 3 values is the largest: TTFT from the intended send 110 (from the actual send it would be 100)
    assert out["slo_ttft_ms_p99"]["p99"]["value"] == pytest.approx(110.0)
    assert out["slo_itl_max_ms_p99"]["p99"]["value"] == pytest.approx(80.0)           # largest gaps 30, 40, 80
    assert out["slo_itl_request_mean_ms_p99"]["p99"]["value"] == pytest.approx(40.0)  # mean gaps 20, 40, 20


def test_console_names_each_form(con):
    import io

    from perfkit.bench.cli import print_summary

    out = io.StringIO()
    print_summary(json_safe(summarize(con, "llm")), out)
    text = out.getvalue()
    assert "(done - first token)/(tokens - 1): tpot_ms p50 21.00 ms" in text
    assert "(done - intended send)/tokens:     tpot_incl_ttft_ms p50 42.50 ms" in text
    assert "ITL pooled over every gap: itl_ms p50 10.00 ms" in text
    assert "mean gap: itl_request_mean_ms p50 20.00 ms" in text and "largest gap: itl_max_ms p50 40.00 ms" in text
