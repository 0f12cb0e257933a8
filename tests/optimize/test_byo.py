"""Bring your own model: a user's ONNX classifier and .npz test set go through the same variants and scoring."""
from __future__ import annotations

import numpy as np
import pytest

from perfkit.errors import UsageError
from perfkit.optimize import byo


@pytest.fixture(scope="module")
def user_model(tmp_path_factory):
    """A wine MLP (not the demo's digits) exported by skl2onnx, its test rows in an .npz without calibration."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_wine
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path_factory.mktemp("byo")
    x, y = load_wine(return_X_y=True)
    x = x.astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:110], order[110:]
    clf = MLPClassifier(hidden_layer_sizes=(256,), max_iter=800, random_state=0)
    pipeline = make_pipeline(StandardScaler(), clf).fit(x[train], y[train])
    model = folder / "wine.onnx"
    model.write_bytes(to_onnx(pipeline, x[:1], options={id(clf): {"zipmap": False}}).SerializeToString())
    np.savez(folder / "wine.npz", inputs=x[test], labels=y[test])
    return model, folder / "wine.npz"


def test_users_model_gets_its_variants_scored_on_unseen_rows(user_model):
    model, npz = user_model
    test_set = byo.load_test_set(npz)
    assert len(test_set.calibration) + len(test_set.inputs) == 68  # a quarter calibrates and is not scored
    table = byo.evaluate(model, test_set, edge_cap_mb=None)
    assert table["variant"].tolist() == list(byo.BYO_VARIANTS)
    assert (table["note"] == "").all() and (table["tested"] == len(test_set.labels)).all()
    assert (table["accuracy"] > 0.8).all()  # three classes: chance is about 0.33
    assert table.set_index("variant").loc["int8-dynamic", "size_ratio"] < 1.0


def test_a_test_set_without_labels_is_a_usage_error(tmp_path):
    np.savez(tmp_path / "bad.npz", inputs=np.zeros((4, 3)))
    with pytest.raises(UsageError, match="no array labels"):
        byo.load_test_set(tmp_path / "bad.npz")
