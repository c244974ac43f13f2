"""The params of a trial's MLflow run: the resolved config as the chosen variants take it (no Ray)."""

from raysweep.config.schema import SweepConfig
from raysweep.tracking.store import REDACTED, trial_params
from tests.conftest import tiny_config


def params(**sections) -> dict[str, str]:
    return trial_params(SweepConfig.model_validate(tiny_config(**sections)))


def test_a_ce_trial_has_the_keys_ce_takes_and_no_none():
    p = params(loss={"name": "ce", "label_smoothing": 0.1}, tracking={"enabled": True, "uri": "https://alice:s3cret@mlflow.example/"})
    assert p["loss.name"] == "ce" and p["loss.label_smoothing"] == "0.1"
    assert {k for k in p if k.startswith("loss.")} == {"loss.name", "loss.label_smoothing", "loss.beta"}
    assert "None" not in p.values() and "{}" not in p.values()
    assert not {"data.classes", "train.grad_clip", "search.cv", "resources.custom"} & set(p)
    assert p["tracking.uri"] == "https://***@mlflow.example/"


def test_a_focal_trial_has_gamma_and_the_optimizer_and_scheduler_keys_of_its_choices():
    p = params(
        loss={"name": "focal", "gamma": 1.5, "alpha": 0.25},
        optimizer={"name": "adamw", "lr": 0.001, "betas": [0.9, 0.99]},
        scheduler={"name": "cosine", "warmup_epochs": 1},
        model={"kwargs": {"widths": [4, 8], "hf_token": "hf_abc"}},
    )
    assert {k: v for k, v in p.items() if k.startswith("loss.")} == {"loss.name": "focal", "loss.gamma": "1.5", "loss.alpha": "0.25"}
    assert {k for k in p if k.startswith("optimizer.")} == {"optimizer.name", "optimizer.lr", "optimizer.weight_decay", "optimizer.betas"}
    assert {k for k in p if k.startswith("scheduler.")} == {"scheduler.name", "scheduler.min_lr", "scheduler.warmup_epochs", "scheduler.warmup_lr"}
    assert p["model.kwargs.hf_token"] == REDACTED
    assert "None" not in p.values()


def test_no_schedule_means_no_schedule_params():
    assert [k for k in params() if k.startswith("scheduler.")] == ["scheduler.name"]
