"""Every YAML file in cluster/ is checked against the schema of the tool that reads it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest

from tests.cluster.schemas import REPO, load_documents, validate_compose, validate_k8s, validate_kuberay, validate_ray_launcher

CLUSTER = REPO / "cluster"
CLUSTER_YAML = sorted(p for p in CLUSTER.rglob("*") if p.suffix in (".yaml", ".yml"))


def validator_for(document: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    """Which tool reads this document; a document none of them reads fails the test."""
    if document.get("apiVersion") == "ray.io/v1":
        return validate_kuberay
    if "apiVersion" in document and "kind" in document:
        return validate_k8s
    if "services" in document:
        return validate_compose
    if "provider" in document and "available_node_types" in document:
        return validate_ray_launcher
    raise AssertionError(f"no validator for a document with keys {sorted(document)}")


def test_the_deployment_files_are_all_here():
    names = {str(p.relative_to(CLUSTER)) for p in CLUSTER_YAML}
    assert {
        "aws.yaml",
        "gcp.yaml",
        "kuberay/raycluster.yaml",
        "kuberay/rayjob.yaml",
        "mlflow/compose.yaml",
        "mlflow/k8s/mlflow.yaml",
        "mlflow/k8s/postgres.yaml",
        "mlflow/k8s/minio.yaml",
    } <= names


@pytest.mark.parametrize("path", CLUSTER_YAML, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_every_document_validates(path: Path):
    documents = load_documents(path)
    assert documents, f"{path} holds no YAML document"
    for document in documents:
        validator_for(document)(document)


# The validators must be able to fail: one misspelt field per kind of file.
MISSPELLINGS = {
    "aws.yaml": lambda d: d["available_node_types"]["head"].update(min_worker=0),
    "kuberay/raycluster.yaml": lambda d: d["spec"]["workerGroupSpecs"][0].update(maxReplica=4),
    "kuberay/rayjob.yaml": lambda d: d["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(imagePullPolicyy="Always"),
    "mlflow/compose.yaml": lambda d: d["services"]["mlflow"].update(port=["5000:5000"]),
    "mlflow/k8s/mlflow.yaml": lambda d: d["spec"]["template"]["spec"].update(nodeSelecter={}),
}


@pytest.mark.parametrize("name", sorted(MISSPELLINGS))
def test_a_misspelt_field_is_refused(name: str):
    document = copy.deepcopy(load_documents(CLUSTER / name)[0])
    MISSPELLINGS[name](document)
    with pytest.raises(jsonschema.ValidationError):
        validator_for(document)(document)
