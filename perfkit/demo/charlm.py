"""The demo language model: a character-level echo-state network (reservoir RNN).

What it is: a recurrent network whose state ``s`` (``hidden`` floats) is updated per
character ``c`` as ``s <- tanh(W_in[c] + s @ W_res + b)``, with ``W_in``, ``W_res``
and ``b`` drawn from a seeded RNG (``W_res`` scaled to spectral radius 0.9, the
echo-state property), and a linear read-out ``scores = s @ W_out + b_out`` fitted by
ridge regression (closed form, no iterations) to predict the next character.
A single scale ``beta`` turning scores into logits is then fitted by maximum
likelihood (``scipy.optimize.minimize_scalar``), so ``softmax(beta * scores / T)``
is a calibrated next-character distribution at temperature ``T``.

The training text ships offline: the DESCR documents of scikit-learn's bundled data
sets (``sklearn/datasets/descr/*.rst``, about 43 KB), whitespace-normalised. The
tokenizer is one token per character over printable ASCII plus newline; any other
character maps to ``?``. Prompt and completion tokens are counted with it.

Serving runs the recurrence as a small ONNX graph (Gather, MatMul, Add, Tanh) in
onnxruntime with one thread; the read-out and sampling are numpy.

Cost: one decode step for B sequences is one ``[B, H] @ [H, H]`` matrix product plus
the ``[B, H] @ [H, V]`` read-out, so ``hidden`` (``--llm-hidden``) is the per-token
compute knob, as model size is for a real LLM. At the default 3072 the recurrent
matrix (36 MB) outgrows the CPU cache, so a step is memory-bound and costs nearly the
same for 1 or 8 sequences (about 1.3 and 2.2 ms on the 2-core dev box), as LLM
decoding does on a GPU. Prefill runs the same recurrence over each prompt's
characters (the last 48: older ones have faded out of the state, see
``CharLM.prefill``), so time to first token grows with prompt length up to 48
characters (about 60 ms at 3072), and a joining prompt delays the running batch's
next step. Building costs O(train_chars * hidden^2): about 5 s on one core up to
hidden 2048 (30,000 training characters); above 2048 the training text shrinks as
1/hidden^2, down to 6,000 characters, to keep that bound. The model is cached under
``data/cache/`` keyed by recipe and library versions.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perfkit.demo.cache import cached_file, recipe_key

VOCAB = ["\n"] + [chr(code) for code in range(32, 127)]
UNKNOWN = "?"
_INDEX = {char: i for i, char in enumerate(VOCAB)}
TRAIN_CHARS = 30_000  # at hidden <= 2048; fewer above, so building stays ~O(2048^2 * 30k)
MIN_TRAIN_CHARS = 6_000
STREAMS = 256
WASHOUT = 20
RIDGE = 1.0
SPECTRAL_RADIUS = 0.9
PREFILL_WINDOW = 48  # characters of a prompt that still move the state (fading memory)


def encode(text: str) -> np.ndarray:
    """Token ids of ``text`` (one per character; unknown characters become ``?``)."""
    unknown = _INDEX[UNKNOWN]
    return np.fromiter((_INDEX.get(char, unknown) for char in text), dtype=np.int64,
                       count=len(text))


def decode(ids: Any) -> str:
    return "".join(VOCAB[int(i)] for i in ids)


def training_text() -> str:
    """The offline corpus: scikit-learn's data-set descriptions, whitespace-normalised."""
    import sklearn.datasets

    descr = Path(sklearn.datasets.__file__).parent / "descr"
    text = "\n\n".join(path.read_text(encoding="utf-8") for path in sorted(descr.glob("*.rst")))
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n[ ]+", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text


def train_chars(hidden: int) -> int:
    """Characters of the corpus to train on: all 30k up to hidden 2048, fewer above."""
    return max(MIN_TRAIN_CHARS, min(TRAIN_CHARS, int(TRAIN_CHARS * (2048 / hidden) ** 2)))


def _recipe(hidden: int) -> dict[str, Any]:
    from importlib.metadata import version

    return {"model": "char-esn", "hidden": hidden, "train_chars": train_chars(hidden),
            "streams": STREAMS, "washout": WASHOUT, "ridge": RIDGE,
            "spectral_radius": SPECTRAL_RADIUS, "seed": 0, "numpy": np.__version__,
            "scipy": version("scipy"), "sklearn": version("scikit-learn"), "recipe_version": 1}


@dataclass
class CharLM:
    """Weights of the trained char model and its batched recurrence."""

    w_in: np.ndarray    # [V, H]
    w_res: np.ndarray   # [H, H]
    bias: np.ndarray    # [H]
    w_out: np.ndarray   # [H, V]
    b_out: np.ndarray   # [V]
    beta: float
    heldout_accuracy: float = 0.0
    session: Any = field(default=None, repr=False)  # onnxruntime recurrence, see serve()

    @property
    def hidden(self) -> int:
        return int(self.w_res.shape[0])

    def serve(self, threads: int = 1) -> "CharLM":
        """Run the recurrence in onnxruntime from now on (an in-memory ONNX graph of it).

        For the small batches of decoding (2..16 rows), onnxruntime's MatMul beats
        numpy's BLAS, which repacks the whole ``[H, H]`` matrix on every call (1.7x at
        batch 8, on par at batch 1: ``benchmarks/demo_batching.py``).
        """
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        hidden = self.hidden
        nodes = [helper.make_node("Gather", ["w_in", "tokens"], ["embedded"], axis=0),
                 helper.make_node("MatMul", ["states", "w_res"], ["recurrent"]),
                 helper.make_node("Add", ["embedded", "recurrent"], ["summed"]),
                 helper.make_node("Add", ["summed", "bias"], ["pre"]),
                 helper.make_node("Tanh", ["pre"], ["new_states"])]
        graph = helper.make_graph(
            nodes, "char_esn_step",
            [helper.make_tensor_value_info("states", TensorProto.FLOAT, [None, hidden]),
             helper.make_tensor_value_info("tokens", TensorProto.INT64, [None])],
            [helper.make_tensor_value_info("new_states", TensorProto.FLOAT, [None, hidden])],
            [numpy_helper.from_array(self.w_in, "w_in"),
             numpy_helper.from_array(self.w_res, "w_res"),
             numpy_helper.from_array(self.bias, "bias")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        return self

    def initial_states(self, count: int) -> np.ndarray:
        return np.zeros((count, self.hidden), dtype=np.float32)

    def advance(self, states: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Feed one token to each of ``B`` sequences: new ``[B, H]`` states."""
        if self.session is not None:
            return self.session.run(None, {"states": np.ascontiguousarray(states, np.float32),
                                           "tokens": np.asarray(tokens, np.int64)})[0]
        return np.tanh(self.w_in[tokens] + states @ self.w_res + self.bias)

    def prefill(self, prompts: list[np.ndarray], window: int | None = PREFILL_WINDOW
                ) -> np.ndarray:
        """Run each prompt through the recurrence, batched by position: ``[B, H]`` states.

        Only the last ``window`` characters are run (None: all of them): the
        echo-state property makes older input fade geometrically, and at 48
        characters the state equals the full-prompt state to float32 precision
        (~1e-6; tested), so prompts of any length cost at most 48 steps.
        """
        if window is not None:
            prompts = [p[-window:] for p in prompts]
        states = self.initial_states(len(prompts))
        lengths = np.array([len(p) for p in prompts])
        for position in range(int(lengths.max(initial=0))):
            active = np.flatnonzero(lengths > position)
            tokens = np.array([prompts[i][position] for i in active])
            states[active] = self.advance(states[active], tokens)
        return states

    def logits(self, states: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        """``[B, V]`` logits at each sequence's temperature (> 0)."""
        scores = states @ self.w_out + self.b_out
        return scores * (self.beta / temperature[:, None])

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, w_in=self.w_in, w_res=self.w_res, bias=self.bias, w_out=self.w_out,
                 b_out=self.b_out, beta=np.array(self.beta),
                 heldout_accuracy=np.array(self.heldout_accuracy))
        return buffer.getvalue()

    @classmethod
    def from_file(cls, path: str | Path) -> "CharLM":
        with np.load(path) as data:
            return cls(w_in=data["w_in"], w_res=data["w_res"], bias=data["bias"],
                       w_out=data["w_out"], b_out=data["b_out"], beta=float(data["beta"]),
                       heldout_accuracy=float(data["heldout_accuracy"]))


def sample(logits: np.ndarray, greedy: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One token per row: argmax where ``greedy``, else inverse-CDF with ``uniforms``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative /= cumulative[:, -1:]
    drawn = (cumulative < uniforms[:, None]).sum(axis=1)
    drawn = np.minimum(drawn, logits.shape[1] - 1)
    return np.where(greedy, logits.argmax(axis=1), drawn)


def train(hidden: int) -> CharLM:
    """Build the model from the offline corpus with fixed seeds (see module docs)."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(0)
    vocab = len(VOCAB)
    w_in = (rng.standard_normal((vocab, hidden)) * 0.5).astype(np.float32)
    w_res = rng.standard_normal((hidden, hidden)).astype(np.float32)
    vector = rng.standard_normal(hidden).astype(np.float32)
    for _ in range(50):  # power iteration: the spectral radius of w_res
        vector = w_res @ vector
        vector /= np.linalg.norm(vector)
    w_res *= SPECTRAL_RADIUS / float(np.linalg.norm(w_res @ vector))
    bias = (rng.standard_normal(hidden) * 0.1).astype(np.float32)
    model = CharLM(w_in, w_res, bias, np.zeros((hidden, vocab), np.float32),
                   np.zeros(vocab, np.float32), 1.0)

    ids = encode(training_text())[:train_chars(hidden) + STREAMS]
    steps = len(ids) // STREAMS - 1
    streams = ids[:STREAMS * (steps + 1)].reshape(STREAMS, steps + 1)  # contiguous chunks
    states = model.initial_states(STREAMS)
    features = np.empty((steps, STREAMS, hidden), dtype=np.float32)
    for t in range(steps):
        states = model.advance(states, streams[:, t])
        features[t] = states
    phi = features[WASHOUT:].reshape(-1, hidden)
    targets = streams[:, WASHOUT + 1:steps + 1].T.reshape(-1)
    n_train = int(len(phi) * 0.9)
    phi_train = np.hstack([phi[:n_train], np.ones((n_train, 1), np.float32)])
    onehot = np.zeros((n_train, vocab), np.float32)
    onehot[np.arange(n_train), targets[:n_train]] = 1.0
    gram = (phi_train.T @ phi_train).astype(np.float64)
    gram[np.diag_indices(hidden)] += RIDGE  # the bias column is not penalised
    weights = np.linalg.solve(gram, (phi_train.T @ onehot).astype(np.float64)).astype(np.float32)
    model.w_out, model.b_out = weights[:hidden], weights[hidden]

    scores = phi[:n_train] @ model.w_out + model.b_out
    rows = np.arange(n_train)

    def nll(beta: float) -> float:
        z = scores * beta
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[rows, targets[:n_train]] - np.log(np.exp(z).sum(axis=1))).mean())

    model.beta = float(minimize_scalar(nll, bounds=(0.1, 200.0), method="bounded").x)
    heldout = phi[n_train:] @ model.w_out + model.b_out
    model.heldout_accuracy = float((heldout.argmax(axis=1) == targets[n_train:]).mean())
    return model


def load_charlm(hidden: int, threads: int = 1) -> tuple[CharLM, str, bool]:
    """The cached model for ``hidden`` (built first if missing), its recurrence in
    onnxruntime: (model, path, built_now)."""
    key = recipe_key(_recipe(hidden))
    path, built_now = cached_file(f"char-esn-h{hidden}-{key}.npz",
                                  lambda: train(hidden).to_bytes())
    return CharLM.from_file(path).serve(threads), str(path), built_now
