"""The KubeRay manifests (cluster/kuberay/): what Ray's autoscaler makes of them, the GPU pool they
land on, the image they run, the sweep the RayJob starts, and that auth stays on."""

from __future__ import annotations

import copy
import shlex

import pytest
import ray

import raysweep
from tests.cluster.exposure import kuberay_problems
from tests.cluster.schemas import REPO, load_documents

KUBERAY = REPO / "cluster" / "kuberay"
IMAGE_REPOSITORY = "registry.example.com/raysweep"


def raycluster() -> dict:
    (document,) = load_documents(KUBERAY / "raycluster.yaml")
    return document


def rayjob() -> dict:
    (document,) = load_documents(KUBERAY / "rayjob.yaml")
    return document


def groups(spec: dict) -> list[dict]:
    return [spec["headGroupSpec"], *spec["workerGroupSpecs"]]


def test_the_rayjob_brings_up_the_same_cluster_as_raycluster_yaml():
    assert rayjob()["spec"]["rayClusterSpec"] == raycluster()["spec"]


def test_ray_autoscaler_reads_a_cpu_only_head_and_gpu_groups_scaling_from_zero():
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    # What the autoscaler container in the head pod computes from the custom resource.
    config = _derive_autoscaling_config_from_ray_cr(raycluster())
    node_types = config["available_node_types"]
    assert node_types.pop("headgroup")["resources"]["CPU"] == 0
    assert {name: (t["min_workers"], t["resources"]["GPU"]) for name, t in node_types.items()} == {
        "gpu-1x": (0, 1),
        "gpu-8x": (0, 8),
    }


def test_gpu_groups_land_on_the_gpu_pool_and_get_whole_gpus():
    for group in raycluster()["spec"]["workerGroupSpecs"]:
        pod = group["template"]["spec"]
        assert pod["nodeSelector"], group["groupName"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        resources = pod["containers"][0]["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] >= 1
    head = raycluster()["spec"]["headGroupSpec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"]


def test_every_ray_container_runs_this_version_of_the_raysweep_image():
    for document in (raycluster(), rayjob()):
        spec = document["spec"].get("rayClusterSpec", document["spec"])
        images = {c["image"] for group in groups(spec) for c in group["template"]["spec"]["containers"]}
        assert images == {f"{IMAGE_REPOSITORY}:{raysweep.__version__}"}
        assert spec["rayVersion"].rsplit(".", 1)[0] == ray.__version__.rsplit(".", 1)[0]


def test_the_rayjob_runs_a_sweep_of_this_repo_onto_shared_storage():
    words = shlex.split(rayjob()["spec"]["entrypoint"])
    assert words[:2] == ["raysweep", "run"]
    assert (REPO / words[2]).is_file(), f"{words[2]} is not a search space in this repo"
    options = dict(zip(words[3::2], words[4::2]))
    assert options["--address"] == "auto"
    assert options["--storage"].startswith(("s3://", "gs://", "/"))


def test_the_manifests_use_no_field_only_the_vendored_fork_knows():
    # tests/data/schemas/README.md: the CRD comes from a fork with two extra fields.
    for spec in (raycluster()["spec"], rayjob()["spec"]["rayClusterSpec"]):
        assert not {"networkIsolation", "tlsOptions"} & set(spec)


@pytest.mark.parametrize("document", [raycluster(), rayjob()], ids=["raycluster", "rayjob"])
def test_token_auth_is_on_and_the_head_stays_inside_the_cluster(document):
    assert kuberay_problems(document) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda spec: spec.pop("authOptions"),
        lambda spec: spec["headGroupSpec"].update(serviceType="LoadBalancer"),
        lambda spec: spec["headGroupSpec"].update(enableIngress=True),
    ],
    ids=["no-auth", "load-balancer", "ingress"],
)
def test_the_exposure_check_catches_a_regression(break_it):
    document = copy.deepcopy(raycluster())
    break_it(document["spec"])
    assert kuberay_problems(document) != []
