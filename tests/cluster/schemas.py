"""Validators for the deployment files in cluster/, built from the schemas their tools use.

- Ray cluster-launcher YAML: the `ray-schema.json` Ray ships, then Ray's own `prepare_config` and
  `validate_config` (what `ray up` runs before it calls the cloud).
- Kubernetes core kinds: kubernetes-validate's strict schemas (unknown fields refused).
- KubeRay RayCluster/RayJob: the CRDs vendored in tests/data/schemas/kuberay, made strict the way
  `kubectl apply` is, with their pod templates resolved to Kubernetes' own PodTemplateSpec.
- Compose: the vendored compose-spec JSON schema.

Each `validate_*` raises `jsonschema.ValidationError` (or Ray's ValueError) naming the bad path.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "tests" / "data" / "schemas"
# The Kubernetes version the vendored CRDs were generated against (their pod fields match it).
KUBERNETES_VERSION = "1.35"
K8S_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in a file (anchors and merge keys resolved)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- Ray cluster launcher -------------------------------------------------------------------


@functools.cache
def ray_launcher_schema() -> dict[str, Any]:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def validate_ray_launcher(config: dict[str, Any]) -> dict[str, Any]:
    """Schema check of the file as written, then Ray's own preparation; returns the prepared config."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    jsonschema.validate(config, ray_launcher_schema())
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


# --- Kubernetes core kinds ------------------------------------------------------------------


def validate_k8s(document: dict[str, Any]) -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        raise jsonschema.ValidationError(e.message, path=e.path) from None


@functools.cache
def _k8s_definitions() -> dict[str, Any]:
    import kubernetes_validate.utils as kv

    return kv.schema_contents(f"kubernetes-json-schema/v{KUBERNETES_VERSION}.0-local-strict/_definitions.json", KUBERNETES_VERSION)


# --- KubeRay CRDs ---------------------------------------------------------------------------


def _crd_v1_schema(file_name: str) -> dict[str, Any]:
    (crd,) = load_documents(SCHEMAS / "kuberay" / file_name)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists `properties`, as kubectl's
    Strict field validation refuses them; open maps and preserve-unknown-fields stay open."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def _resolve_markers(schema: Any, same_as: dict[str, Any]) -> Any:
    """Replace the vendoring markers (see tests/data/schemas/README.md) by what they stand for."""
    if isinstance(schema, list):
        return [_resolve_markers(item, same_as) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "x-raysweep-elided" in schema:
        return {"$ref": f"{K8S_DEFINITIONS_ID}#/$defs/{schema['x-raysweep-elided']}"}
    if "x-raysweep-same-as" in schema:
        return same_as[schema["x-raysweep-same-as"]]
    return {key: _resolve_markers(value, same_as) for key, value in schema.items()}


@functools.cache
def kuberay_schemas() -> dict[str, dict[str, Any]]:
    """Strict schemas of the KubeRay kinds, keyed by kind."""
    raycluster = strict(_resolve_markers(_crd_v1_schema("ray.io_rayclusters.v1.yaml"), {}))
    rayjob = strict(
        _resolve_markers(_crd_v1_schema("ray.io_rayjobs.v1.yaml"), {"rayclusters.ray.io/v1#spec": raycluster["properties"]["spec"]})
    )
    return {"RayCluster": raycluster, "RayJob": rayjob}


@functools.cache
def _k8s_registry() -> Registry:
    return Resource.from_contents(_k8s_definitions()) @ Registry()


def validate_kuberay(document: dict[str, Any]) -> None:
    if document.get("apiVersion") != "ray.io/v1":
        raise jsonschema.ValidationError(f"apiVersion {document.get('apiVersion')!r} is not ray.io/v1", path=["apiVersion"])
    schema = kuberay_schemas()[document["kind"]]
    jsonschema.Draft202012Validator(schema, registry=_k8s_registry()).validate(document)


# --- Compose --------------------------------------------------------------------------------


@functools.cache
def compose_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "compose-spec.json").read_text())


def validate_compose(document: dict[str, Any]) -> None:
    jsonschema.Draft201909Validator(compose_schema()).validate(document)
