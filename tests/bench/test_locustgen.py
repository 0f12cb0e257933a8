"""The generated locustfile: its shape follows the stages, and Locust really runs it."""
from __future__ import annotations

import ast
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perfkit.bench import locustgen
from perfkit.bench.config import BenchConfig
from perfkit.bench.locustgen import rate_at, shape_table
from perfkit.bench.runner import plan_run
from perfkit.bench.schedule import Stage


def test_shape_follows_stage_rates():
    stages = [Stage("constant", duration_s=2, rate_rps=10), Stage("ramp", duration_s=2, from_rps=10, to_rps=30),
              Stage("step", rate_rps=5, step_rps=5, step_s=1, steps=2)]
    assert shape_table(stages, per_user_rps=2.0) == [(1.0, 5), (2.0, 5), (3.0, 5), (4.0, 10), (5.0, 3), (6.0, 5)]
    assert rate_at(Stage("burst", rate_rps=10, spike_rps=90, spike_period_s=5, spike_s=1), 0.5) == 100
    assert rate_at(Stage("burst", rate_rps=10, spike_rps=90, spike_period_s=5, spike_s=1), 1.5) == 10


def _locust(tmp_path: Path, scenario: str) -> dict[str, dict]:
    """Generate the scenario's locustfile, run it headless, return its stats rows by name."""
    scen = tmp_path / "s.toml"
    scen.write_text(scenario)
    out = tmp_path / "locustfile.py"
    res = subprocess.run([sys.executable, "-m", "perfkit", "locustfile", str(scen), "-o", str(out),
                          "--per-user-rps", "2"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "tok-NEVER-IN-FILE" not in out.read_text()
    locust = Path(sys.executable).with_name("locust")
    assert locust.exists() or shutil.which("locust")
    subprocess.run([str(locust), "-f", str(out), "--headless", "--csv", str(tmp_path / "loc"), "--only-summary",
                    "--loglevel", "ERROR"], capture_output=True, text=True, timeout=90, cwd=tmp_path)
    with open(tmp_path / "loc_stats.csv") as f:
        return {r["Name"]: r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_generated_locustfile_runs_against_demo(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("PK_LOCUST_TOKEN", "tok-NEVER-IN-FILE")
    rows = _locust(tmp_path, f'target = "{demo.url}"\nbearer_env = "PK_LOCUST_TOKEN"\n[payload]\nkind = "outliers"\n'
                   f'outlier_fraction = 0.2\n[[stage]]\nrate = 10\nduration = 3\n')
    total = int(rows["Aggregated"]["Request Count"])
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert 10 <= total <= 40  # ~10 req/s for 3 s
    assert any(name.endswith("[outlier]") for name in rows) and any(name.endswith("[normal]") for name in rows)


@pytest.mark.slow
def test_generated_locustfile_sends_plain_completions_of_a_token_true_workload(demo, tmp_path):
    rows = _locust(tmp_path, f'target = "{demo.url}/v1/completions"\nprotocol = "openai"\nstream = false\n'
                   f'temperature = 0\n[workload]\nprompt_tokens = "normal:16,4"\noutput_tokens = 4\n'
                   f'[[stage]]\nrate = 4\nduration = 3\n')
    assert int(rows["Aggregated"]["Failure Count"]) == 0 and int(rows["Aggregated"]["Request Count"]) >= 4
    assert "/v1/completions [normal]" in rows

def _spec(text: str) -> dict:
    """The BODY_SPEC written into a locustfile's text."""
    line = next(ln for ln in text.splitlines() if ln.startswith("BODY_SPEC = json.loads("))
    return json.loads(ast.literal_eval(line.split("(", 1)[1].rsplit(")", 1)[0]))


def _same_bodies_as_perfkit(cfg: BenchConfig, text: str) -> list[dict]:
    """The locustfile's bodies, checked byte for byte against what a perfkit run sends."""
    bodies, classes = locustgen.bodies(_spec(text))
    plan = plan_run(cfg)
    assert len(bodies) == len(plan.requests) and list(plan.classes) == classes
    assert all(req.endswith(b"\r\n\r\n" + body) for req, body in zip(plan.requests, bodies))
    return [json.loads(b) for b in bodies]


def test_locustfile_follows_completions_path_stream_and_body_options():
    cfg = BenchConfig(target="http://127.0.0.1:8000/v1/completions", protocol="openai", stream=False,
                      temperature=0.25, top_p=0.5, max_tokens=5, stages=[Stage(rate_rps=4, duration_s=2)])
    text = locustgen.render(cfg)
    assert "('Accept', 'application/json')" in text and "text/event-stream" not in text
    bodies = _same_bodies_as_perfkit(cfg, text)
    assert len(bodies) == 8
    for body in bodies:
        assert "prompt" in body and "messages" not in body and "stream_options" not in body
        assert (body["stream"], body["temperature"], body["top_p"], body["max_tokens"]) == (False, 0.25, 0.5, 5)


def test_locustfile_chat_streams_by_default():
    cfg = BenchConfig(target="http://127.0.0.1:8000", protocol="openai", stages=[Stage(rate_rps=2, duration_s=1)])
    text = locustgen.render(cfg)
    assert "('Accept', 'text/event-stream')" in text
    body = _same_bodies_as_perfkit(cfg, text)[0]
    assert body["messages"][0]["role"] == "user" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True} and "temperature" not in body


def test_locustfile_rebuilds_a_token_true_workload(tmp_path, monkeypatch):
    (tmp_path / "prompts.csv").write_text("q,n\nhello there,3\nhow are you,4\n")
    scen = tmp_path / "s.toml"
    scen.write_text('target = "http://127.0.0.1:8000/v1/completions"\nprotocol = "openai"\ntemperature = 0\n'
                    '[workload]\ndataset = "prompts.csv"\ndataset_columns = "prompt=q,output_tokens=n"\n'
                    'ignore_eos = true\n[[stage]]\nrate = 2\nduration = 1\n')
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = locustgen.write("../s.toml", "locustfile.py")
    text = out.read_text()
    assert _spec(text)["workload"]["dataset"] == str(elsewhere / ".." / "prompts.csv")  # absolute
    bodies = _same_bodies_as_perfkit(locustgen.scenario.load("../s.toml"), text)
    assert [(b["prompt"], b["max_tokens"], b["min_tokens"], b["ignore_eos"], b["temperature"]) for b in bodies] == [
        ("hello there", 3, 3, True, 0.0), ("how are you", 4, 4, True, 0.0)]
    monkeypatch.chdir(tmp_path)  # the locustfile does not depend on where it runs
    assert locustgen.bodies(_spec(text))[0] == [json.dumps(b, separators=(",", ":")).encode() for b in bodies]
