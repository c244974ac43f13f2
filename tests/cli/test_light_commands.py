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
