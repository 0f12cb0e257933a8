"""Token-true LLM workloads: length specs, exact prompts with the char and a Hugging Face
tokenizer, data sets (JSONL, JSON, CSV, Parquet), Mooncake traces, multi-turn history, and
bad input (one line, exit 2, nothing written)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perfkit.bench import datasets, lengths, schedule, tokens
from perfkit.bench.cli import add_load_arguments, config_from_args
from perfkit.bench.config import BenchConfig
from perfkit.bench.payload import default_template
from perfkit.bench.workload import Workload, build
from perfkit.errors import InputError, UsageError

TRACE = Path(__file__).parents[1] / "data" / "mooncake" / "conversation_trace_subset.jsonl"
COMPLETIONS = default_template("openai", "m", None, "/v1/completions")
CHAT = default_template("openai", "m", None, "/v1/chat/completions")


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory) -> str:
    """A small byte-level BPE tokenizer.json trained here on a few sentences (nothing downloaded)."""
    hf = pytest.importorskip("tokenizers")
    tok = hf.Tokenizer(hf.models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = hf.decoders.ByteLevel()
    trainer = hf.trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]"],
                                     initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([tokens.CORPUS, "the quick brown fox jumps over the lazy dog"] * 3, trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return str(path)


def prompts(built, key="prompt") -> list[str]:
    return [json.loads(b)[key] for b in built.bodies]


# --------------------------------------------------------------------------- length specs

@pytest.mark.parametrize("text,kind,params", [("128", "fixed", (128.0,)), ("normal:200,40", "normal", (200.0, 40.0)),
                                             ("longtail:100, 0.8", "longtail", (100.0, 0.8))])
def test_specs_parse(text, kind, params):
    spec = lengths.parse(text, "--prompt-tokens")
    assert (spec.kind, spec.params, spec.max_tokens) == (kind, params, lengths.DEFAULT_MAX)


@pytest.mark.parametrize("text,message", [("0", "integer >= 1"), ("12.5", "integer >= 1"), ("gauss:1,2", "unknown"),
                                          ("normal:200", "two numbers"), ("normal:200,-1", "spread"),
                                          ("normal:a,b", "not a number"), ("normal:200,40,max=0", "max must be")])
def test_bad_specs_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message):
        lengths.parse(text, "--prompt-tokens")


def test_draws_follow_their_distribution_and_the_clip():
    rng = np.random.default_rng(1)
    normal = lengths.draw(lengths.parse("normal:200,40", "x"), 20000, rng)
    assert abs(normal.mean() - 200) < 1.5 and abs(normal.std() - 40) < 1.5
    tail = lengths.draw(lengths.parse("longtail:100,1", "x"), 20000, rng)
    assert abs(np.median(tail) - 100) < 4 and tail.mean() > 150  # mean = median * e^(1/2)
    clipped = lengths.draw(lengths.parse("normal:100,80,max=150", "x"), 5000, rng)
    assert clipped.min() == 1 and clipped.max() == 150
    assert set(lengths.draw(lengths.parse("7", "x"), 10, rng).tolist()) == {7}


def test_empirical_lengths_inline_or_from_a_file(tmp_path):
    rng = np.random.default_rng(0)
    assert set(lengths.draw(lengths.parse("empirical:12,40,33", "x"), 500, rng).tolist()) == {12, 33, 40}
    observed = tmp_path / "lengths.txt"
    observed.write_text("# observed prompt lengths\n5 6\n7\n")
    assert lengths.parse(f"empirical:{observed}", "x").values == (5, 6, 7)
    observed.write_text("5\nseven\n")
    with pytest.raises(InputError, match=r"lengths.txt:2: length 'seven'"):
        lengths.parse(f"empirical:{observed}", "x")


# --------------------------------------------------------------------------- exact prompts

@pytest.mark.parametrize("which", ["char", "hf"])
def test_a_normal_spec_comes_back_within_2_percent_with_the_same_tokenizer(which, hf_tokenizer):
    path = None if which == "char" else hf_tokenizer
    built = build(Workload(tokenizer=path, prompt_tokens="normal:200,40", output_tokens="8"), 2000, COMPLETIONS, {})
    tok = tokens.load_tokenizer(path)
    measured = np.array([len(tok.encode(p)) for p in prompts(built)])
    assert len(measured) == 2000
    assert abs(measured.mean() - 200) / 200 < 0.02
    assert (measured == built.prompt_tokens).mean() > 0.99  # built to the drawn count, not just on average
    assert set(built.output_tokens.tolist()) == {8} and {json.loads(b)["max_tokens"] for b in built.bodies} == {8}


def test_the_char_tokenizer_is_the_demo_models():
    from perfkit.demo import charlm

    text = "héllo\nworld"
    assert tokens.CharTokenizer().encode(text) == charlm.encode(text).tolist()
    assert len(tokens.make_text(tokens.CharTokenizer(), 37, np.random.default_rng(0))) == 37


def test_bodies_are_seeded_and_ignore_eos_asks_for_the_full_length():
    w = Workload(prompt_tokens="normal:50,10", output_tokens="normal:20,5", ignore_eos=True)
    a, b = build(w, 50, CHAT, {"temperature": 0.0}), build(w, 50, CHAT, {"temperature": 0.0})
    assert a.bodies == b.bodies
    body = json.loads(a.bodies[0])
    assert body["min_tokens"] == body["max_tokens"] == a.output_tokens[0] and body["ignore_eos"] is True
    assert body["temperature"] == 0.0 and body["messages"][-1]["role"] == "user"


def test_a_tokenizer_that_is_not_there_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        tokens.load_tokenizer(str(tmp_path / "missing"))
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{}")
    with pytest.raises(UsageError, match="not a tokenizer.json"):
        tokens.load_tokenizer(str(tmp_path))


# --------------------------------------------------------------------------- multi-turn

def test_each_turn_carries_the_history():
    built = build(Workload(prompt_tokens="normal:30,5", output_tokens="normal:12,3", turns=3), 7, CHAT, {})
    assert len(built.bodies) == 9 and built.classes[:3] == ["turn1", "turn2", "turn3"]  # whole conversations
    turns = [json.loads(b)["messages"] for b in built.bodies[:3]]
    assert [len(m) for m in turns] == [1, 3, 5]
    assert turns[1][0] == turns[0][0] and turns[2][:3] == turns[1][:3]   # earlier prompts, verbatim
    assert [m["role"] for m in turns[2]] == ["user", "assistant", "user", "assistant", "user"]
    tok = tokens.CharTokenizer()
    # the generated answer of turn k has turn k's output length
    assert len(tok.encode(turns[1][1]["content"])) == built.output_tokens[0]
    assert len(tok.encode(turns[2][3]["content"])) == built.output_tokens[1]
    contents = [sum(len(tok.encode(m["content"])) for m in msgs) for msgs in turns]
    assert contents == built.prompt_tokens[:3].tolist()
    assert json.loads(built.bodies[3])["messages"] != turns[0]  # the next conversation starts afresh
    assert len(json.loads(built.bodies[3])["messages"]) == 1


# --------------------------------------------------------------------------- data sets

ROWS = [{"question": "What is tail latency?", "n": 5, "extra": 1}, {"question": "Why open loop?", "n": 7, "extra": 2}]


def write_dataset(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".csv":
        keys = list(rows[0])
        path.write_text(",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n" for r in rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), str(path))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_datasets_load_with_a_column_mapping(tmp_path, suffix):
    path = write_dataset(tmp_path / f"prompts{suffix}", ROWS)
    ds = datasets.load(str(path), "prompt=question,output_tokens=n")
    assert [(r.prompt, r.output_tokens) for r in ds.rows] == [("What is tail latency?", 5), ("Why open loop?", 7)]
    built = build(Workload(dataset=str(path), dataset_columns="prompt=question,output_tokens=n"), 5, CHAT, {})
    assert len(built.bodies) == 2 and built.classes == ["dataset", "dataset"]  # one body per row, cycled
    assert [json.loads(b)["messages"][-1]["content"] for b in built.bodies] == [r["question"] for r in ROWS]
    assert built.output_tokens.tolist() == [5, 7] and built.prompt_tokens.tolist() == [21, 14]


def test_a_messages_column_is_the_chat_history(tmp_path):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    path = write_dataset(tmp_path / "chats.jsonl", [{"messages": chat}])
    built = build(Workload(dataset=str(path), output_tokens="3"), 1, CHAT, {})
    assert json.loads(built.bodies[0])["messages"] == chat and built.prompt_tokens.tolist() == [11]
    with pytest.raises(UsageError, match="need a chat body"):
        build(Workload(dataset=str(path)), 1, COMPLETIONS, {})


@pytest.mark.parametrize("name,text,line,message", [
    ("bad.jsonl", '{"prompt": "a"}\n{"prompt": \n', 2, "not valid JSON"),
    ("bad.jsonl", '{"prompt": "a"}\n\n{"prompt": ""}\n', 3, "non-empty string"),
    ("bad.jsonl", '{"text": "a"}\n', 1, "no prompt, messages or prompt_tokens column"),
    ("bad.jsonl", '{"prompt": "a", "output_tokens": 2}\n{"prompt": "b", "output_tokens": -4}\n', 2, "integer >= 1"),
    ("bad.csv", 'prompt,output_tokens\nhello,3\nworld,three\n', 3, "integer >= 1"),
    ("bad.csv", 'prompt\nhello\nworld,extra\n', 3, "more cells"),
    ("bad.jsonl", '{"messages": [{"role": "user"}]}\n', 1, "messages must be"),
])
def test_malformed_datasets_name_the_file_and_line(tmp_path, name, text, line, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        datasets.load(str(path))
    assert (err.value.path, err.value.line) == (str(path), line)


def test_a_missing_mapped_column_names_the_columns(tmp_path):
    path = write_dataset(tmp_path / "p.jsonl", ROWS)
    with pytest.raises(InputError, match=r"p.jsonl:1: no column 'prompt_text'.*question, n, extra"):
        datasets.load(str(path), "prompt=prompt_text")
    with pytest.raises(UsageError, match="unknown field"):
        datasets.parse_columns("answer=question")


def test_a_malformed_dataset_exits_2_with_nothing_written(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    db = tmp_path / "r.duckdb"
    res = subprocess.run([sys.executable, "-m", "perfkit", "bench", "--target", "http://127.0.0.1:1",
                          "--protocol", "openai", "--rate", "5", "--duration", "1", "--dataset", str(path),
                          "--db", str(db), "--no-collect", "--quiet"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"perfkit bench: {path}:2: prompt must be a non-empty string"]
    assert not db.exists()


# --------------------------------------------------------------------------- Mooncake traces

def test_mooncake_trace_offsets_follow_its_timestamps():
    offsets = schedule.replay(TRACE, speed=2.0)
    assert offsets.tolist() == [0.0] * 5 + [1.5] * 3 + [2.9995] * 3 + [4.5] * 2
    stage = schedule.Stage("replay", trace=str(TRACE))
    assert stage.length_s() == pytest.approx(9.0, abs=1e-3) and len(stage.offsets(0)) == 13


def test_mooncake_rows_give_lengths_and_shared_prefix_blocks():
    ds = datasets.load(str(TRACE))
    assert ds.kind == "mooncake" and len(ds.rows) == 13 and ds.rows[0].hash_ids[:2] == (0, 1)
    built = build(Workload(dataset=str(TRACE)), 13, COMPLETIONS, {})
    rows = [json.loads(line) for line in TRACE.read_text().splitlines()]
    assert built.prompt_tokens.tolist() == [r["input_length"] for r in rows]
    assert [json.loads(b)["max_tokens"] for b in built.bodies] == [r["output_length"] for r in rows]
    texts = prompts(built)
    assert [len(t) for t in texts] == [r["input_length"] for r in rows]  # char tokenizer: exact
    block = datasets.BLOCK_TOKENS
    assert len({t[:block] for t in texts}) == 1        # hash id 0 opens every prompt: one shared block
    assert len({t[block:2 * block] for t in texts}) == 13  # the next blocks differ


def test_a_trace_given_as_dataset_replays_on_its_own_timing():
    p = argparse.ArgumentParser()
    add_load_arguments(p)
    cfg = config_from_args(p.parse_args(["--target", "http://h/v1/completions", "--protocol", "openai",
                                         "--dataset", str(TRACE), "--speed", "3"]))
    assert cfg.stages[0].pattern == "replay" and cfg.stages[0].trace == str(TRACE) and cfg.stages[0].speed == 3
    cfg = config_from_args(p.parse_args(["--target", "http://h", "--protocol", "openai", "--pattern", "replay",
                                         "--trace", str(TRACE)]))
    assert cfg.workload.dataset == str(TRACE)
    cfg = config_from_args(p.parse_args(["--target", "http://h", "--protocol", "openai", "--rate", "2",
                                         "--duration", "1", "--dataset", str(TRACE)]))
    assert cfg.stages[0].pattern == "constant"  # a rate given: the trace's lengths only


# --------------------------------------------------------------------------- what cannot run

@pytest.mark.parametrize("kw,message", [
    ({"protocol": "http-json", "workload": Workload(prompt_tokens="10")}, "use --protocol openai"),
    ({"max_tokens": 8, "workload": Workload(output_tokens="8")}, "--output-tokens and --max-tokens"),
    ({"target": "http://h/v1/completions", "workload": Workload(turns=2)}, "--turns needs the chat endpoint"),
    ({"workload": Workload(turns=2, dataset="x.jsonl")}, "its own history"),
    ({"workload": Workload(dataset_columns="prompt=q")}, "needs --dataset"),
    ({"workload": Workload(prompt_tokens="normal:1")}, "two numbers"),
])
def test_workloads_that_cannot_run_are_usage_errors(kw, message):
    from perfkit.bench.payload import PayloadSpec

    kw = {"target": "http://h", "protocol": "openai", **kw}
    with pytest.raises(UsageError, match=message):
        BenchConfig(**kw).validate()
    with pytest.raises(UsageError, match="both set the prompts"):
        BenchConfig(target="http://h", protocol="openai", payload=PayloadSpec("normal"),
                    workload=Workload(prompt_tokens="5")).validate()


# --------------------------------------------------------------------------- stored and drawn

def test_intended_lengths_are_read_back_and_drawn(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import pyarrow as pa
    from factories import make_run

    from perfkit import store
    from perfkit.plots import benchmark as figures
    from perfkit.store import runs, write

    con = store.connect(tmp_path / "r.duckdb")
    for run_id, intended in (("llm", [5, 7, 9]), ("plain", None)):
        make_run(con, run_id)
        cols = {"seq": [0, 1, 2], "prompt_tokens": [5, 7, 9], "output_tokens": [4, 4, None],
                "error_kind": [None, None, "timeout"]}
        if intended:
            cols.update(prompt_tokens_intended=intended, output_tokens_intended=[4, 4, 4])
        write.insert_requests(con, run_id, pa.table(cols))
    lengths = runs.token_lengths(con, "llm")
    assert lengths.to_dict("list") == {"prompt_tokens_intended": [5, 7], "prompt_tokens": [5, 7],
                                       "output_tokens_intended": [4, 4], "output_tokens": [4, 4]}  # ok rows only
    assert runs.token_lengths(con, "plain").empty
    fig = figures.token_lengths(lengths)
    assert [ax.get_title() for ax in fig.axes] == ["Prompt tokens per request (tokens, n=2)",
                                                   "Output tokens per request (tokens, n=2)"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["intended (n=2)",
                                                                             "realized (server usage) (n=2)"]


def test_a_template_gives_the_body_and_turns_need_its_messages():
    template = {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "{{text}}"}], "max_tokens": 1}
    built = build(Workload(prompt_tokens="10", output_tokens="3", turns=2), 2, template, {"top_p": 0.5})
    second = json.loads(built.bodies[1])
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert second["max_tokens"] == 3 and second["top_p"] == 0.5 and second["model"] == "m"
    with pytest.raises(UsageError, match="need a chat body"):
        build(Workload(turns=2), 2, {"model": "m", "prompt": "{{text}}"}, {})
