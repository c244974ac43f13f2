"""A trial trained in this process, without Ray, for the tests of what MLflow gets from it.

    session = train_here(tiny_config(data={"kind": "digits"}), tmp_path)
    session.checkpoints   # one directory per epoch, as Ray Train would store them
"""

from __future__ import annotations

from pathlib import Path

import torch

from raysweep.config import load_sweep
from tests.conftest import write_yaml


def train_here(sweep: dict, root: Path):
    from trainables.session import LocalSession
    from trainables.trainer import Trainer

    cfg = load_sweep(write_yaml(root / "sweep.yaml", sweep)).config
    session = LocalSession(root / "checkpoints", device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy machine, spinning OpenMP threads make this 25x slower
    try:
        Trainer(cfg, session).fit()
    finally:
        torch.set_num_threads(threads)
    return session
