"""`raysweep report`'s table and the end of `raysweep run`: 100 columns, trials' outcomes in words."""

import json

from raysweep.commands.report import _table, next_steps
from raysweep.sweep.layout import SweepLayout
from raysweep.sweep.results import TrialRow


def row(i: int, outcome: str, params: dict) -> TrialRow:
    return TrialRow(f"trial_{i:04d}", "TERMINATED", params, 0.5 + i / 100, 3, 3, None, f"{i:032x}", outcome)


def test_the_table_fits_100_columns_with_many_long_parameters_and_says_how_trials_ended():
    params = [{f"model.backbone.block_{k}.a_long_parameter": f"{k}-{i}-{'y' * 20}" for k in range(10)} | {"optimizer.lr": i / 10} for i in range(3)]
    rows = [row(0, "finished", params[0]), row(1, "stopped (asha, epoch 3)", params[1]), row(2, "failed", params[2])]
    lines = _table(rows, "val/macro_f1").splitlines()
    assert max(map(len, lines)) <= 100
    assert "stopped (asha, epoch 3)" in lines[2] and "TERMINATED" not in "\n".join(lines)
    assert "a_long_parameter" not in lines[0]
    assert lines[-1] == "(left out for width: best at, epochs, mlflow run, 8 parameter(s); the leaderboard has every column)"


def test_a_small_table_keeps_every_column_and_names_parameters_by_their_leaf():
    rows = [row(0, "finished", {"optimizer.lr": 0.1, "train.seed": 0}), row(1, "failed", {"optimizer.lr": 0.2, "train.seed": 0})]
    header = _table(rows, "val/macro_f1").splitlines()[0].split()
    assert header == ["trial", "status", "lr", "macro_f1", "best", "at", "epochs", "mlflow", "run"]


def test_the_run_ends_with_where_to_look_next(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    layout = SweepLayout(str(tmp_path / "results"), "quick")
    layout.write_text("raysweep_manifest.json", json.dumps({"mlflow_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}))
    assert [line.split()[0] for line in next_steps(layout)] == ["next:", "raysweep", "results/quick/leaderboard.csv", "results/quick/logs/"]
    layout.write_text("raysweep_manifest.json", json.dumps({"mlflow_uri": "http://user:secret@mlflow:5000"}))
    assert "secret" not in next_steps(layout)[1]


def test_with_several_objectives_the_front_is_marked_after_the_metric():
    rows = [row(0, "finished", {"optimizer.lr": 0.1}), row(1, "finished", {"optimizer.lr": 0.2}), row(2, "stopped (asha, epoch 1)", {"optimizer.lr": 0.3})]
    for r, on_front in zip(rows, [True, False, False]):
        r.pareto = on_front
    lines = _table(rows, "val/macro_f1").splitlines()
    assert lines[0].split() == ["trial", "status", "lr", "macro_f1", "front", "best", "at", "epochs", "mlflow", "run"]
    front = lines[0].index("front")
    assert [line[front] for line in lines[1:]] == ["*", " ", " "]
