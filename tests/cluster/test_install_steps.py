"""raysweep is installed the same way everywhere: the README's two steps
(`pip install -r requirements.lock`, then `pip install --no-deps -e .`) are what the Docker image
and the cluster launcher's setup commands run."""

from __future__ import annotations

import re

import pytest

from tests.cluster.install_steps import dockerfile_run_scripts, is_subsequence, markdown_shell_blocks, pip_install, pip_installs
from tests.cluster.schemas import REPO, load_documents

README_STEPS = pip_installs(["pip install -r requirements.lock", "pip install --no-deps -e ."])


def test_the_readme_documents_the_install_steps_in_a_bash_block():
    # Fails until the top-level README.md exists with these steps in a ```bash block.
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing"
    assert any(is_subsequence(README_STEPS, pip_installs([block])) for block in markdown_shell_blocks(readme)), (
        f"no ```bash block of README.md runs {README_STEPS} in this order"
    )


def test_the_docker_image_runs_exactly_the_readme_steps():
    assert pip_installs(dockerfile_run_scripts(REPO / "cluster" / "Dockerfile")) == README_STEPS


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_the_launcher_setup_runs_exactly_the_readme_steps(name):
    (config,) = load_documents(REPO / "cluster" / name)
    commands = config["setup_commands"] + config["head_setup_commands"] + config["worker_setup_commands"]
    assert pip_installs(commands) == README_STEPS


@pytest.mark.parametrize(
    "written",
    [
        "pip install --no-cache-dir -r requirements.lock",
        "python -m pip install --requirement requirements.lock",
        "/opt/venv/bin/pip3 install -q -r requirements.lock",
    ],
)
def test_variants_of_the_lock_step_read_as_the_readme_step(written):
    assert pip_installs([written]) == README_STEPS[:1]


@pytest.mark.parametrize("written", ["pip install --no-deps .", "pip install -e . --no-deps", "pip install --no-cache-dir --no-deps --editable ."])
def test_editable_and_plain_installs_of_the_checkout_read_the_same(written):
    assert pip_installs([written]) == README_STEPS[1:]


@pytest.mark.parametrize(
    "written",
    ["pip install -r requirements.txt", "pip install -e .", "pip install --no-deps -e .[test]", "pip install -U -r requirements.lock"],
)
def test_a_different_step_does_not(written):
    assert pip_installs([written]) not in ([README_STEPS[0]], [README_STEPS[1]])


def test_commands_that_merely_mention_pip_are_not_installs():
    assert pip_install(["echo", "pip", "install", "x"]) is None
    assert pip_installs(["pip list && pip show ray"]) == []


def test_the_image_cuda_base_has_the_cuda_major_of_the_locked_torch():
    # The base image's NVIDIA_REQUIRE_CUDA makes a too-old driver refuse the container; that only
    # protects the torch of the lock if both speak the same CUDA major.
    (locked,) = re.findall(r"^nvidia-cuda-runtime(?:-cu\d+)?==(\d+)\.", (REPO / "requirements.lock").read_text(), flags=re.MULTILINE)
    (base,) = re.findall(r"^FROM nvidia/cuda:(\d+)\.\S+-base-ubuntu22\.04$", (REPO / "cluster" / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert base == locked
