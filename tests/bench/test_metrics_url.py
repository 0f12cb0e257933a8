"""``--metrics-url`` (bench, sweep, abtest, scenario ``metrics_urls``): scraped instead of
<target>/metrics, handed to the live collectors as given (in memory), stored redacted."""
from __future__ import annotations

import argparse
from typing import Any

import pytest

from perfkit.bench import runner
from perfkit.bench.cli import add_load_arguments, config_from_args
from perfkit.bench.config import BenchConfig
from perfkit.bench.scenario import load
from perfkit.bench.schedule import Stage
from perfkit.errors import InputError, UsageError

TARGET = "http://127.0.0.1:9/"
METRICS = "http://scraper:s3cret@127.0.0.1:8082/metrics"


def _args(*flags: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_load_arguments(p)
    return p.parse_args(list(flags))


def test_flag_is_repeatable_and_replaces_the_scenarios_list(tmp_path):
    cfg = config_from_args(_args("--target", TARGET, "--rate", "1", "--duration", "1",
                                 "--metrics-url", METRICS, "--metrics-url", "http://127.0.0.1:8000/metrics"))
    assert cfg.metrics_urls == [METRICS, "http://127.0.0.1:8000/metrics"]
    scen = tmp_path / "s.toml"
    scen.write_text(f'target = "{TARGET}"\nmetrics_urls = ["{METRICS}"]\n[[stage]]\nrate = 1\nduration = 1\n')
    assert config_from_args(_args(str(scen))).metrics_urls == [METRICS]
    assert config_from_args(_args(str(scen), "--metrics-url", "http://h:1/m")).metrics_urls == ["http://h:1/m"]
    assert config_from_args(_args("--target", TARGET, "--rate", "1", "--duration", "1")).metrics_urls == []


def test_scenario_key_must_be_a_list_of_urls(tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(f'target = "{TARGET}"\nmetrics_urls = "{METRICS}"\n[[stage]]\nrate = 1\nduration = 1\n')
    with pytest.raises(InputError, match=r"s.toml:2: metrics_urls: expected a list of URLs"):
        load(scen)
    scen.write_text(f'target = "{TARGET}"\nmetrics_urls = ["ftp://x:{"s3cret"}@h/m"]\n[[stage]]\nrate = 1\n'
                    'duration = 1\n')
    with pytest.raises(InputError, match=r"s.toml:2: malformed metrics_urls") as err:  # the file's key and line
        load(scen)
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize("url", ["127.0.0.1:8082/metrics", "http:///metrics", "http://h:99999999/metrics"])
def test_malformed_url_is_a_usage_error(url):
    cfg = BenchConfig(target=TARGET, metrics_urls=[url])
    with pytest.raises(UsageError, match="malformed --metrics-url"):
        cfg.validate()


def test_collectors_get_the_real_urls_and_the_store_the_redacted(monkeypatch):
    seen: dict[str, Any] = {}

    class Recorder:
        def __init__(self, run_id: str, target_url: str, target_pid: int | None = None, **kw: Any):
            seen.update(target_url=target_url, **kw)

        def start(self) -> None:
            seen["started"] = True

    monkeypatch.setattr("perfkit.ingest.live.LiveCollectors", Recorder)
    monkeypatch.setenv("PK_METRICS_TOKEN", "tok-123")
    cfg = BenchConfig(target=TARGET, metrics_urls=[METRICS, "http://127.0.0.1:8000/metrics"],
                      bearer_env="PK_METRICS_TOKEN", stages=[Stage("constant", rate_rps=1.0, duration_s=1.0)])
    plan = runner.plan_run(cfg)
    assert runner._start_collectors(plan) is not None and seen["started"]
    assert seen["metrics_urls"] == [METRICS, "http://127.0.0.1:8000/metrics"]
    assert seen["headers"] == {"Authorization": "Bearer tok-123"}
    assert "s3cret" not in str(plan.public) and "tok-123" not in str(plan.public)
    assert plan.public["metrics_urls"][1] == "http://127.0.0.1:8000/metrics"
    seen.clear()
    runner._start_collectors(runner.plan_run(BenchConfig(target=TARGET, stages=cfg.stages)))
    assert seen["metrics_urls"] is None  # none given: <target>/metrics


def test_abtest_arms_take_their_own_metrics_urls(monkeypatch, tmp_path):
    from perfkit.analyze import cli as analyze_cli, experiment

    class Stop(Exception):
        pass

    got: dict[str, Any] = {}

    def capture(configs: dict[str, BenchConfig], *a: Any, **kw: Any) -> None:
        got.update({arm: c.metrics_urls for arm, c in configs.items()})
        raise Stop

    monkeypatch.setattr(experiment, "run_experiment", capture)
    parser = argparse.ArgumentParser()
    analyze_cli.register(parser.add_subparsers())
    args = parser.parse_args(["abtest", "--baseline-target", "http://127.0.0.1:9/", "--candidate-target",
                              "http://127.0.0.1:10/", "--rate", "1", "--duration", "1", "--db",
                              str(tmp_path / "r.duckdb"), "--metrics-url", "http://h:1/metrics",
                              "--candidate-metrics-url", "http://h:2/metrics"])
    with pytest.raises(Stop):
        args.func(args)
    assert got == {"baseline": ["http://h:1/metrics"], "candidate": ["http://h:2/metrics"]}
