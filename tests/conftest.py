"""Shared fixtures.

Tiers: tests without a marker need no Ray and run in seconds; `ray` tests
share one local Ray instance per session (`ray_session`); `slow` end-to-end
tests start what they need themselves and are run by `.ci/run` after the
main suite.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# Ray Train's controller polls workers this often; tests want quick reports.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def write_yaml(path: Path, data: dict | str) -> Path:
    path.write_text(textwrap.dedent(data) if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def tiny_config(**sections) -> dict:
    """A small, fast sweep: synthetic 8x8 images, tiny_cnn, a few epochs."""
    base = {
        "name": "tiny",
        "data": {"kind": "synthetic", "num_samples": 96, "shape": [1, 8, 8], "num_classes": 3},
        "model": {"name": "tiny_cnn", "kwargs": {"widths": [4, 8]}},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": 2, "batch_size": 16},
        "resources": {"workers": 1, "cpus_per_worker": 0.5},
        "tracking": {"enabled": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


@pytest.fixture
def sweep_file(tmp_path):
    """Write a sweep dict to a YAML file and return its path."""

    def make(data: dict | str, name: str = "sweep.yaml") -> Path:
        return write_yaml(tmp_path / name, data)

    return make


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for all `ray` tests in this session."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()
