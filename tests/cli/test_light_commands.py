"""The commands a user runs to read or check, not to train, start at once: they never import
torch, timm or Ray Train (seconds and hundreds of MB each). Each runs in a fresh interpreter
that reports which of them it imported."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("torch", "timm", "ray.train", "albumentations")
PROBE = (
    "import json, sys\n"
    "from raysweep.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
)


def heavy_imports(*argv: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["resume", "--help"], ["ui", "--help"], ["report", "--help"], ["validate", "--help"], ["--help"]])
def test_help_imports_nothing_heavy(argv):
    assert heavy_imports(*argv) == []


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "search_spaces").glob("*.yaml")))
def test_validate_without_data_checks_each_recipe_and_imports_nothing_heavy(recipe):
    """Its model, loss, optimizer, schedule and augmentation names are checked against the
    registries' catalogue (`trainables.catalog`), not the registries themselves."""
    assert heavy_imports("validate", f"search_spaces/{recipe}") == []


def test_validate_without_data_still_refuses_an_unknown_model_in_one_line(tmp_path):
    from tests.conftest import tiny_config, write_yaml

    path = write_yaml(tmp_path / "sweep.yaml", tiny_config(model={"name": "resnet1800"}))
    out = subprocess.run([sys.executable, "-m", "raysweep", "validate", str(path)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    # the same closest names as timm's own registry gives
    from raysweep.registry import suggest
    from trainables.models import model_names

    assert out.stderr.strip() == f"error: {path}: model.name: unknown model 'resnet1800'{suggest('resnet1800', model_names())}", out.stderr
    assert "'resnet18'" in out.stderr
