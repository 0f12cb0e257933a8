"""Scenario TOML: parsed into stages, and every mistake named by file and line or key path."""
from __future__ import annotations

import pytest

from perfkit.bench import scenario
from perfkit.bench.cli import config_from_args
from perfkit.cli import build_parser
from perfkit.errors import InputError, UsageError

GOOD = """
target = "http://user:pw@127.0.0.1:8000"
protocol = "http-json"
label = "case=ramp"
seed = 3
headers = {X-Team = "perf"}
slo = {latency_ms = 250}

[payload]
kind = "outliers"
outlier_fraction = 0.1

[[stage]]
pattern = "constant"
rate = 20
duration = 2

[[stage]]
pattern = "ramp"
from_rps = 20
to_rps = 60
duration_s = 4
"""


def write(tmp_path, text):
    p = tmp_path / "scenario.toml"
    p.write_text(text)
    return p


def test_good_scenario(tmp_path):
    cfg = scenario.load(write(tmp_path, GOOD))
    assert [s.pattern for s in cfg.stages] == ["constant", "ramp"]
    assert cfg.stages[0].rate_rps == 20.0 and cfg.stages[1].to_rps == 60.0
    assert cfg.payload.outlier_fraction == 0.1 and cfg.payload.seed == 3
    assert cfg.headers == [("X-Team", "perf")] and cfg.slo == {"latency_ms": 250.0}
    assert cfg.pattern == "scenario"
    assert cfg.public()["target"] == "http://***@127.0.0.1:8000"


@pytest.mark.parametrize("text,message", [
    (GOOD.replace("seed = 3", "sead = 3"), r"scenario.toml:5: unknown key 'sead'"),
    (GOOD.replace("rate = 20", "rate = \"fast\""), r"scenario.toml:\d+: stage\[0\].rate: expected float"),
    (GOOD.replace('pattern = "ramp"', 'pattern = "zigzag"'), r"stage\[1\].pattern: 'zigzag' unknown"),
    (GOOD.replace("rate = 20", "rate = -5"), r"stage\[0\]: rate must be > 0"),
    (GOOD.replace("outlier_fraction = 0.1", "outlier_fractoin = 0.1"), r"payload.outlier_fractoin: unknown"),
    (GOOD + "\n[[stage]]\npattern = \n", r"scenario.toml:\d+: not valid TOML"),
    ("target = \"http://127.0.0.1:1\"\n", r"no \[\[stage\]\] tables"),
    (GOOD.replace("127.0.0.1:8000", "127.0.0.1:999999"), r"Port out of range"),
])
def test_bad_scenarios_name_file_and_place(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        scenario.load(write(tmp_path, text))


def test_cli_flags_override_scenario_but_not_stages(tmp_path):
    path = write(tmp_path, GOOD)
    args = build_parser().parse_args(["bench", str(path), "--label", "x=1", "--workers", "2"])
    cfg = config_from_args(args)
    assert cfg.label == "x=1" and cfg.workers == 2 and len(cfg.stages) == 2
    args = build_parser().parse_args(["bench", str(path), "--rate", "5"])
    with pytest.raises(UsageError, match="cannot be combined"):
        config_from_args(args)


OPENAI = """
target = "http://127.0.0.1:8000/v1/completions"
protocol = "openai"
temperature = 0.5
top_p = 0.9
stream = false

[workload]
prompt_tokens = 32
output_tokens = "8"
ignore_eos = true

[[stage]]
rate = 10
duration = 2
"""


def _bodies(cfg, n=4):
    """The bodies a run of ``cfg`` sends (what the runner builds), decoded."""
    import json

    from perfkit.bench.workload import build_for

    target = cfg.validate()
    built = build_for(cfg.workload, cfg.payload, cfg.protocol, cfg.model, target.path, cfg.body_overrides(), n)
    return [json.loads(b) for b in built.bodies]


def test_scenario_sets_body_options_and_token_true_workload(tmp_path):
    cfg = scenario.load(write(tmp_path, OPENAI))
    assert (cfg.temperature, cfg.top_p, cfg.stream) == (0.5, 0.9, False)
    assert cfg.workload.prompt_tokens == "32" and cfg.workload.output_tokens == "8" and cfg.workload.ignore_eos
    body = _bodies(cfg)[0]
    assert len(body["prompt"]) == 32 and "messages" not in body  # the demo's tokenizer: a token a character
    assert (body["max_tokens"], body["min_tokens"], body["ignore_eos"]) == (8, 8, True)
    assert (body["temperature"], body["top_p"], body["stream"]) == (0.5, 0.9, False)
    assert "stream_options" not in body


def test_workload_paths_are_relative_to_the_scenario(tmp_path, monkeypatch):
    (tmp_path / "lengths.txt").write_text("5\n7\n")
    (tmp_path / "prompts.csv").write_text("question,n\nhello there,3\nhow are you,4\n")
    text = OPENAI.replace('prompt_tokens = 32', 'prompt_tokens = "empirical:lengths.txt,max=6"').replace(
        'output_tokens = "8"', 'dataset = "prompts.csv"\ndataset_columns = "prompt=question,output_tokens=n"')
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    monkeypatch.chdir(sub)
    cfg = scenario.load(write(tmp_path, text))
    assert cfg.workload.dataset == str(tmp_path / "prompts.csv")
    assert cfg.workload.prompt_tokens == f"empirical:{tmp_path / 'lengths.txt'},max=6"
    assert cfg.workload.specs()[0].values == (5, 7)
    bodies = _bodies(cfg)
    assert [(b["prompt"], b["max_tokens"]) for b in bodies] == [("hello there", 3), ("how are you", 4)]


def test_flags_override_the_scenario_body_options_and_workload(tmp_path):
    path = write(tmp_path, OPENAI)
    args = build_parser().parse_args(["bench", str(path), "--stream", "--temperature", "0", "--prompt-tokens", "16"])
    cfg = config_from_args(args)
    assert (cfg.stream, cfg.temperature, cfg.top_p) == (True, 0.0, 0.9)
    assert (cfg.workload.prompt_tokens, cfg.workload.output_tokens) == ("16", "8")
    body = _bodies(cfg)[0]
    assert len(body["prompt"]) == 16 and body["stream"] is True and body["temperature"] == 0
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("old,new,message", [
    ("temperature = 0.5", 'temperature = "hot"', r"scenario.toml:4: temperature: expected float"),
    ("stream = false", 'stream = "no"', r"scenario.toml:6: stream: expected bool"),
    ("top_p = 0.9", "top_p = 2", r"scenario.toml:5: top_p must be within \(0, 1\], got 2"),
    ("ignore_eos = true", "ignore_eos = 1", r"scenario.toml:11: workload.ignore_eos: expected bool"),
    ("ignore_eos = true", "prompt_tokenz = 3", r"scenario.toml:11: workload.prompt_tokenz: unknown key"),
    ("prompt_tokens = 32", 'prompt_tokens = "gauss:3,1"',
     r"scenario.toml:9: workload.prompt_tokens: unknown distribution 'gauss'"),
    ("prompt_tokens = 32", 'prompt_tokens = "empirical:4,0"',
     r"scenario.toml:9: workload.prompt_tokens \(inline list\): length '0' is not an integer >= 1"),
    ("prompt_tokens = 32", 'prompt_tokens = "empirical:missing.txt"',
     r"scenario.toml:9: .*missing.txt: cannot read workload.prompt_tokens lengths"),
    ('output_tokens = "8"', 'output_tokens = "normal:8"',
     r"scenario.toml:10: workload.output_tokens: normal takes two numbers"),
    ("ignore_eos = true", 'dataset_columns = "prompt"',
     r"scenario.toml:11: workload.dataset_columns entries look like FIELD=COLUMN"),
    ("ignore_eos = true", 'dataset_columns = "prompt=q"',
     r"scenario.toml:11: workload.dataset_columns needs workload.dataset FILE"),
    ("stream = false", "max_tokens = 8",
     r"scenario.toml:10: workload.output_tokens and max_tokens both set max_tokens"),
    ('protocol = "openai"', 'protocol = "http-json"',
     r"scenario.toml:4: temperature, top_p, stream apply to protocol openai only; http-json bodies have no"),
    ('protocol = "openai"\ntemperature = 0.5\ntop_p = 0.9\nstream = false', 'protocol = "http-json"',
     r"scenario.toml:6: .*workload.prompt_tokens/.* build OpenAI bodies: use protocol openai \(got http-json\)"),
    ("ignore_eos = true", "turns = 2", r"scenario.toml:11: workload.turns needs the chat endpoint"),
    ("ignore_eos = true", "turns = 0", r"scenario.toml:11: workload.turns must be >= 1, got 0"),
])
def test_bad_body_options_and_workloads_name_file_line_and_key(tmp_path, old, new, message):
    assert old in OPENAI
    with pytest.raises(InputError, match=message) as info:
        scenario.load(write(tmp_path, OPENAI.replace(old, new)))
    assert info.value.exit_code == 2
