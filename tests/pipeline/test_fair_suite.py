"""A fair suite on a small machine: the demo server and the load generator on different CPUs, what a case
needs installed where that can be done, and the index saying what was skipped, why, and how to enable it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from perfkit.pipeline import bench, capabilities, run
from perfkit.pipeline.placement import Placement, plan
from perfkit.pipeline.run import CaseResult
from perfkit.pipeline.suite import Case, Suite
from perfkit.report.index import SUITE_NOTES_FILE, ReportRecord, suite_html
from perfkit.report.render import write_index
from perfkit.subprocesses import pin_process

TWO_CPUS = pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                              reason="pinning apart needs 2 CPUs")


def test_the_cpus_are_split_between_server_and_generator():
    p = plan({0, 1})
    assert (p.server, p.generator, p.note) == ({0}, {1}, "demo server on CPU 0, load generator on CPU 1")
    four = plan([3, 1, 2, 0])
    assert (four.server, four.generator) == ({0, 1}, {2, 3}) and four.pinned
    assert four.note == "demo server on CPUs 0, 1, load generator on CPUs 2, 3"


def test_one_cpu_says_it_could_not_pin():
    p = plan({5})
    assert not p.pinned and p.server is None and p.generator is None
    assert p.note == "not pinned: only CPU 5 is available, so the demo server and the load generator share it"
    assert plan(None).note.startswith("not pinned: this platform has no os.sched_setaffinity")


@TWO_CPUS
def test_pin_process_moves_every_thread_of_a_running_process():
    cpu = min(os.sched_getaffinity(0))
    code = "import threading, time; [threading.Thread(target=time.sleep, args=(5,)).start() for _ in range(3)]; " \
           "time.sleep(5)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.5)
        pin_process(proc.pid, {cpu})
        tids = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task")]
        assert len(tids) >= 2 and all(os.sched_getaffinity(t) == {cpu} for t in tids)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
@TWO_CPUS
def test_the_suite_pins_server_and_generator_to_different_cores(tmp_path, monkeypatch):
    """The started processes' own affinity: the load generator reads its own and the server's (by pid)."""
    seen = tmp_path / "affinity.json"

    def generator(target, options, summary_json, *, label="", db=None, target_pid=None, command="bench"):
        code = ("import json, os, time; time.sleep(0.3); "
                f"json.dump({{'generator': sorted(os.sched_getaffinity(0)), "
                f"'server': sorted(os.sched_getaffinity({target_pid}))}}, open({str(seen)!r}, 'w'))")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(bench, "bench_command", generator)
    placement = plan(os.sched_getaffinity(0))
    results = run.run_cases([Case("tiny", {"duration": 1})], None, "T", tmp_path / "suite.log", progress=False,
                            say=lambda line: None, placement=placement)
    assert results[0].failed                       # the stand-in generator writes no summary
    got = json.loads(seen.read_text())
    assert set(got["server"]) == placement.server and set(got["generator"]) == placement.generator
    assert not set(got["server"]) & set(got["generator"])


def summary(kept_up: bool) -> dict:
    return {"validity": {"generator_kept_up": kept_up},
            "schedule_lag_ms": {"p99": 20.24 if not kept_up else 0.4, "late_fraction": 0.03 if not kept_up else 0.0}}


def test_a_skipped_case_is_in_the_index_with_its_reason_and_command(monkeypatch, tmp_path):
    monkeypatch.setattr(capabilities, "capability_missing",
                        lambda req: "nginx not found: install it" if req == "nginx" else None)
    monkeypatch.setattr(capabilities, "_as_root", lambda: False)
    proxy = Case("proxy", {"rate": 1}, requires=("nginx",), repeats=3)
    steady = Case("steady", {"rate": 1})
    results = [CaseResult(steady, run_id="r1", summary=summary(False)),  # type: ignore[arg-type]
               CaseResult(proxy, skipped="nginx not found: install it")]
    notes = run.suite_notes(Suite("default", (steady, proxy)), "20261202T030000Z",
                            Placement(frozenset({0}), frozenset({1}), "demo server on CPU 0, load generator on CPU 1"),
                            results,
                            skipped_reports=[{"report": "04_ab_compare-proxy", "why": "case proxy has no run"}])
    assert notes["skipped"] == [{"case": "proxy", "why": "nginx not found: install it",
                                 "enable": "sudo apt-get install -y nginx"}]
    assert notes["behind"] == [{"case": "steady", "run_id": "r1", "lag_p99_ms": 20.24, "late_fraction": 0.03}]
    (tmp_path / SUITE_NOTES_FILE).write_text(json.dumps(notes))
    page = write_index(tmp_path, latest=[ReportRecord("01", "nb", "01.html", "2026-12-02T03:00:00+00:00")]).read_text()
    assert ("<tr><td>proxy</td><td>nginx not found: install it</td>"
            "<td><code>sudo apt-get install -y nginx</code></td></tr>") in page
    assert "<td>04_ab_compare-proxy</td><td>case proxy has no run</td><td>&mdash;</td>" in page
    assert "CPU placement: demo server on CPU 0, load generator on CPU 1." in page
    assert "The load generator fell behind in 1 of 1 runs</span>: steady (schedule lag P99 20.2 ms)" in page


def test_a_suite_where_the_generator_kept_up_says_so():
    html = suite_html({"suite": "default", "stamp": "T", "placement": "p", "runs": 14, "behind": []})
    assert "The load generator kept up in all 14 runs." in html
    assert suite_html(None) == ""


def test_install_missing_uses_apt_get_only_with_the_rights_to(monkeypatch, tmp_path):
    monkeypatch.setattr(capabilities, "capability_missing", lambda req: "nginx not found" if req == "nginx" else None)
    log = tmp_path / "suite.log"
    assert capabilities.install_missing(["bench:pattern:step"], log) == []          # nothing a package provides
    monkeypatch.setattr(capabilities, "install_prefix", lambda: None)
    assert capabilities.install_missing(["nginx", "nginx"], log) == [
        "could not install nginx: apt-get needs root or passwordless sudo"]
    calls: list[list[str]] = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(capabilities, "install_prefix", lambda: ["sudo", "-n"])
    monkeypatch.setattr(capabilities.subprocess, "run", fake_run)
    assert capabilities.install_missing(["nginx"], log) == ["installed nginx with apt-get"]
    assert calls == [["sudo", "-n", "apt-get", "update", "-q"],
                     ["sudo", "-n", "apt-get", "install", "-y", "-q", "--no-install-recommends", "nginx"]]
