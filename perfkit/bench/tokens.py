"""Tokenizers for token-true LLM workloads, and prompts of an exact token count.

A :class:`Tokenizer` turns text into ids and back. Two kinds:

- :class:`CharTokenizer`, the default: the demo model's own (``perfkit-char-lm``, one token
  per character, :mod:`perfkit.demo.charlm`), so that lengths asked of the demo are the
  lengths it reports in ``usage``;
- :class:`HFTokenizer`: a Hugging Face ``tokenizer.json`` (or a directory holding one), the
  file every model repository ships, read with the ``tokenizers`` library (imported only
  when asked for: ``pip install 'perfkit[llm]'``).

:func:`make_text` builds text of exactly ``n`` tokens: seeded random words, encoded,
cut to ``n`` ids, decoded and re-encoded; where a tokenizer merges differently across the
cut (BPE), the cut moves by the difference until the re-encoded count is ``n``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from perfkit.errors import UsageError

CHAR_TOKENIZER = "perfkit-char-lm"
# Plain words of everyday English: every real tokenizer knows them, and a test tokenizer
# trained on CORPUS (below) knows all of them.
WORDS = ("the a of and to in is that it for on with as was at by this from be have or an are but not "
         "time year people way day man thing woman life child world school state family student group "
         "country problem hand part place case week company system program question work government "
         "number night point home water room mother area money story fact month lot right study book "
         "eye job word business issue side kind head house service friend father power hour game line "
         "end member law car city community name president team minute idea kid body information back "
         "parent face others level office door health person art war history party result change morning "
         "reason research girl guy moment air teacher force education").split()
CORPUS = " ".join(WORDS)
MAX_FIT_STEPS = 16


class Tokenizer(Protocol):
    """What a workload needs of a tokenizer."""

    name: str

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, no special tokens added."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``."""
        ...


class CharTokenizer:
    """The demo LLM's tokenizer: one id per character (:func:`perfkit.demo.charlm.encode`)."""

    name = CHAR_TOKENIZER

    def encode(self, text: str) -> list[int]:
        from perfkit.demo import charlm

        return charlm.encode(text).tolist()

    def decode(self, ids: Sequence[int]) -> str:
        from perfkit.demo import charlm

        return charlm.decode(ids)


class HFTokenizer:
    """A Hugging Face fast tokenizer read from ``tokenizer.json``."""

    def __init__(self, path: str | Path):
        p = Path(path)
        file = p / "tokenizer.json" if p.is_dir() else p
        if not file.is_file():
            raise UsageError(f"--tokenizer {path}: no such file (give a tokenizer.json or a directory holding one)")
        try:
            from tokenizers import Tokenizer as _HF
        except ImportError:
            raise UsageError("--tokenizer needs the 'tokenizers' package: pip install 'perfkit[llm]'") from None
        try:
            self._tok: Any = _HF.from_file(str(file))
        except Exception as exc:  # the library raises a bare Exception on a malformed file
            raise UsageError(f"--tokenizer {file}: not a tokenizer.json: {str(exc)[:200]}") from None
        self.name = str(file)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=True))


def load_tokenizer(path: str | None) -> Tokenizer:
    """``--tokenizer PATH`` (None or ``perfkit-char-lm``: the demo model's own)."""
    if path is None or path == CHAR_TOKENIZER:
        return CharTokenizer()
    return HFTokenizer(path)


def random_words(rng: np.random.Generator, n_words: int) -> str:
    """``n_words`` seeded words of :data:`WORDS`, space separated."""
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), max(1, n_words)).tolist())


def fit(tok: Tokenizer, ids: Sequence[int], n: int) -> str:
    """Text whose encoding has exactly ``n`` tokens, from the first ids of ``ids`` (which
    must hold more than ``n``): cut, decode, re-encode, move the cut by the difference.
    Where no cut gives exactly ``n`` (a rare merge cycle), the nearest is returned."""
    cut = n
    best: tuple[int, str] | None = None
    for _ in range(MAX_FIT_STEPS):
        text = tok.decode(ids[:cut])
        got = len(tok.encode(text))
        if got == n:
            return text
        if best is None or abs(got - n) < best[0]:
            best = (abs(got - n), text)
        cut = min(max(1, cut + n - got), len(ids))
    assert best is not None
    return best[1]


def random_ids(tok: Tokenizer, n: int, rng: np.random.Generator, prefix: Sequence[int] = ()) -> list[int]:
    """More than ``n`` ids: ``prefix``, then the encoding of seeded random words, drawn in
    chunks sized by the tokens per word measured so far (6 at first: characters)."""
    ids = list(prefix)
    per_word = 6.0
    while len(ids) <= n + 8:
        words = max(8, math.ceil((n + 9 - len(ids)) / per_word * 1.2))
        chunk = tok.encode((" " if ids else "") + random_words(rng, words))
        per_word = max(0.25, len(chunk) / words)
        ids += chunk
    return ids


def make_text(tok: Tokenizer, n: int, rng: np.random.Generator, prefix: Sequence[int] = ()) -> str:
    """Text of exactly ``n`` tokens: ``prefix`` ids first (shared prefixes, e.g. a trace's
    blocks), then seeded random words."""
    return fit(tok, random_ids(tok, n, rng, prefix), n)
