"""PromQL maths (histogram_quantile against Prometheus' own test expectations, rate with resets
and extrapolation) and the telemetry reads: series frames, alignment on a run's grid, notebook 02."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from factories import make_run
from perfkit import store
from perfkit.analyze import promql as P
from perfkit.analyze import telemetry as T
from perfkit.ingest.frames import from_long
from perfkit.ingest.importers import write_telemetry
from perfkit.plots.diagnosis import timeline_figure

INF = math.inf
# promql/promqltest/testdata/histograms.test, evaluated at 50m (counts = 10 x increment)
POSITIVE = {0.1: 50, 0.2: 70, 1.0: 110, INF: 120}
NEGATIVE = {-0.2: 10, -0.1: 20, 0.3: 20, INF: 30}
HIST3_POS = {0.0: 0, 0.1: 50, 0.2: 70, 1.0: 110, INF: 110}
HIST3_NEG = {-0.25: 0, -0.2: 10, -0.1: 20, 0.3: 20, INF: 20}
HIST2 = {0.0: 0, 2.0: 1, 4.0: 2, 6.0: 3, INF: 3}  # at 7m


@pytest.mark.parametrize("q, pos, neg", [
    (0, 0, -0.2), (0.2, 0.048, -0.2), (0.5, 0.15, -0.15), (0.8, 0.72, 0.3), (1, 1, 0.3),
])
def test_histogram_quantile_prometheus_testhistogram(q, pos, neg):
    assert P.histogram_quantile(q, POSITIVE) == pytest.approx(pos)
    assert P.histogram_quantile(q, NEGATIVE) == pytest.approx(neg)


@pytest.mark.parametrize("q, pos, neg", [
    (0, 0, -0.25), (0.25, 0.055, -0.225), (0.5, 0.125, -0.2), (0.75, 0.45, -0.15), (1, 1, -0.1),
])
def test_histogram_quantile_prometheus_testhistogram3(q, pos, neg):
    assert P.histogram_quantile(q, HIST3_POS) == pytest.approx(pos)
    assert P.histogram_quantile(q, HIST3_NEG) == pytest.approx(neg)


def test_histogram_quantile_middle_of_buckets_and_aggregation():
    assert [P.histogram_quantile(q, HIST2) for q in (1 / 6, 0.5, 5 / 6)] == pytest.approx([1, 3, 5])
    # sum(rate(request_duration_seconds_bucket[10m])) by (le): job1/ins1+ins2, job2/ins1+ins2
    summed = {0.1: 1 + 2 + 3 + 4, 0.2: 3 + 5 + 4 + 7, INF: 4 + 6 + 6 + 9}
    assert P.histogram_quantile(0.3, summed) == pytest.approx(0.075)
    assert P.histogram_quantile(0.5, summed) == pytest.approx(0.1277777777777778)


def test_histogram_quantile_special_cases():
    assert P.histogram_quantile(-0.1, POSITIVE) == -INF
    assert P.histogram_quantile(1.01, POSITIVE) == INF
    assert math.isnan(P.histogram_quantile(math.nan, POSITIVE))
    assert math.isnan(P.histogram_quantile(0.5, {0.1: 1, 1.0: 2}))  # highest bound not +Inf
    assert math.isnan(P.histogram_quantile(0.5, {INF: 5}))  # fewer than 2 buckets
    assert math.isnan(P.histogram_quantile(0.5, {0.1: 0, INF: 0}))  # no observations
    assert math.isnan(P.histogram_quantile(0.5, []))
    # equal le merged (mixed_bucket: 0.2 == 2e-1 == 2.0e-1), order of input irrelevant
    mixed = [(INF, 4), (0.2, 1), (0.1, 1), (2e-1, 1), (float("2.0e-1"), 1)]
    assert P.histogram_quantile(0.5, mixed) == pytest.approx(0.15)
    # non-monotonic forced upward: {1: 10, 2: 5 -> 10, inf: 20}
    assert P.histogram_quantile(0.5, {1.0: 10, 2.0: 5, INF: 20}) == pytest.approx(1.0)
    assert P.histogram_quantile(0.75, {1.0: 10, 2.0: 5, INF: 20}) == 2.0  # rank in +Inf bucket
    # float noise (relative <= 1e-12) between buckets is ignored: 2.0's count becomes 10, so
    # a rank just above 10 lands in the +Inf bucket (-> 2.0) instead of mid-bucket (1.5)
    q = (10 + 5e-12) / 20
    assert P.histogram_quantile(q, {1.0: 10, 2.0: 10 + 1e-11, INF: 20}) == 2.0
    assert P.histogram_quantile(q, {1.0: 10, 2.0: 10 + 1e-9, INF: 20}) == pytest.approx(1.005)


def test_quantile_aggregation_type7():
    assert P.quantile(0.5, [1, 2, 3, 4]) == 2.5
    assert P.quantile(0.9, list(range(11))) == pytest.approx(9.0)
    assert math.isnan(P.quantile(0.5, []))


def test_rate_counter_with_reset_and_extrapolation():
    ts = np.arange(0, 121, 15.0)
    values = ts / 15 * 10  # +10 every 15 s, starting at 0
    assert P.rate(ts, values, [60.0, 120.0], 60.0) == pytest.approx([40 / 60, 40 / 60])
    assert P.increase(ts, values, [120.0], 60.0) == pytest.approx([40.0])
    reset = values.copy()
    reset[6:] -= 55  # at t=90 the counter restarts (60 -> 5)
    # window (60,120]: 50@75, 5@90 (reset adds 50), 15@105, 25@120 -> raw increase 25 over 45 s
    raw = (25 - 50) + 50
    expect = raw * (45 + 7.5 + 0) / 45  # first sample 15 s from the edge > 1.1*avg? no: extrapolate
    got = P.increase(ts, reset, [120.0], 60.0)[0]
    assert got == pytest.approx(raw * (45 + 15) / 45)
    assert got != pytest.approx(expect)
    # fewer than two samples in the window: no value
    assert math.isnan(P.rate(ts, values, [7.0], 5.0)[0])


def test_rate_does_not_extrapolate_below_zero():
    ts = np.array([10.0, 20.0, 30.0])
    values = np.array([1.0, 11.0, 21.0])
    # window (0,30]: increase 20 over 20 s; start gap 10 s (< 1.1*10 would extrapolate 10 s,
    # but zero is reached after 2 s) -> 20 * (20 + 1) / 20
    assert P.increase(ts, values, [30.0], 30.0)[0] == pytest.approx(21.0)


def test_histogram_quantile_frame_per_timestamp():
    frame = pd.DataFrame({
        "ts_unix_s": [1, 1, 1, 1, 2, 2, 2, 2],
        "le": ["0.1", "0.2", "1", "+Inf"] * 2,
        "value": [50, 70, 110, 120, 0, 0, 0, 0],
    })
    out = P.histogram_quantile_frame(0.5, frame)
    assert out["value"].iloc[0] == pytest.approx(0.15) and math.isnan(out["value"].iloc[1])
    assert out["observations"].tolist() == [120, 0]


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


@pytest.fixture
def run_db(tmp_db):
    """A run with 10 s of requests, a gauge sampled every 0.5 s and a counter."""
    t0 = 1_732_400_000.0
    con = store.connect(tmp_db)
    make_run(con, "r1", started_at=_utc(t0), ended_at=_utc(t0 + 10), t0_unix_s=t0, duration_s=10)
    intended = t0 + np.arange(0, 10, 0.1)
    lat = np.where(intended - t0 < 5, 10.0, 30.0)
    con.register("req", pd.DataFrame({"run_id": "r1", "seq": np.arange(100),
                                      "intended_unix_s": intended, "latency_ms": lat}))
    con.execute("INSERT INTO requests (run_id, seq, intended_unix_s, latency_ms) "
                "SELECT run_id, seq, intended_unix_s, latency_ms FROM req")
    ts = t0 + np.arange(0, 10, 0.5)
    long = pd.concat([
        pd.DataFrame({"name": "gpu_utilization_percent", "labels": '{"gpu":"0"}', "unit": "percent",
                      "type": "gauge", "ts_unix_s": ts, "value": np.where(ts - t0 < 5, 20.0, 90.0)}),
        pd.DataFrame({"name": "gpu_utilization_percent", "labels": '{"gpu":"1"}', "unit": "percent",
                      "type": "gauge", "ts_unix_s": ts, "value": 40.0}),
        pd.DataFrame({"name": "reqs_total", "labels": "{}", "unit": "count", "type": "counter",
                      "ts_unix_s": ts, "value": (ts - t0) * 10}),
        pd.DataFrame({"name": "gpu_utilization_percent", "labels": '{"gpu":"0"}', "unit": "percent",
                      "type": "gauge", "ts_unix_s": [t0 + 500], "value": 1.0}),  # outside the run
    ])
    import polars as pl

    tel = from_long(pl.from_pandas(long))
    with store.transaction(con):
        write_telemetry(con, tel, kind="prometheus", path="x", sha256="s", run_id=None, label=None)
    yield con
    con.close()


def test_bucket_quantiles_from_the_store(run_db, tmp_db):
    t0 = 1_732_400_000.0
    ts = t0 + np.arange(0, 10, 1.0)
    rows = []
    for le, per_s in (("0.1", 50), ("0.2", 70), ("1", 110), ("+Inf", 120)):  # testhistogram
        for t in ts:
            rows.append(("lat_bucket", json.dumps({"le": le}, separators=(",", ":")), "count",
                         "histogram", t, per_s * (t - t0)))
    import polars as pl

    long = pl.DataFrame(rows, schema=["name", "labels", "unit", "type", "ts_unix_s", "value"],
                        orient="row")
    with store.transaction(run_db):
        write_telemetry(run_db, from_long(long), kind="prometheus", path="h", sha256="h",
                        run_id="r1", label=None)
    raw = T.bucket_quantiles(run_db, "lat", 0.5, run_id="r1")
    assert len(raw) == 10 and math.isnan(raw["value"].iloc[0])  # 0 observations at t0
    assert raw["value"].iloc[1:].to_numpy() == pytest.approx(0.15)
    rated = T.bucket_quantiles(run_db, "lat", 0.8, run_id="r1", rate_window_s=3.0)
    assert rated["value"].to_numpy() == pytest.approx(0.72)  # rates keep the bucket ratios
    obs = rated["observations"].to_numpy()
    assert obs[2:] == pytest.approx(120.0) and obs[0] < 120.0  # windows reaching before t0: less


def test_series_frame_filters(run_db):
    frame = T.series_frame(run_db, "gpu_utilization_percent", labels={"gpu": "0"})
    assert len(frame) == 21 and set(frame["gpu"]) == {"0"}
    in_run = T.series_frame(run_db, "gpu_utilization_percent", run_id="r1")
    assert len(in_run) == 40  # the sample at t0+500 is outside the run's window
    assert str(in_run["time"].dt.tz) == "UTC"
    pl_frame = T.series_frame(run_db, "reqs_total", polars=True)
    assert pl_frame.height == 20


def test_align_to_run(run_db):
    out = T.align_to_run(run_db, "r1", ["gpu_utilization_percent", "reqs_total"], step_s=1.0)
    assert len(out) == 11 and out["t_s"].tolist() == list(map(float, range(11)))
    assert out.loc[0, "requests"] == 10 and out.loc[0, "latency_p99_ms"] == 10.0
    assert out.loc[7, "latency_p50_ms"] == 30.0
    assert out.loc[2, "gpu_utilization_percent"] == pytest.approx(30.0)  # mean of GPU 0 (20) and 1 (40)
    assert out.loc[7, "gpu_utilization_percent"] == pytest.approx(65.0)
    assert out.loc[2, "gpu_utilization_percent_series"] == 2
    rates = out["reqs_total_per_s"].dropna().to_numpy()
    assert rates[1:] == pytest.approx(10.0)  # +5 every 0.5 s
    assert rates[0] < 10.0  # the series starts inside the first window: PromQL extrapolates less


def test_gpu_energy_is_the_counter_delta_with_resets(run_db):
    import polars as pl

    t0 = 1_732_400_000.0
    rows = [("gpu_energy_j", '{"gpu":"0"}', "J", "counter", t0 + i, v)
            for i, v in enumerate([1000.0, 1100.0, 1250.0, 20.0, 70.0])]  # reset after 1250
    rows += [("gpu_energy_j", '{"gpu":"1"}', "J", "counter", t0 + i, 500.0 + 10 * i) for i in range(5)]
    tel = from_long(pl.DataFrame(rows, schema=["name", "labels", "unit", "type", "ts_unix_s", "value"],
                                 orient="row"))
    with store.transaction(run_db):
        write_telemetry(run_db, tel, kind="nvml", path="nvml", sha256=None, run_id="r1", label=None)
    joules, gpus = T.gpu_energy_j(run_db, "r1")
    assert gpus == 2 and joules == pytest.approx((1250 - 1000 + 70) + 40)


def test_timeline_and_headline(run_db):
    frame = T.timeline(run_db, "r1", step_s=1.0)
    figs = T.headline_figures(run_db, frame, "r1")
    assert figs["P99 latency"].endswith("(n=100)")
    assert figs["Mean GPU power"] == "no data" and figs["GPU energy"] == "no data"
    assert figs["Mean GPU utilization"].startswith("47.5 %")
    fig = timeline_figure(frame)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("no data (no GPU / not collected)") >= 3  # power, queue, batch, ...


@pytest.mark.slow
def test_notebook_02_runs_under_papermill(run_db, tmp_db, tmp_path):
    import papermill

    run_db.close()
    out = tmp_path / "02.ipynb"
    nb_path = Path(__file__).resolve().parents[2] / "perfkit" / "notebooks" / "02_telemetry.ipynb"
    papermill.execute_notebook(str(nb_path), str(out), kernel_name="python3",
                               parameters={"db": str(tmp_db), "run_id": "r1", "step_s": 2.0},
                               progress_bar=False)
    nb = json.loads(out.read_text())
    bundles = [o["data"] for c in nb["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", []) if "data" in o]
    heads = [b["application/vnd.perfkit.headline+json"] for b in bundles
             if "application/vnd.perfkit.headline+json" in b]
    assert heads and heads[-1]["run_id"] == "r1"
    assert heads[-1]["figures"]["P99 latency"].endswith("(n=100)")
    assert any("image/png" in b for b in bundles)
