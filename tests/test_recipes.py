"""The recipes in search_spaces/: each validates as `raysweep validate` would,
holds its report's settings, and trains one tiny step in this process on
synthetic data of its shape (no Ray, no downloads, a few seconds each)."""

import math
from pathlib import Path

import pytest

from raysweep.commands import load_checked
from raysweep.config import load_sweep
from tests.conftest import REPO
from trainables.session import LocalSession
from trainables.trainer import Trainer

RECIPES = sorted((REPO / "search_spaces").glob("*.yaml"))

# recipe -> (channels, task, classes of the stand-in data, keep the recipe's model)
SMOKE = {
    "comp4211_ldam_grid": (3, "multiclass", 3, False),
    "comp4211_losses": (3, "multiclass", 3, False),
    "ece449_multilabel": (3, "multilabel", 5, False),
    "ijcnn_resse": (3, "binary", 2, True),
    "protein_atlas": (3, "multilabel", 5, False),
    "cifar100_losses": (3, "multiclass", 4, False),
    "digits_lt_ldam": (1, "multiclass", 4, False),
}

# what each recipe must keep from its report (dotted path -> value at the defaults)
REPORT = {
    "comp4211_ldam_grid": {
        "model.name": "resnet50", "model.pretrained": True, "optimizer.name": "sgd", "optimizer.lr": 0.001,
        "optimizer.momentum": 0.9, "optimizer.nesterov": False, "train.batch_size": 64, "loss.name": "ldam",
        "data.classes": ["NIL", "Moderate", "Severe"], "search.algorithm": "grid",
    },
    "comp4211_losses": {"search.algorithm": "grid", "optimizer.lr": 0.001, "train.batch_size": 64},
    "ece449_multilabel": {
        "data.task": "multilabel", "data.image_col": "image_id", "data.label_col": "labels", "loss.name": "bce", "model.head": "mish_mlp", "model.head_hidden": 256, "model.head_dropout": 0.5,
        "optimizer.name": "sgd", "optimizer.lr": 0.05, "optimizer.momentum": 0.9, "optimizer.weight_decay": 5e-5,
        "augment.preset": "ece449", "train.amp": "fp16", "train.reseed_every_epoch": True,
        "scheduler.t_max": 150, "scheduler.min_lr": 5e-6, "scheduler.milestones": [5, 10, 20, 40, 75], "scheduler.decay_rate": 0.25,
    },
    "ijcnn_resse": {
        "data.kind": "pixel_table", "data.reshape": [74, 55, 3], "data.task": "binary", "data.val_fraction": 0.25, "data.folds": None, "search.cv": None,
        "model.name": "resse_ijcnn", "optimizer.name": "adam", "optimizer.lr": 0.001, "scheduler.name": "step",
        "scheduler.decay_epochs": 10, "scheduler.decay_rate": 0.1, "train.batch_size": 32, "train.epochs": 50, "search.metric": "val/macro_f1",
    },
    "protein_atlas": {
        "data.kind": "channel_files", "data.channels": ["red", "green", "blue"], "data.strategy": "multilabel_stratified", "data.task": "multilabel",
        "model.name": "efficientnet_b0", "model.pretrained": True, "model.in_chans": 3, "loss.name": "bce", "optimizer.name": "adam",
        # the report resized to 256 and center-cropped 224
        "augment.resize.mode": "center_crop", "augment.resize.shorter_side": 256, "augment.resize.size": 224,
    },
    "cifar100_losses": {
        "data.kind": "torchvision", "data.name": "CIFAR100", "model.name": "efficientnet_b4", "model.input_size": 224,
        "optimizer.name": "adamw", "optimizer.weight_decay": 1e-4, "scheduler.name": "exponential", "scheduler.decay_rate": 0.8,
        "scheduler.decay_epochs": 3, "augment.preset": "cifar_hw2",
    },
    "digits_lt_ldam": {"data.kind": "digits_lt", "data.imbalance_ratio": 100, "model.name": "tiny_cnn", "loss.name": "ldam"},
}

# recipe -> {searched path: the report's values}
GRIDS = {
    "comp4211_ldam_grid": {"optimizer.weight_decay": [0.001, 0.01, 0.1, 1], "loss.C": [-2, -0.25, 0.25, 2]},
    "comp4211_losses": {"loss.name": ["ce", "ldam", "recall", "focal"], "model.name": ["resnet50", "wide_resnet50_2"]},
    "ece449_multilabel": {"scheduler.name": ["cosine", "multistep"]},  # x its search.cases (tests/search/test_cases.py)
    "cifar100_losses": {"loss.name": ["ce", "mc", "focal", "flsd53"], "train.batch_size": [32, 64]},
}


def dotted(cfg, path: str):
    for key in path.split("."):
        cfg = cfg[key] if isinstance(cfg, dict) else getattr(cfg, key)
    return cfg


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_passes_validate(path):
    sweep = load_checked(path)  # schema, search domains and every cross-field check, as `raysweep validate`
    assert sweep.name == path.stem
    assert path.read_text().startswith("#")  # a header citing the report and the commands


def test_every_report_has_a_recipe_and_a_smoke_run():
    laptop = {p.stem for p in RECIPES if p.stem.startswith("quickstart")}  # the runnable examples, no report behind them
    assert {p.stem for p in RECIPES} - laptop == set(SMOKE) == set(REPORT)


@pytest.mark.parametrize("name", sorted(REPORT))
def test_recipe_keeps_its_reports_settings(name):
    sweep = load_sweep(REPO / "search_spaces" / f"{name}.yaml")
    for key, value in REPORT[name].items():
        assert dotted(sweep.config, key) == value, key
    for key, values in GRIDS.get(name, {}).items():
        assert sweep.space[key].kind == "grid" and list(sweep.space[key].values) == values, key


def smoke_overrides(name: str) -> list[str]:
    chans, task, classes, keep_model = SMOKE[name]
    out = [
        "data.kind=synthetic", f"data.shape=[{chans}, 16, 16]", f"data.num_classes={classes}", f"data.task={task}",
        "data.classes=null", "data.num_samples=64", "data.loader_workers=0", "data.official_test=false", "data.test_path=null",
        "model.pretrained=false", "model.input_size=null",
        "train.epochs=1", "train.max_steps_per_epoch=1", "train.max_val_batches=1", "train.batch_size=4", "train.accumulate=1",
        "tracking.enabled=false",
    ]
    if keep_model:  # resse_ijcnn at a few thousand parameters
        out += ["model.kwargs.width_multiplier=0.05", "model.kwargs.depth_multiplier=0.3"]
    else:
        out += ["model.name=tiny_cnn", "model.kwargs={widths: [8, 16]}"]
    return out


def smoke_run(cfg, tmp_path: Path) -> dict:
    session = LocalSession(tmp_path, device="cpu")
    Trainer(cfg, session).fit()
    assert [r["epoch"] for r in session.results] == [1]
    final = session.results[-1]
    assert "diverged" not in final and math.isfinite(final["train/loss"])
    return final


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_recipe_trains_one_step_at_its_defaults(name, tmp_path):
    sweep = load_checked(REPO / "search_spaces" / f"{name}.yaml", smoke_overrides(name))
    final = smoke_run(sweep.config, tmp_path)
    assert sweep.config.search.primary_metric in final


LOSS_CELLS = [(name, loss) for name in sorted(GRIDS) for loss in GRIDS[name].get("loss.name", [])]


@pytest.mark.parametrize("name, loss", LOSS_CELLS, ids=[f"{n}-{l}" for n, l in LOSS_CELLS])
def test_every_loss_of_a_recipes_grid_trains_one_step(name, loss, tmp_path):
    sweep = load_checked(REPO / "search_spaces" / f"{name}.yaml", smoke_overrides(name))
    cfg = sweep.resolve({"loss.name": loss})
    assert cfg.loss.name == loss
    smoke_run(cfg, tmp_path)


def test_the_ijcnn_recipes_ten_folds_are_the_overrides_its_header_names():
    """The report's 75/25 split by default; its 10-fold wish is the `--set`s the file's header gives."""
    path = REPO / "search_spaces" / "ijcnn_resse.yaml"
    line = next(l for l in path.read_text().splitlines() if "--set data.folds=10" in l)
    overrides = [part.strip().strip('"') for part in line.lstrip("# ").split("--set") if part.strip()]
    sweep = load_sweep(path, overrides)
    assert (sweep.config.data.folds, sweep.config.search.cv.mode) == (10, "per_trial")
