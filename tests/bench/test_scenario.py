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
