"""A trial's report files from its best checkpoint: the learning curves can show every epoch."""

from pathlib import Path

import pytest

from raysweep.tracking.artifacts import curves_png, trial_report_files
from tests.conftest import tiny_config
from tests.tracking.trained import train_here


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> list[Path]:
    """The three epochs' checkpoints of a tiny synthetic trial."""
    return train_here(tiny_config(train={"epochs": 3}), tmp_path_factory.mktemp("trial")).checkpoints


def test_the_curves_show_the_history_given_else_the_checkpoints_own(checkpoints, tmp_path):
    from trainables.checkpoint import load_state

    first, last = checkpoints[0], checkpoints[-1]
    whole = load_state(last)["history"]
    assert len(load_state(first)["history"]) == 1 and len(whole) == 3
    for name in ("given", "own", "whole"):
        (tmp_path / name).mkdir()
    given = trial_report_files(first, "val/macro_f1", tmp_path / "given", history=whole)
    own = trial_report_files(first, "val/macro_f1", tmp_path / "own")
    curves_png(whole, "val/macro_f1", tmp_path / "whole" / "learning_curves.png")

    assert [p.name for p in given] == [p.name for p in own] == ["per_class_report.csv", "confusion_matrix.png", "learning_curves.png"]
    drawn = (tmp_path / "given" / "learning_curves.png").read_bytes()
    assert drawn == (tmp_path / "whole" / "learning_curves.png").read_bytes()
    assert drawn != (tmp_path / "own" / "learning_curves.png").read_bytes()
