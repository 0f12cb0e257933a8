"""Payload size distributions, outliers, templates, JSONL files, reproducibility."""
from __future__ import annotations

import json

import numpy as np
import pytest

from perfkit.bench.payload import PayloadSpec, draw_sizes, generate
from perfkit.errors import InputError, UsageError


def test_normal_sizes_have_the_asked_mean_and_sd():
    sizes, classes = draw_sizes(PayloadSpec("normal", mean=200, sd=30), 20000)
    assert sizes.mean() == pytest.approx(200, rel=0.01)
    assert sizes.std() == pytest.approx(30, rel=0.03)
    assert set(classes) == {"normal"}


def test_longtail_is_lognormal_with_heavy_right_tail():
    sizes, classes = draw_sizes(PayloadSpec("longtail", mean=50, sigma=1.0, max_size=10**9), 20000)
    assert np.median(sizes) == pytest.approx(50, rel=0.05)
    assert np.log(sizes).std() == pytest.approx(1.0, rel=0.05)
    assert np.quantile(sizes, 0.99) > 5 * np.median(sizes)
    assert set(classes) == {"longtail"}


def test_outlier_fraction_is_exact_and_outliers_are_large():
    sizes, classes = draw_sizes(PayloadSpec("outliers", mean=64, sd=8, outlier_fraction=0.05,
                                            outlier_factor=10), 4000)
    out = np.asarray(classes) == "outlier"
    assert out.sum() == 200
    assert np.all(sizes[out] == 640) and sizes[~out].max() < 200


def test_generate_is_reproducible_and_bodies_parse():
    spec = PayloadSpec("normal", mean=64, sd=10, seed=7)
    a, ca = generate(spec, 50)
    b, cb = generate(spec, 50)
    assert a == b and ca == cb
    c, _ = generate(PayloadSpec("normal", mean=64, sd=10, seed=8), 50)
    assert a != c
    body = json.loads(a[0])
    assert body["model_id"] == "demo" and isinstance(body["input_data"], list)
    sizes, _ = draw_sizes(spec, 50)
    assert [len(json.loads(x)["input_data"]) for x in a] == sizes.tolist()


def test_kserve_bodies_are_whole_rows_of_64():
    bodies, _ = generate(PayloadSpec("normal", mean=100, sd=40), 20, protocol="kserve-v2", model="digits")
    for raw in bodies:
        t = json.loads(raw)["inputs"][0]
        assert t["shape"][1] == 64 and len(t["data"]) == t["shape"][0] * 64


def test_template_placeholders(tmp_path):
    tpl = tmp_path / "t.json"
    tpl.write_text('{"prompt": "{{text}}", "n": "{{size}}", "keep": "{{nope}}"}')
    bodies, _ = generate(PayloadSpec("fixed", mean=5, template=str(tpl)), 3)
    obj = json.loads(bodies[0])
    assert obj["n"] == 5 and len(obj["prompt"].split()) == 5 and obj["keep"] == "{{nope}}"


def test_jsonl_cycled_in_order_and_bad_line_named(tmp_path):
    f = tmp_path / "bodies.jsonl"
    f.write_text('{"a": 1}\n\n{"a": 2}\n')
    bodies, classes = generate(PayloadSpec(str(f)), 10)
    assert bodies == [b'{"a":1}', b'{"a":2}'] and classes == ["file", "file"]
    f.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(InputError, match=r"bodies.jsonl:2: not valid JSON"):
        generate(PayloadSpec(str(f)), 10)


def test_values_follow_the_class():
    bodies, classes = generate(PayloadSpec("outliers", mean=200, sd=10, outlier_fraction=0.1, outlier_factor=20), 200)
    vals = {c: np.concatenate([json.loads(b)["input_data"] for b, k in zip(bodies, classes) if k == c])
            for c in ("normal", "outlier")}
    assert vals["normal"].std() == pytest.approx(1.0, rel=0.05)
    assert vals["outlier"].std() == pytest.approx(20.0, rel=0.05)
    bodies, _ = generate(PayloadSpec("longtail", mean=100, sigma=1.0, max_size=10**6), 100)
    v = np.concatenate([json.loads(b)["input_data"] for b in bodies])
    assert v.min() > 0 and np.median(v) == pytest.approx(1.0, rel=0.1) and np.quantile(v, 0.99) > 8


def test_template_inline_json_or_file(tmp_path):
    inline = '{"inputs": [{"data": "{{floats}}", "n": "{{size}}"}]}'
    tpl = tmp_path / "t.json"
    tpl.write_text(inline)
    from_text, _ = generate(PayloadSpec("fixed", mean=4, template=inline), 2)
    from_file, _ = generate(PayloadSpec("fixed", mean=4, template=str(tpl)), 2)
    assert from_text == from_file and json.loads(from_text[0])["inputs"][0]["n"] == 4
    with pytest.raises(InputError, match=r"--payload-template \(inline JSON\):1: not valid JSON"):
        generate(PayloadSpec("fixed", template='{"inputs": '), 1)
    with pytest.raises(UsageError, match="cannot read payload template"):
        generate(PayloadSpec("fixed", template=str(tmp_path / "missing.json")), 1)
