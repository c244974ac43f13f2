"""A trial trained in this process, without Ray, for the tests of what MLflow gets from it.

    session = train_here(tiny_config(data={"kind": "digits"}), tmp_path)
    session.checkpoints   # one directory per epoch, as Ray Train would store them
"""

from __future__ import annotations

from pathlib import Path

import torch

from raysweep.config import load_sweep
from tests.conftest import write_yaml


def train_here(sweep: dict, root: Path, listeners=()):
    from trainables.session import LocalSession
    from trainables.trainer import Trainer

    cfg = load_sweep(write_yaml(root / "sweep.yaml", sweep)).config
    session = LocalSession(root / "checkpoints", device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy machine, spinning OpenMP threads make this 25x slower
    try:
        Trainer(cfg, session, listeners=listeners).fit()
    finally:
        torch.set_num_threads(threads)
    return session


def train_one_trial(sweep_yaml: str, storage: str, target, opener) -> dict:
    """In a Ray worker, as a trial actor: the trial's trainer with the sweep's MLflow listener, whose
    run the sweep's `opener` opens; its run id and the MLflow modules the process imported.
    (Here, not in the test module, which imports MLflow: the worker imports this module.)"""
    import sys

    from raysweep.config import load_sweep
    from raysweep.tracking.trial_logger import MlflowTrialLogger
    from trainables.session import LocalSession
    from trainables.trainer import Trainer

    cfg = load_sweep(sweep_yaml).config
    logger = MlflowTrialLogger(target, "trial_a", "trial_a lr=0.1", log_epochs=False, opener=opener)
    trainer = Trainer(cfg, LocalSession(storage, device="cpu"), listeners=[logger])
    trainer.fit()
    return {"run": logger.run_id, "reported": trainer.report_extras.get("mlflow_run_id"), "mlflow_imported": sorted(m for m in sys.modules if m.split(".")[0] == "mlflow")}
