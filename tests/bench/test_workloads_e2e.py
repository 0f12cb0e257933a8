"""Token-true workloads against the real demo LLM: the prompt and output tokens its usage
reports are the ones asked for (completions: exactly; chat: plus the demo's role template)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pytest

from perfkit.bench import BenchConfig, Stage, run
from perfkit.bench.workload import Workload
from perfkit.store import runs

if TYPE_CHECKING:
    import pandas as pd

pytestmark = pytest.mark.slow


def bench(url: str, db, workload: Workload, rate: float = 10.0, duration: float = 2.0) -> pd.DataFrame:
    s = run(BenchConfig(target=url, protocol="openai", db=str(db), quiet=True, collect=False, min_duration_s=1.0,
                        stages=[Stage("constant", duration_s=duration, rate_rps=rate)], workload=workload))
    assert s["ok"] == s["requests"] == int(rate * duration), s["errors"]
    with duckdb.connect(str(db), read_only=True) as con:
        return runs.token_lengths(con, s["run_id"])


def test_completions_prompt_and_output_tokens_come_back_as_intended(demo, tmp_path):
    lengths = bench(demo.url + "/v1/completions", tmp_path / "r.duckdb",
                    Workload(prompt_tokens="normal:64,16", output_tokens="8"))
    assert len(lengths) == 20 and lengths["prompt_tokens_intended"].nunique() > 5  # drawn, not fixed
    assert (lengths["prompt_tokens"] == lengths["prompt_tokens_intended"]).all()
    assert (lengths["output_tokens"] == 8).all() and (lengths["output_tokens_intended"] == 8).all()


def test_chat_turns_reach_the_server_with_their_history(demo, tmp_path):
    lengths = bench(demo.url, tmp_path / "r.duckdb", Workload(prompt_tokens="20", output_tokens="4", turns=3),
                    duration=1.2)
    # The demo renders each message as "role: content\n" and appends "assistant:" (perfkit.demo.openai_api).
    turn = lengths.index % 3
    template = (turn + 1) * len("user: \n") + turn * len("assistant: \n") + len("assistant:")
    assert lengths["prompt_tokens_intended"].tolist()[:3] == [20, 44, 68]  # history: earlier prompts + answers
    assert (lengths["prompt_tokens"] == lengths["prompt_tokens_intended"] + template).all()
    assert (lengths["output_tokens"] == 4).all()
