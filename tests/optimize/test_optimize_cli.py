"""``perfkit optimize`` flags; the served variant and notebook 08 end to end (slow)."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from perfkit.cli import main
from perfkit.optimize import variants
from perfkit.report.headline import HEADLINE_MIME

NOTEBOOK = Path(__file__).resolve().parents[2] / "perfkit" / "notebooks" / "08_model_optimization.ipynb"


def test_list_and_unknown_variant(capsys):
    assert main(["optimize", "--list"]) == 0
    assert "prune-structured-50" in capsys.readouterr().out
    assert main(["optimize", "--variants", "fp32,int4-magic"]) == 2
    assert "unknown int4-magic" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_demo_serves_a_variant_behind_the_same_endpoint():
    from perfkit.demo.launch import DemoServer

    variants.build("prune-structured-50")
    with DemoServer(model_variant="prune-structured-50", llm_hidden=8) as server:
        body = json.dumps({"input_data": [[0.0] * 64, [16.0] * 64]}).encode()
        request = urllib.request.Request(server.url + "/api/v1/infer", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and len(json.loads(response.read())["predictions"]) == 2
        models = json.dumps(server.config()["models"])
        assert "variant prune-structured-50" in models and "64->256x256->10" in models


@pytest.mark.slow
def test_notebook_08_measures_when_nothing_is_stored(tmp_path):
    out = tmp_path / "08.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                        parameters={"db": str(tmp_path / "p.duckdb"), "variants": "fp32,prune-structured-50",
                                    "duration_s": 1.0, "rate_rps": 50.0})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    headline = next(o["data"][HEADLINE_MIME] for o in outputs if HEADLINE_MIME in o.get("data", {}))
    assert headline["figures"]["variants"].startswith("2 ")
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    assert list((tmp_path / "optimize").glob("*.json"))
