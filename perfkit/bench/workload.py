"""Token-true LLM workloads: OpenAI bodies whose prompt and output lengths are set in tokens.

A :class:`Workload` (held by :class:`~perfkit.bench.config.BenchConfig`, ``--protocol openai``
only) replaces the word-count payloads of :mod:`perfkit.bench.payload` when any of its
fields is given:

- ``tokenizer``: what counts tokens (:mod:`perfkit.bench.tokens`; default the demo model's);
- ``prompt_tokens`` / ``output_tokens``: length SPECs (:mod:`perfkit.bench.lengths`);
  each prompt is generated to exactly its drawn length with the tokenizer, and each
  output length is the body's ``max_tokens`` (with ``ignore_eos``: also ``min_tokens`` and
  ``ignore_eos: true``, which vLLM-like servers honour, so that answers run to that length);
- ``dataset``: rows of prompts, chat histories or lengths (:mod:`perfkit.bench.datasets`),
  one body per row, cycled; a Mooncake trace's rows give lengths and shared prefix blocks;
- ``turns``: multi-turn conversations (chat only).

Multi-turn design: bodies are built before the run (nothing is encoded on the hot path),
so turn k of a conversation cannot carry the server's real answers. It carries the
history as a client would send it: the previous user prompts, each followed by an
assistant answer of that turn's output length, generated text. Conversation c's turn k
is body ``c * turns + k``; request i uses body ``i % len(bodies)``, so the turns of one
conversation are sent in schedule order (open loop: turn k+1 does not wait for turn k's
answer).

Each body's *intended* lengths (prompt tokens: all message contents, history included,
counted with the tokenizer, without the server's chat template; output tokens: the
``max_tokens`` asked) are stored per request next to the server's usage counts.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from perfkit.bench import datasets, lengths
from perfkit.bench.payload import PayloadSpec, apply_overrides, default_template, load_template
from perfkit.bench.tokens import Tokenizer, load_tokenizer, make_text, random_ids
from perfkit.errors import UsageError

DEFAULT_PROMPT_TOKENS = "64"
DEFAULT_OUTPUT_TOKENS = 64


@dataclass(frozen=True)
class Workload:
    """What a token-true workload sends (all None/default: no workload, payloads as before)."""

    tokenizer: str | None = None        # tokenizer.json or its directory; None: perfkit-char-lm
    prompt_tokens: str | None = None    # length SPEC; None: 64 (or the dataset's)
    output_tokens: str | None = None    # length SPEC; None: --max-tokens, else 64 (or the dataset's)
    dataset: str | None = None          # .jsonl/.json/.csv/.parquet, or a Mooncake trace
    dataset_columns: str | None = None  # FIELD=COLUMN,...
    turns: int = 1                      # turns per conversation (chat)
    ignore_eos: bool = False            # also send min_tokens = max_tokens and ignore_eos

    @property
    def active(self) -> bool:
        return bool(self.tokenizer or self.prompt_tokens or self.output_tokens or self.dataset
                    or self.dataset_columns or self.ignore_eos) or self.turns != 1

    def check(self, protocol: str, payload_kind: str, chat: bool, max_tokens: int | None) -> None:
        """Raise UsageError for what cannot run; parse the SPECs (reading empirical files)."""
        if not self.active:
            return
        if protocol != "openai":
            raise UsageError("--tokenizer/--prompt-tokens/--output-tokens/--dataset/--turns/--ignore-eos "
                             f"build OpenAI bodies: use --protocol openai (got {protocol})")
        if payload_kind != "fixed":
            raise UsageError(f"--payload {payload_kind} and a token-true workload both set the prompts; "
                             "give --prompt-tokens or --dataset instead")
        if self.output_tokens and max_tokens is not None:
            raise UsageError("--output-tokens and --max-tokens both set max_tokens; give one "
                             "(--output-tokens N is --max-tokens N)")
        if self.turns < 1:
            raise UsageError(f"--turns must be >= 1, got {self.turns}")
        if self.turns > 1 and not chat:
            raise UsageError("--turns needs the chat endpoint (/v1/chat/completions): a completions "
                             "prompt has no turns")
        if self.turns > 1 and self.dataset:
            raise UsageError("--turns with --dataset: a dataset's messages column carries its own history")
        if self.dataset_columns and not self.dataset:
            raise UsageError("--dataset-columns needs --dataset FILE")
        datasets.parse_columns(self.dataset_columns)
        self.specs()

    def specs(self) -> tuple[lengths.LengthSpec, lengths.LengthSpec | None]:
        """The prompt and output SPECs (output None: --max-tokens or the default)."""
        prompt = lengths.parse(self.prompt_tokens or DEFAULT_PROMPT_TOKENS, "--prompt-tokens")
        output = lengths.parse(self.output_tokens, "--output-tokens") if self.output_tokens else None
        return prompt, output


@dataclass
class Built:
    """The bodies of a workload, their classes and intended lengths (one entry per body)."""

    bodies: list[bytes]
    classes: list[str]
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


def _count(tok: Tokenizer, messages: Sequence[dict[str, Any]]) -> int:
    return sum(len(tok.encode(str(m.get("content", "")))) for m in messages)


class _Bodies:
    """Turns prompts and output lengths into encoded bodies from the run's base template."""

    def __init__(self, template: Any, overrides: dict[str, Any], ignore_eos: bool):
        if not isinstance(template, dict):
            raise UsageError("a token-true workload needs a JSON-object body template")
        self.template = json.dumps(template)
        self.chat = "messages" in template
        self.overrides = {k: v for k, v in overrides.items() if k != "max_tokens"}
        self.ignore_eos = ignore_eos

    def make(self, prompt: str, output: int, history: Sequence[dict[str, Any]] = (),
             messages: Sequence[dict[str, Any]] | None = None) -> bytes:
        body = json.loads(self.template.replace('"{{text}}"', json.dumps(prompt)))
        if (messages is not None or history) and not self.chat:
            raise UsageError("chat histories (--turns, a dataset's messages) need a chat body: the "
                             "/v1/chat/completions endpoint, or a --payload-template with messages")
        if messages is not None:
            body["messages"] = list(messages)
        elif history:
            body["messages"] = body["messages"][:-1] + list(history) + body["messages"][-1:]
        if self.ignore_eos:
            body.update(min_tokens=output, ignore_eos=True)
        body = apply_overrides(body, max_tokens=output, **self.overrides)
        return json.dumps(body, separators=(",", ":")).encode()


def _synthetic(w: Workload, n: int, tok: Tokenizer, make: _Bodies, out_default: int, seed: int) -> Built:
    prompt_spec, out_spec = w.specs()
    rng, text_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    n = math.ceil(n / w.turns) * w.turns
    p_len = lengths.draw(prompt_spec, n, rng)
    o_len = lengths.draw(out_spec, n, rng) if out_spec else np.full(n, out_default, dtype=np.int64)
    bodies, classes, intended = [], [], np.zeros(n, dtype=np.int64)
    history: list[dict[str, Any]] = []
    counted = 0
    for i, (p, o) in enumerate(zip(p_len.tolist(), o_len.tolist())):
        turn = i % w.turns
        if turn == 0:
            history, counted = [], 0
        prompt = make_text(tok, p, text_rng)
        bodies.append(make.make(prompt, o, history))
        intended[i] = counted + p
        classes.append(f"turn{turn + 1}" if w.turns > 1 else prompt_spec.kind)
        if w.turns > 1:
            answer = make_text(tok, o, text_rng)
            history = history + [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            counted += p + o
    return Built(bodies, classes, intended, o_len)


def _from_dataset(w: Workload, n: int, tok: Tokenizer, make: _Bodies, out_default: int, seed: int) -> Built:
    assert w.dataset is not None
    ds = datasets.load(w.dataset, w.dataset_columns)
    rows = ds.rows[:max(1, n)]
    prompt_spec, out_spec = w.specs()
    rng, text_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    drawn_p = lengths.draw(prompt_spec, len(rows), rng)
    drawn_o = lengths.draw(out_spec, len(rows), rng) if out_spec else np.full(len(rows), out_default)
    blocks: dict[int, list[int]] = {}

    def block(h: int) -> list[int]:  # the same hash id is the same text in every prompt
        if h not in blocks:
            size = datasets.BLOCK_TOKENS
            blocks[h] = random_ids(tok, size, np.random.default_rng([seed, h]))[:size]
        return blocks[h]

    bodies, p_out, o_out = [], np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        out = row.output_tokens or int(drawn_o[i])
        messages = row.messages
        if messages is not None:
            prompt, p_out[i] = "", _count(tok, messages)
        elif row.prompt is not None:
            prompt = row.prompt
            p_out[i] = len(tok.encode(prompt))
        else:
            p = row.prompt_tokens or int(drawn_p[i])
            prefix = [t for h in row.hash_ids for t in block(h)]
            prompt, p_out[i] = make_text(tok, p, text_rng, prefix), p
        bodies.append(make.make(prompt, out, messages=messages))
        o_out[i] = out
    return Built(bodies, [ds.kind] * len(rows), p_out, o_out)


def build(w: Workload, n_requests: int, template: Any, overrides: dict[str, Any], seed: int = 0,
          pool: int = 4096) -> Built:
    """The bodies of ``w`` for ``n_requests`` sends: a data set's rows (at most one per send),
    else min(n_requests, pool) drawn bodies (whole conversations); request i uses body
    ``i % len(bodies)``. ``template``: the run's base body (``{{text}}`` is the prompt);
    ``overrides``: :func:`~perfkit.bench.payload.apply_overrides` keywords (max_tokens is
    the default output length)."""
    tok = load_tokenizer(w.tokenizer)
    make = _Bodies(template, overrides, w.ignore_eos)
    out_default = int(overrides.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)
    if w.dataset:
        return _from_dataset(w, n_requests, tok, make, out_default, seed)
    return _synthetic(w, max(1, min(int(n_requests), pool)), tok, make, out_default, seed)


def build_for(w: Workload, spec: PayloadSpec, protocol: str, model: str, path: str, overrides: dict[str, Any],
              n_requests: int) -> Built:
    """:func:`build` for a run: its template (``--payload-template``, else the endpoint's
    default body for ``path``), body options (``BenchConfig.body_overrides()``) and seed."""
    template = load_template(spec.template) if spec.template else default_template(protocol, model, None, path)
    return build(w, n_requests, template, overrides, spec.seed, spec.pool)


def link_trace(stage_kw: dict[str, Any], work_kw: dict[str, Any], timing_given: bool) -> None:
    """One Mooncake trace, two uses: ``--dataset TRACE`` alone (no --rate, --pattern or scenario)
    also replays its timestamps; ``--pattern replay --trace TRACE.jsonl`` alone also takes its
    rows as the data set. Fills the flags' keyword dicts in place."""
    dataset, trace = work_kw.get("dataset"), stage_kw.get("trace")
    if dataset and not timing_given and "pattern" not in stage_kw and datasets.is_trace(dataset):
        stage_kw.update(pattern="replay", trace=dataset)
    elif trace and not dataset and str(trace).endswith(".jsonl"):
        work_kw["dataset"] = trace
