"""Pure parts of the demo server: payload shaping, batch assembly, stall schedule, sampling."""
from __future__ import annotations

import numpy as np
import pytest

from perfkit.demo.batcher import assemble
from perfkit.demo.charlm import VOCAB, decode, encode, sample
from perfkit.demo.faults import ErrorInjector, parse_stall, stall_remaining_s
from perfkit.demo.metrics import power_of_two_buckets
from perfkit.demo.model import FEATURES, PayloadError, rows_from_input
from perfkit.demo.openai_api import chat_prompt, parse_request
from perfkit.demo.options import DemoOptions, is_loopback
from perfkit.errors import UsageError


def test_rows_from_flat_list_pads_the_last_row():
    rows = rows_from_input([1.0] * 65)
    assert rows.shape == (2, FEATURES) and rows.dtype == np.float32
    assert rows[1, 0] == 1.0 and rows[1, 1:].sum() == 0


def test_rows_from_row_lists_pad_each_row():
    rows = rows_from_input([[1, 2], [3] * FEATURES])
    assert rows.shape == (2, FEATURES)
    assert rows[0, :3].tolist() == [1, 2, 0]


@pytest.mark.parametrize("payload, needle", [
    ({"a": 1}, "non-empty list"),
    ([True], "input_data[0] is bool"),
    ([1, [2]], "mixes numbers and rows"),
    ([[1] * (FEATURES + 1)], "expected 1..64"),
    ([1e300], "not a finite float32"),
    ([float("nan")], "input_data[0] is not a finite"),
])
def test_rows_from_input_rejects_with_the_position(payload, needle):
    with pytest.raises(PayloadError) as info:
        rows_from_input(payload)
    assert needle in str(info.value)


def test_assemble_fixed_pads_to_max_batch_slots():
    a, b = np.ones((1, 4), np.float32), np.full((3, 4), 2, np.float32)
    batch, offsets, padding = assemble([a, b], "fixed", 4)
    assert batch.shape == (12, 4) and offsets == [0, 3] and padding == 8
    assert (batch[3:6] == 2).all() and (batch[1:3] == 0).all()


def test_assemble_dynamic_concatenates():
    a, b = np.ones((1, 4), np.float32), np.full((3, 4), 2, np.float32)
    batch, offsets, padding = assemble([a, b], "dynamic", 4)
    assert batch.shape == (4, 4) and offsets == [0, 1] and padding == 0


def test_stall_schedule():
    assert stall_remaining_s(0.5, 10, 1) == 0.0  # no stall before the first period ends
    assert stall_remaining_s(10.25, 10, 1) == pytest.approx(0.75)
    assert stall_remaining_s(11.0, 10, 1) == 0.0
    assert stall_remaining_s(29.5, 10, 1) == 0.0
    assert stall_remaining_s(30.0, 10, 1) == pytest.approx(1.0)


def test_uniform_arrival_in_a_stall_waits_half_of_it_on_average():
    arrivals = np.random.default_rng(0).uniform(20.0, 22.0, 20_000)  # period 20 s, stall 2 s
    waits = np.array([stall_remaining_s(t, 20.0, 2.0) for t in arrivals])
    assert waits.min() > 0 and waits.max() <= 2.0
    assert waits.mean() == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("text", ["5", "a:b", "0:1", "2:2", "3:-1", "inf:1", "1:2:3"])
def test_parse_stall_rejects(text):
    with pytest.raises(UsageError, match="--stall"):
        parse_stall(text)


def test_parse_stall_accepts():
    assert parse_stall("10:0.5") == (10.0, 0.5)


def test_error_injector_is_seeded_and_near_its_rate():
    first = ErrorInjector(0.2, seed=7)
    second = ErrorInjector(0.2, seed=7)
    draws = [first.should_fail() for _ in range(5000)]
    assert draws == [second.should_fail() for _ in range(5000)]
    # binomial: mean 1000, sd ~28; 5 sd either way
    assert 860 < sum(draws) < 1140


def test_power_of_two_buckets():
    assert power_of_two_buckets(16) == (1, 2, 4, 8, 16)
    assert power_of_two_buckets(12) == (1, 2, 4, 8, 12)
    assert power_of_two_buckets(1) == (1,)


def test_tokenizer_round_trip_and_unknowns():
    assert decode(encode("Hello\nworld")) == "Hello\nworld"
    assert decode(encode("café")) == "caf?"
    assert len(encode("abc")) == 3 and len(VOCAB) == 96


def test_sample_greedy_and_inverse_cdf():
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]))
    tokens = sample(logits, np.array([True, False]), np.array([0.0, 0.6]))
    assert tokens.tolist() == [2, 1]
    draws = sample(np.repeat(logits[1:], 20_000, axis=0), np.zeros(20_000, bool),
                   np.random.default_rng(0).random(20_000))
    assert np.bincount(draws, minlength=3) / 20_000 == pytest.approx([0.5, 0.25, 0.25], abs=0.02)


def test_chat_prompt_and_request_parsing():
    prompt = chat_prompt([{"role": "user", "content": "hi"}])
    assert prompt == "user: hi\nassistant:"
    params = parse_request({"prompt": "x", "max_tokens": 5, "stream": True,
                            "stream_options": {"include_usage": True}}, "completion", 100)
    assert params["max_tokens"] == 5 and params["include_usage"] and params["stream"]
    assert parse_request({"prompt": "x"}, "completion", 100)["max_tokens"] == 16


@pytest.mark.parametrize("body, needle", [
    ({"prompt": 3}, "'prompt' must be a string"),
    ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "x", "max_tokens": 1000}, "1..100"),
    ({"prompt": "x", "temperature": 3}, "temperature"),
    ({"prompt": "x", "stop": ["\n"]}, "stop sequences"),
    ({"prompt": "x", "n": 2}, "n > 1"),
])
def test_parse_request_rejects(body, needle):
    with pytest.raises(Exception) as info:
        parse_request(body, "completion", 100)
    assert needle in str(info.value) and info.value.status == 400


def test_options_validation():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("10.0.0.1") and not is_loopback("example.com")
    DemoOptions(host="10.0.0.1", allow_remote=True).validate()
    with pytest.raises(UsageError, match="--llm-batching"):
        DemoOptions(llm_batching="eager").validate()
    assert DemoOptions(batch_timeout_ms=4).fixed_wait_s == pytest.approx(0.04)


def test_windowed_prefill_equals_the_full_prompt_state():
    from perfkit.demo.charlm import PREFILL_WINDOW, load_charlm, training_text

    model, _, _ = load_charlm(256)
    text = encode(training_text()[5000:5400])
    full = model.prefill([text], window=None)
    windowed = model.prefill([text, text[-10:]])
    assert np.abs(full[0] - windowed[0]).max() < 1e-4
    assert len(text) > PREFILL_WINDOW
    short_alone = model.prefill([text[-10:]], window=None)
    assert np.allclose(windowed[1], short_alone[0], atol=1e-6)  # batching by position is exact


def test_cache_builds_once_and_keys_by_recipe(tmp_path, monkeypatch):
    from perfkit.demo.cache import cached_file, recipe_key

    monkeypatch.setenv("PERFKIT_CACHE_DIR", str(tmp_path))
    calls = []

    def build() -> bytes:
        calls.append(1)
        return b"model bytes"

    path, built = cached_file("m-1.bin", build)
    again, built_again = cached_file("m-1.bin", build)
    assert built and not built_again and path == again and len(calls) == 1
    assert path.read_bytes() == b"model bytes" and path.parent == tmp_path
    assert not list(tmp_path.glob("*.tmp"))
    assert recipe_key({"a": 1, "b": [2]}) == recipe_key({"b": [2], "a": 1})
    assert recipe_key({"a": 1}) != recipe_key({"a": 2})


def test_model_build_is_reproducible(tmp_path, monkeypatch):
    from perfkit.demo.model import digits_sample, load_model

    monkeypatch.setenv("PERFKIT_CACHE_DIR", str(tmp_path))
    first = load_model((16,))
    assert first.built_now
    rows = np.asarray(digits_sample(50), dtype=np.float32)
    labels, probabilities = first.predict(rows)
    (tmp_path / first.path.split("/")[-1]).unlink()
    second = load_model((16,))
    assert second.built_now  # rebuilt from the recipe: same seeds, same answers
    labels2, probabilities2 = second.predict(rows)
    assert (labels == labels2).all() and np.allclose(probabilities, probabilities2)
    assert probabilities.shape == (50, 10)
