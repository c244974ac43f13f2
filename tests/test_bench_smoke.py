"""Every benchmark in bench/ runs at its `--tiny` size and prints its table and its key
ratios (gpu.py, on a machine without a GPU, says so and exits 77). Figures are not
checked: they are for BENCHMARKS.md, measured at full size."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

BENCH = REPO / "bench"
pytestmark = pytest.mark.slow  # each starts its own interpreter, most a Ray instance: minutes in all


def run_tiny(script: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / script), "--tiny"], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def assert_reports(out: subprocess.CompletedProcess, name: str) -> None:
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "\n## " in out.stdout  # a table
    assert f"key ratios ({name}): " in out.stdout.strip().splitlines()[-1]


@pytest.mark.ray
@pytest.mark.parametrize("name", ["trainer_overhead", "startup", "concurrency", "parallel_folds"])
def test_ray_benchmark_runs_tiny(name):
    # startup.py's smoke run still starts every arm: a Train run, a DDP run, `raysweep train`
    assert_reports(run_tiny(f"{name}.py", timeout=480 if name in ("startup", "concurrency") else 240), name)


@pytest.mark.parametrize("name", ["data_pipeline", "search_efficiency"])
def test_benchmark_runs_tiny(name):
    assert_reports(run_tiny(f"{name}.py"), name)


def test_ldam_vs_ce_runs_tiny():
    out = run_tiny("ldam_vs_ce.py")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "macro F1" in out.stdout and "ldam_drw above ce on macro_f1" in out.stdout


def test_gpu_benchmark_runs_or_says_there_is_no_gpu():
    import torch

    out = run_tiny("gpu.py", timeout=600)
    if torch.cuda.is_available():
        assert_reports(out, "gpu")
    else:
        assert out.returncode == 77, out.stdout + out.stderr
        (line,) = out.stdout.strip().splitlines()  # one line, saying why
        assert "skipped: no CUDA GPU visible" in line


def test_run_all_collects_the_key_ratios():
    out = subprocess.run(
        [sys.executable, str(BENCH / "run_all"), "--tiny", "--only", "data_pipeline,gpu"], capture_output=True, text=True, timeout=240, cwd=REPO
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("key ratios: data_pipeline: ") and "| gpu: " in last
