"""Produces the MLPerf LoadGen logs in this directory with the real mlcommons-loadgen.

A trivial system under test answers each query after a short sleep on a worker
thread. Run from the repository root:
    .venv/bin/python tests/data/ingest/mlperf/record_loadgen.py
"""
import os
import sys
import threading
import time
import queue

import mlperf_loadgen as lg

HERE = os.path.dirname(os.path.abspath(__file__))


def run(scenario: str) -> None:
    out = os.path.join(HERE, scenario.lower())
    os.makedirs(out, exist_ok=True)
    work: "queue.Queue" = queue.Queue()

    def worker():
        while True:
            item = work.get()
            if item is None:
                return
            time.sleep(0.002)
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in item])

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    sut = lg.ConstructSUT(lambda samples: work.put(samples), lambda: None)
    qsl = lg.ConstructQSL(256, 256, lambda idx: None, lambda idx: None)
    settings = lg.TestSettings()
    settings.mode = lg.TestMode.PerformanceOnly
    if scenario == "Server":
        settings.scenario = lg.TestScenario.Server
        settings.server_target_qps = 200
        settings.server_target_latency_ns = 50_000_000
    else:
        settings.scenario = lg.TestScenario.Offline
        settings.offline_expected_qps = 2000
    settings.min_duration_ms = 2000
    settings.min_query_count = 300
    log = lg.LogSettings()
    log.log_output.outdir = out
    log.log_output.copy_summary_to_stdout = False
    lg.StartTestWithLogSettings(sut, qsl, settings, log)
    for _ in threads:
        work.put(None)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)


if __name__ == "__main__":
    for sc in sys.argv[1:] or ["Server", "Offline"]:
        run(sc)
