"""The LLM serving engine: a decode loop over the char model with continuous or static batching.

One engine task runs the loop; each iteration (a *step*):

1. admits waiting sequences: ``continuous`` admits up to ``max_batch`` running at
   every step (a new request joins the running batch at the next step); ``static``
   admits a new batch only when the previous one has completely finished, so new
   arrivals wait for the slowest sequence of the batch in front of them;
2. prefills the admitted prompts (the recurrence over their characters, batched);
3. decodes ONE token for every running sequence in one batched forward pass
   (read-out, sampling, state update) and hands each token to its request.

Compute runs in one worker thread, so the event loop keeps streaming meanwhile;
each step passes the stall gate first, so a stall freezes generation as well.
"""
from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, cast

import numpy as np

from perfkit.demo.batcher import QueueFull
from perfkit.demo.charlm import CharLM, decode, load_charlm, sample
from perfkit.demo.metrics import DemoMetrics
from perfkit.demo.options import DemoOptions
from perfkit.demo.worker import LoopWorker

log = logging.getLogger("perfkit.demo.llm")


@dataclass
class Token:
    """One generated token (``text``), or the end of a sequence (``finish_reason`` set)."""

    text: str
    finish_reason: str | None = None


@dataclass
class Sequence:
    """One generation request inside the engine."""

    prompt_ids: np.ndarray
    max_tokens: int
    temperature: float
    rng: np.random.Generator
    arrival: float = field(default_factory=time.monotonic)
    out: asyncio.Queue = field(default_factory=asyncio.Queue)
    generated: int = 0
    first_token_at: float | None = None
    admitted_at: float | None = None
    cancelled: bool = False
    state: np.ndarray | None = None

    @property
    def prompt_tokens(self) -> int:
        return int(len(self.prompt_ids))


class LLMEngine(LoopWorker):
    """Admission, batched prefill/decode, and per-sequence token queues."""

    def __init__(self, model: CharLM, *, batching: str, max_batch: int, max_waiting: int,
                 description: str, seed: int = 0) -> None:
        if batching not in ("continuous", "static"):
            raise ValueError(f"llm batching {batching!r}")
        super().__init__("llm")
        self.model = model
        self.batching = batching
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self.description = description
        self._seed = seed
        self._counter = itertools.count()
        self.waiting: collections.deque[Sequence] = collections.deque()
        self.running: list[Sequence] = []
        self._wake = asyncio.Event()
        self.metrics: DemoMetrics | None = None
        self.gate: Callable[[], Awaitable[None]] | None = None

    @classmethod
    def load(cls, options: DemoOptions) -> "LLMEngine":
        model, path, built_now = load_charlm(options.llm_hidden, options.threads)
        source = "built" if built_now else "cached"
        description = (f"char echo-state LM hidden {model.hidden}, vocab {model.w_in.shape[0]}, "
                       f"held-out next-char accuracy {model.heldout_accuracy:.2f} "
                       f"({source}: {path}); batching {options.llm_batching} "
                       f"max-batch {options.llm_max_batch}")
        return cls(model, batching=options.llm_batching, max_batch=options.llm_max_batch,
                   max_waiting=options.llm_max_waiting, description=description,
                   seed=options.seed)

    def attach(self, metrics: DemoMetrics, gate: Callable[[], Awaitable[None]]) -> None:
        self.metrics, self.gate = metrics, gate

    def start(self) -> None:
        """Start the decode loop on the running event loop."""
        self._wake = asyncio.Event()  # bound to this loop
        super().start()

    def new_sequence(self, prompt_ids: np.ndarray, max_tokens: int, temperature: float,
                     seed: int | None, arrival: float) -> Sequence:
        """A sequence with its own RNG: the request's ``seed``, else (server seed, counter)."""
        rng = np.random.default_rng(seed if seed is not None
                                    else (self._seed, next(self._counter)))
        return Sequence(prompt_ids=prompt_ids, max_tokens=max_tokens,
                        temperature=temperature, rng=rng, arrival=arrival)

    def submit(self, sequence: Sequence) -> None:
        """Queue a sequence for admission; QueueFull when ``max_waiting`` are waiting."""
        if len(self.waiting) >= self.max_waiting:
            raise QueueFull(f"LLM queue full ({self.max_waiting} sequences waiting)")
        self.waiting.append(sequence)
        assert self.metrics is not None
        self.metrics.llm_prompt_tokens.inc(sequence.prompt_tokens)
        self.metrics.llm_waiting.set(len(self.waiting))
        self._wake.set()

    def _admit(self) -> list[Sequence]:
        if self.batching == "static" and self.running:
            return []
        admitted: list[Sequence] = []
        while self.waiting and len(self.running) + len(admitted) < self.max_batch:
            sequence = self.waiting.popleft()
            if not sequence.cancelled:
                admitted.append(sequence)
        return admitted

    def _compute(self, admitted: list[Sequence], running: list[Sequence]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Worker thread: prefill the admitted, then one decode step for all running."""
        model = self.model
        if admitted:
            states = model.prefill([s.prompt_ids for s in admitted])
            for sequence, state in zip(admitted, states):
                sequence.state = state
        states = np.stack([cast(np.ndarray, s.state) for s in running])  # all prefilled
        temperature = np.array([max(s.temperature, 1e-6) for s in running])
        greedy = np.array([s.temperature == 0 for s in running])
        uniforms = np.array([s.rng.random() for s in running])
        tokens = sample(model.logits(states, temperature), greedy, uniforms)
        new_states = model.advance(states, tokens)
        return tokens, new_states

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.metrics is not None and self.gate is not None
        m = self.metrics
        while True:
            self.running = [s for s in self.running if not s.cancelled]
            if not self.running and not self.waiting:
                m.llm_running.set(0)
                self._wake.clear()
                await self._wake.wait()
                continue
            await self.gate()
            admitted = self._admit()
            now = time.monotonic()
            for sequence in admitted:
                sequence.admitted_at = now
            self.running.extend(admitted)
            m.llm_waiting.set(len(self.waiting))
            m.llm_running.set(len(self.running))
            if not self.running:
                continue
            running = list(self.running)
            started = time.monotonic()
            try:
                tokens, new_states = await loop.run_in_executor(
                    self._executor, self._compute, admitted, running)
            except Exception:  # a bug in the model code: end these sequences, keep serving
                log.exception("LLM step failed; ending %d sequences", len(running))
                for sequence in running:
                    sequence.out.put_nowait(Token("", "error"))
                self.running = []
                continue
            now = time.monotonic()
            m.llm_step.observe(now - started)
            m.llm_step_batch.observe(len(running))
            m.llm_tokens.inc(len(running))
            for sequence, token, state in zip(running, tokens, new_states):
                sequence.state = state
                sequence.generated += 1
                if sequence.first_token_at is None:
                    sequence.first_token_at = now
                    m.llm_ttft.observe(now - sequence.arrival)
                finished = sequence.generated >= sequence.max_tokens
                sequence.out.put_nowait(Token(decode([token]), "length" if finished else None))
                if finished:
                    self.running.remove(sequence)
                    if sequence.generated > 1:
                        m.llm_tpot.observe((now - sequence.first_token_at)
                                           / (sequence.generated - 1))
