"""deploy/k8s: the manifests validate against the Kubernetes schema (offline, kubernetes-validate's
bundled OpenAPI schemas, strict: unknown fields refused), and a broken copy does not."""
from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate as kv
import pytest
import yaml

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
VERSION = "1.30.0"


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _job(name: str) -> dict:
    return next(d for d in _docs(name) if d["kind"] == "Job")


@pytest.mark.parametrize("name", ["job.yaml", "merge-job.yaml"])
def test_manifests_validate_against_the_schema(name):
    for doc in _docs(name):
        kv.validate(doc, VERSION, strict=True)


def test_segments_job_is_indexed_and_takes_its_segment_from_the_index():
    spec = _job("job.yaml")["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SEGMENTS"] == str(spec["completions"])
    command = " ".join(container["args"])
    assert '--segment "$JOB_COMPLETION_INDEX/$SEGMENTS"' in command and "--start-at" in command
    assert container["volumeMounts"][0]["mountPath"] == "/results"


@pytest.mark.parametrize("path, value", [
    (("spec", "parallelism"), "four"),                   # wrong type
    (("spec", "template", "spec", "containers"), None),  # required field removed
    (("spec", "completionsMode"), "Indexed"),            # misspelt field (strict)
])
def test_a_broken_copy_is_rejected(path, value):
    doc = copy.deepcopy(_job("job.yaml"))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with pytest.raises(kv.ValidationError):
        kv.validate(doc, VERSION, strict=True)
