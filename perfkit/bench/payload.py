"""Request bodies, generated before the run so that nothing is encoded on the hot path.

A payload *spec* says how the size (number of elements: floats for http-json and
kserve-v2, prompt words for openai) of each body is drawn (the numbers inside
follow the same class, see :func:`draw_values`):

- ``fixed``: every body has ``mean`` elements (class ``fixed``);
- ``normal``: size ~ Normal(mean, sd), rounded, clipped to [1, max] (class ``normal``);
- ``longtail``: size ~ LogNormal(ln(mean), sigma) (class ``longtail``);
- ``outliers``: Normal bodies, except a fraction ``outlier_fraction`` that are
  ``outlier_factor`` times larger (class ``outlier``);
- a ``.jsonl`` file: one JSON body per line, cycled in order (class ``file``).

A JSON *template* (``--payload-template``, inline JSON or a file) replaces the string placeholders
``"{{floats}}"`` (a list of floats of the drawn size), ``"{{text}}"`` (a string of
that many words), ``"{{size}}"`` (the size as an integer) and ``"{{rows}}"``
(KServe: the size rounded up to whole rows of 64 features, and ``{{floats}}``
padded to match). Everything is
seeded: the same spec and seed give byte-identical bodies.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from perfkit.bench.inputs import read_text
from perfkit.errors import InputError, UsageError

KSERVE_ROW = 64  # features per row of the demo classifier's input tensor
KINDS = ("fixed", "normal", "longtail", "outliers")
DEFAULT_MAX_TOKENS = 64  # openai bodies drawn here, when --max-tokens is not given
_WORDS = ("the quick brown fox jumps over a lazy dog while seven tired engineers measure "
          "tail latency under open loop load and count every token twice").split()


@dataclass(frozen=True)
class PayloadSpec:
    """How bodies are drawn; ``kind`` is one of KINDS or a path to a .jsonl file."""

    kind: str = "fixed"
    mean: float = 64.0            # elements per body (floats, or prompt words)
    sd: float = 16.0              # normal, outliers
    sigma: float = 1.0            # longtail: lognormal sigma
    outlier_fraction: float = 0.01
    outlier_factor: float = 16.0  # outlier size = mean x factor
    max_size: int = 65536         # sizes are clipped to [1, max_size]
    template: str | None = None   # a JSON template: inline JSON or a file's path
    pool: int = 4096              # distinct bodies at most; request i uses body i % pool
    seed: int = 0

    def validate(self) -> None:
        if self.kind not in KINDS and not self.kind.endswith(".jsonl"):
            raise UsageError(f"--payload must be one of {', '.join(KINDS)} or a .jsonl file, got {self.kind!r}")
        if self.mean < 1 or self.sd < 0 or self.sigma < 0:
            raise UsageError("payload mean must be >= 1 and sd, sigma >= 0")
        if not 0 <= self.outlier_fraction <= 1:
            raise UsageError(f"outlier fraction must be in [0, 1], got {self.outlier_fraction}")
        if self.outlier_factor < 1:
            raise UsageError(f"outlier factor must be >= 1, got {self.outlier_factor}")
        if self.pool < 1:
            raise UsageError("payload pool must be >= 1")


def draw_sizes(spec: PayloadSpec, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sizes (int64) and classes (array of str) of ``n`` bodies; pure and seeded."""
    rng = np.random.default_rng(spec.seed)
    hi = spec.max_size
    if spec.kind == "fixed":
        sizes = np.full(n, int(round(spec.mean)), dtype=np.int64)
        classes = np.full(n, "fixed", dtype=object)
    elif spec.kind == "normal":
        sizes = np.rint(rng.normal(spec.mean, spec.sd, n)).astype(np.int64)
        classes = np.full(n, "normal", dtype=object)
    elif spec.kind == "longtail":
        sizes = np.rint(rng.lognormal(np.log(spec.mean), spec.sigma, n)).astype(np.int64)
        classes = np.full(n, "longtail", dtype=object)
    elif spec.kind == "outliers":
        sizes = np.rint(rng.normal(spec.mean, spec.sd, n)).astype(np.int64)
        classes = np.full(n, "normal", dtype=object)
        # Exactly round(f * n) outliers at seeded positions: the fraction is a promise.
        k = int(round(spec.outlier_fraction * n))
        where = rng.choice(n, size=k, replace=False) if k else np.empty(0, dtype=np.int64)
        sizes[where] = np.rint(spec.mean * spec.outlier_factor).astype(np.int64)
        classes[where] = "outlier"
    else:
        raise UsageError(f"payload kind {spec.kind!r} has no size distribution")
    return np.clip(sizes, 1, hi), classes


def draw_values(spec: PayloadSpec, cls: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """The numbers inside one body, following its class like its size does:
    normal/fixed: N(0, 1); longtail: LogNormal(0, sigma) (heavy right tail);
    outlier: N(0, outlier_factor) (extreme values as well as a large body)."""
    if cls == "longtail":
        return rng.lognormal(0.0, spec.sigma, n)
    if cls == "outlier":
        return rng.normal(0.0, spec.outlier_factor, n)
    return rng.normal(0.0, 1.0, n)


def _fill(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, str):
        if node.startswith("{{") and node.endswith("}}") and node[2:-2] in values:
            return values[node[2:-2]]
        return node
    if isinstance(node, list):
        return [_fill(x, values) for x in node]
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    return node


def load_template(source: str | Path) -> Any:
    """A ``--payload-template``: inline JSON (text starting with ``{`` or ``[``) or a JSON file's path."""
    inline = isinstance(source, str) and source.lstrip()[:1] in ("{", "[")
    text = str(source) if inline else read_text(source, "payload template")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = "--payload-template (inline JSON)" if inline else str(source)
        raise InputError(where, exc.lineno, f"not valid JSON: {exc.msg}") from None


def load_jsonl(path: str | Path) -> list[bytes]:
    """Bodies from a JSON-lines file, validated, re-encoded compactly, in file order."""
    lines = read_text(path, "payload file").splitlines()
    bodies = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(str(path), lineno, f"not valid JSON: {exc.msg}") from None
        bodies.append(json.dumps(obj, separators=(",", ":")).encode())
    if not bodies:
        raise InputError(str(path), None, "no JSON lines in payload file")
    return bodies


def is_completions_path(path: str) -> bool:
    """An OpenAI legacy completions endpoint (``.../completions``, not ``.../chat/completions``):
    its body carries ``prompt`` instead of ``messages``."""
    path = path.split("?", 1)[0].rstrip("/")
    return path.endswith("/completions") and not path.endswith("/chat/completions")


def default_template(protocol: str, model: str, max_tokens: int | None = None, path: str = "") -> Any:
    """The body each protocol sends when no template is given; openai follows the target's
    ``path`` (``prompt`` for ``/v1/completions``, ``messages`` otherwise) and streams."""
    if protocol == "kserve-v2":
        return {"inputs": [{"name": "X", "shape": ["{{rows}}", KSERVE_ROW], "datatype": "FP32",
                            "data": "{{floats}}"}]}
    if protocol == "openai":
        prompt: dict[str, Any] = ({"prompt": "{{text}}"} if is_completions_path(path)
                                  else {"messages": [{"role": "user", "content": "{{text}}"}]})
        return {"model": model, **prompt, "stream": True, "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
                "stream_options": {"include_usage": True}}
    return {"input_data": "{{floats}}", "model_id": model}


def apply_overrides(body: Any, *, max_tokens: int | None = None, temperature: float | None = None,
                    top_p: float | None = None, stream: bool | None = None) -> dict[str, Any]:
    """An OpenAI body with the options that were given (None: left as the body has it).

    ``max_tokens`` sets ``max_completion_tokens`` where the body uses it, else ``max_tokens``
    (both when it has both); ``stream=True`` also asks for usage in the stream
    (``stream_options.include_usage``), ``stream=False`` drops ``stream_options`` (OpenAI
    refuses it on a plain answer). Returns a new dict; a body that is not a JSON object
    cannot take them (UsageError)."""
    if not isinstance(body, dict):
        raise UsageError(f"--max-tokens/--temperature/--top-p/--stream need JSON-object bodies, "
                         f"got a {type(body).__name__}")
    out = dict(body)
    if max_tokens is not None:
        keys = [k for k in ("max_tokens", "max_completion_tokens") if k in out] or ["max_tokens"]
        out.update(dict.fromkeys(keys, max_tokens))
    if temperature is not None:
        out["temperature"] = temperature
    if top_p is not None:
        out["top_p"] = top_p
    if stream is True:
        options = out.get("stream_options")
        out["stream"] = True
        out["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    elif stream is False:
        out["stream"] = False
        out.pop("stream_options", None)
    return out


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def generate(spec: PayloadSpec, n_requests: int, protocol: str = "http-json", model: str = "demo",
             max_tokens: int | None = None, *, path: str = "",
             overrides: Mapping[str, Any] | None = None) -> tuple[list[bytes], list[str]]:
    """A pool of encoded bodies and their classes; request i uses body ``i % len(pool)``.

    The pool holds min(n_requests, spec.pool) bodies, so its size distribution is
    the requests' distribution. ``overrides`` (:func:`apply_overrides` keywords, openai)
    are applied to every body: drawn, templated or read from a file.
    """
    spec.validate()
    if spec.kind.endswith(".jsonl"):
        bodies = load_jsonl(spec.kind)
        if overrides:
            bodies = [_encode(apply_overrides(json.loads(b), **overrides)) for b in bodies]
        return bodies, ["file"] * len(bodies)
    n = max(1, min(int(n_requests), spec.pool))
    sizes, classes = draw_sizes(spec, n)
    template = (load_template(spec.template) if spec.template
                else default_template(protocol, model, max_tokens, path))
    rng = np.random.default_rng(spec.seed + 1)
    bodies = []
    for size, cls in zip(sizes.tolist(), classes.tolist()):
        rows = -(-size // KSERVE_ROW)
        n_floats = rows * KSERVE_ROW if protocol == "kserve-v2" else size
        floats = np.round(draw_values(spec, str(cls), n_floats, rng), 4).tolist()
        text = " ".join(_WORDS[j] for j in rng.integers(0, len(_WORDS), size).tolist())
        body = _fill(template, {"floats": floats, "text": text, "size": size, "rows": rows})
        bodies.append(_encode(apply_overrides(body, **overrides) if overrides else body))
    return bodies, [str(c) for c in classes]
