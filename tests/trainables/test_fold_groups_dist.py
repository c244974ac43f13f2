"""Folds trained at once by two processes over torch.distributed (gloo, no Ray): each
fold's history equals the lockstep trainer's, the checkpoint holds every fold, and a run
resumed from it continues each fold from its own state."""

import json
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from raysweep.config import load_sweep
from tests.conftest import tiny_config
from trainables.checkpoint import load_state
from trainables.session import LocalSession
from trainables.trainer import Trainer

EPOCHS = 3

pytestmark = pytest.mark.slow  # three runs of two processes importing torch: ~1 min idle, minutes under load


class DistSession(LocalSession):
    """A LocalSession on each rank of a plain gloo process group (Ray Train's collectives)."""

    def __init__(self, rank: int, world: int, storage: Path, resume_from=None):
        super().__init__(storage / f"rank{rank}", resume_from=resume_from, device="cpu")
        self.rank, self.world_size = rank, world

    from trainables.session import RaySession as _Ray

    all_gather_object = _Ray.all_gather_object
    all_reduce_max = _Ray.all_reduce_max
    all_reduce_sum = _Ray.all_reduce_sum

    def report(self, metrics, checkpoint_dir):
        if self.is_main:
            super().report(metrics, checkpoint_dir)


def _worker(rank: int, world: int, port: int, cfg, storage: Path, resume_from, epochs) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        run_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": epochs})})
        Trainer(run_cfg, DistSession(rank, world, storage, resume_from), fold_groups=world).fit()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_at_once(cfg, storage: Path, epochs: int, resume_from=None) -> list[Path]:
    mp.spawn(_worker, args=(2, _free_port(), cfg, storage, resume_from, epochs), nprocs=2, join=True)
    return sorted((storage / "rank0").glob("epoch_*"))


@pytest.fixture
def cfg(sweep_file):
    return load_sweep(sweep_file(tiny_config(
        data={"num_samples": 240, "folds": 2}, train={"epochs": EPOCHS, "batch_size": 16, "seed": 5}, search={"cv": {"mode": "per_trial"}},
    ))).config


def lockstep(cfg, tmp_path: Path) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    session = LocalSession(tmp_path / "lockstep", device="cpu")
    Trainer(cfg, session).fit()
    return session.results


KEYS = [f"fold{k}/val/{m}" for k in (0, 1) for m in ("loss", "accuracy", "macro_f1")] + ["val/macro_f1", "val/macro_f1_std", "train/loss"]


def same(a: dict, b: dict) -> None:
    for key in KEYS:
        assert a[key] == pytest.approx(b[key], abs=1e-6), (a["epoch"], key, a[key], b[key])


def test_two_fold_groups_match_lockstep_and_resume_each_fold_from_its_own_state(cfg, tmp_path):
    expected = lockstep(cfg, tmp_path)
    checkpoints = run_at_once(cfg, tmp_path / "at-once", EPOCHS)
    meta = json.loads((checkpoints[-1] / "meta.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == list(range(1, EPOCHS + 1))
    for got, want in zip(meta["history"], expected):
        same(got, want)
    state = load_state(checkpoints[-1])
    assert len(state["folds"]) == 2 and all("rng" in f for f in state["folds"])
    assert all(len(e["folds"]) == 2 for e in meta["trained"])  # when each fold trained, per epoch

    # stopped after epoch 1, then resumed from that checkpoint: the same epochs 2 and 3
    first = run_at_once(cfg, tmp_path / "stopped", 1)
    resumed = run_at_once(cfg, tmp_path / "resumed", EPOCHS, resume_from=first[-1])
    meta = json.loads((resumed[-1] / "meta.json").read_text())
    assert [e["epoch"] for e in meta["trained"]] == [1, 2, 3]
    for got, want in zip(meta["history"], expected):
        same(got, want)
