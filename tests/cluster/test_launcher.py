"""The Ray cluster-launcher configs (cluster/aws.yaml, cluster/gcp.yaml): what they ask the cloud
for, and that every Ray process on them speaks token auth with the dashboard on loopback."""

from __future__ import annotations

import copy

import pytest

from tests.cluster.exposure import launcher_problems
from tests.cluster.schemas import REPO, load_documents, validate_ray_launcher

CONFIGS = ["aws.yaml", "gcp.yaml"]

# (accelerator, GPUs, vCPUs) of the machine types the configs use, from the clouds' catalogues.
MACHINES = {
    "g5.xlarge": ("A10G", 1, 4),
    "g5.12xlarge": ("A10G", 4, 48),
    "p4d.24xlarge": ("A100", 8, 96),
    "a2-highgpu-1g": ("A100", 1, 12),
    "a2-highgpu-8g": ("A100", 8, 96),
}


def load(name: str) -> dict:
    (config,) = load_documents(REPO / "cluster" / name)
    return config


def machine_type(node_type: dict) -> str:
    node_config = node_type["node_config"]
    return node_config.get("InstanceType") or node_config["machineType"]


@pytest.mark.parametrize("name", CONFIGS)
def test_ray_prepares_the_config_as_ray_up_would(name):
    prepared = validate_ray_launcher(load(name))
    assert prepared["head_node_type"] == "head"
    assert prepared["available_node_types"]["head"]["max_workers"] == 0


@pytest.mark.parametrize("name", CONFIGS)
def test_the_head_takes_no_trials_and_gpu_workers_scale_from_zero(name):
    node_types = load(name)["available_node_types"]
    assert node_types["head"]["resources"] == {"CPU": 0}
    workers = {key: value for key, value in node_types.items() if key != "head"}
    assert workers, "no worker node types"
    for key, node_type in workers.items():
        assert node_type["min_workers"] == 0, f"{key} keeps idle GPU nodes"
        assert node_type["max_workers"] >= 1, key


@pytest.mark.parametrize("name", CONFIGS)
def test_declared_resources_match_the_machine_types(name):
    for key, node_type in load(name)["available_node_types"].items():
        if key == "head":
            continue
        accelerator, gpus, cpus = MACHINES[machine_type(node_type)]
        assert node_type["resources"] == {"CPU": cpus, "GPU": gpus, f"accelerator_type:{accelerator}": 1}, key


def test_aws_offers_the_gpu_instance_types_as_separate_node_types():
    instance_types = [machine_type(t) for k, t in load("aws.yaml")["available_node_types"].items() if k != "head"]
    assert sorted(instance_types) == ["g5.12xlarge", "g5.xlarge", "p4d.24xlarge"]


def test_gcp_workers_are_a100_machines_that_stop_for_host_maintenance():
    for key, node_type in load("gcp.yaml")["available_node_types"].items():
        if key == "head":
            continue
        assert MACHINES[machine_type(node_type)][0] == "A100"
        assert node_type["node_config"]["scheduling"]["onHostMaintenance"] == "TERMINATE"


@pytest.mark.parametrize("name", CONFIGS)
def test_ray_speaks_token_auth_and_keeps_the_dashboard_on_loopback(name):
    assert launcher_problems(load(name)) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["head_start_ray_commands"].__setitem__(-1, c["head_start_ray_commands"][-1].replace("127.0.0.1", "0.0.0.0")),
        lambda c: c["worker_start_ray_commands"].__setitem__(-1, c["worker_start_ray_commands"][-1].replace("RAY_AUTH_MODE=token ", "")),
        lambda c: c["file_mounts"].pop("~/.ray/auth_token"),
    ],
    ids=["dashboard-on-all-interfaces", "worker-without-auth", "token-not-copied"],
)
def test_the_exposure_check_catches_a_regression(break_it):
    config = copy.deepcopy(load("aws.yaml"))
    break_it(config)
    assert launcher_problems(config) != []
