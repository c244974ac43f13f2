"""A sweep whose results live in S3 (a local S3-compatible server), stopped and resumed from there."""

import json

import pytest
import pyarrow.fs
import yaml

from tests.conftest import tiny_config
from tests.fixtures.cli import RaysweepProcess, wait_for
from tests.fixtures.s3 import s3, s3_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

EPOCHS = 6


def s3_checkpoint_epochs(uri: str) -> dict[str, int]:
    """Per trial, the last epoch checkpointed under the sweep's train/ prefix in S3."""
    fs, root = pyarrow.fs.FileSystem.from_uri(uri)
    out = {}
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True, allow_not_found=True)):
        if info.base_name == "meta.json" and "/train/" in info.path:
            trial = info.path.split("/train/")[1].split("/")[0]
            try:
                with fs.open_input_stream(info.path) as f:
                    epoch = json.loads(f.read())["epoch"]
            except OSError:  # a checkpoint the trial pruned between the listing and the read
                continue
            out[trial] = max(out.get(trial, 0), epoch)
    return out


def test_sweep_on_s3_storage_resumes_from_there(s3, tmp_path):
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(tiny_config(
        name="ons3",
        data={"num_samples": 300},
        optimizer={"lr": {"grid": [0.05, 0.1, 0.2]}},
        train={"epochs": EPOCHS, "batch_size": 16},
        resources={"max_concurrent": 1},
        search={"algorithm": "grid"},
    )))
    storage = s3.uri("sweeps")
    sweep_uri = f"{storage}/ons3"
    run = RaysweepProcess(["run", str(sweep_file), "--storage", storage], cwd=tmp_path, env=s3.env)
    try:
        wait_for(lambda: any(2 <= e < EPOCHS for e in s3_checkpoint_epochs(sweep_uri).values()), 300, "a trial part-way, checkpointed in S3")
    finally:
        run.kill()
    assert not (tmp_path / "raysweep_results").exists()  # nothing went to the local disk instead

    # resume from a different directory: everything it needs is in the bucket
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resume = RaysweepProcess(["resume", sweep_uri], cwd=elsewhere, env=s3.env)
    assert resume.wait(600) == 0, resume.output()[-3000:]
    assert s3_checkpoint_epochs(sweep_uri) and all(e == EPOCHS for e in s3_checkpoint_epochs(sweep_uri).values())

    report = RaysweepProcess(["report", sweep_uri, "--json"], cwd=elsewhere, env=s3.env)
    assert report.wait(120) == 0, report.output()[-2000:]
    trials = json.loads(report.output().strip().splitlines()[-1])["trials"]
    assert sorted(t["params"]["optimizer.lr"] for t in trials) == [0.05, 0.1, 0.2]
    assert all(t["status"] == "TERMINATED" and t["epochs_done"] == EPOCHS for t in trials)
    assert all(t["checkpoint"].startswith("s3://") for t in trials)
