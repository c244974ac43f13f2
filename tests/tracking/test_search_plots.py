"""The sweep run's search plots: Optuna's own views of a real study, as PNG and HTML."""

import optuna
from PIL import Image

from raysweep.tracking.artifacts import search_plots


def study_of(lrs: list[float]) -> optuna.Study:
    """A finished study of one trial per learning rate, each with three epochs' values."""
    study = optuna.create_study(direction="maximize")
    for lr in lrs:
        study.enqueue_trial({"lr": lr})
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})
        for epoch in (1, 2, 3):
            trial.report(lr * epoch, epoch)
        study.tell(trial, lr * 3)
    return study


def test_a_study_whose_trials_differ_gets_every_view(tmp_path):
    files = search_plots(study_of([0.01, 0.1, 0.3]), tmp_path)
    names = {"optimization_history", "intermediate_values", "param_importances", "parallel_coordinate"}
    assert {f.name for f in files} == {f"{n}.{ext}" for n in names for ext in ("png", "html")}
    for png in (f for f in files if f.suffix == ".png"):
        with Image.open(png) as image:
            assert image.size == (900, 500)  # 9 x 5 in at 100 dpi
    assert "plotly" in (tmp_path / "parallel_coordinate.html").read_text()


def test_views_that_compare_searched_values_are_left_out_when_no_value_differs(tmp_path):
    files = search_plots(study_of([0.1, 0.1, 0.1]), tmp_path)
    assert {f.stem for f in files} == {"optimization_history", "intermediate_values"}
