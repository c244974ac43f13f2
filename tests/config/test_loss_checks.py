"""Cross-field checks of the loss section: a loss that cannot serve the declared task,
and LDAM's margin form; on the defaults and on every value of a search domain."""

import pytest

from raysweep.commands import load_checked
from raysweep.errors import ConfigError
from tests.conftest import tiny_config

MULTILABEL = {"kind": "synthetic", "task": "multilabel"}


def error(sweep_file, **sections) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_checked(sweep_file(tiny_config(**sections)))
    return info.value


@pytest.mark.parametrize("name, needs", [
    ("ldam", "single-label class counts"), ("recall", "single-label targets"), ("ce", "single-label targets"),
    ("focal", "single-label targets"), ("flsd53", "single-label targets"), ("mc", "single-label targets"),
])
def test_single_label_losses_are_refused_for_a_multilabel_task(sweep_file, name, needs):
    e = error(sweep_file, data=MULTILABEL, loss={"name": name, "max_m": 0.5})
    assert e.path == "loss.name"
    assert e.message == f"loss {name!r} needs {needs}; data.task is multilabel (use bce or sigmoid_focal)"
    assert e.source.endswith("sweep.yaml") and e.line() == f"{e.source}: loss.name: {e.message}"


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("name", ["bce", "sigmoid_focal"])
def test_per_class_losses_serve_every_task(sweep_file, task, name):
    data = {"kind": "synthetic", "task": task, "num_classes": 2 if task == "binary" else 3}
    assert load_checked(sweep_file(tiny_config(data=data, loss={"name": name}))).config.loss.name == name


def test_an_auto_task_is_left_to_the_data(sweep_file):
    sweep = load_checked(sweep_file(tiny_config(loss={"name": "focal"})))
    assert sweep.config.data.task == "auto"


def test_a_searched_loss_name_is_checked_value_by_value(sweep_file):
    e = error(sweep_file, data=MULTILABEL, loss={"name": {"choice": ["bce", "focal"]}})
    assert e.path == "loss.name"
    assert "loss 'focal' needs single-label targets; data.task is multilabel" in e.message and "(in choice[1])" in e.message


@pytest.mark.parametrize("margins, got", [({}, "neither"), ({"max_m": 0.5, "C": 1.0}, "both")])
def test_ldam_needs_exactly_one_of_max_m_and_c(sweep_file, margins, got):
    e = error(sweep_file, loss={"name": "ldam", **margins})
    assert e.path == "loss.C" and "exactly one of loss.max_m" in e.message and got in e.message


@pytest.mark.parametrize("margins", [{"max_m": 0.5}, {"C": -1.0}, {"C": {"uniform": [-1.0, 1.0]}}])
def test_ldam_with_one_margin_form_loads(sweep_file, margins):
    sweep = load_checked(sweep_file(tiny_config(loss={"name": "ldam", "drw_start_epoch": 1, **margins})))
    assert sweep.config.loss.name == "ldam"


def test_ldam_in_a_search_is_checked_with_the_other_defaults(sweep_file):
    # ce is fine without a margin; ldam, a value of the same domain, is not
    e = error(sweep_file, loss={"name": {"choice": ["ce", "ldam"]}})
    assert e.path == "loss.C" and "(with loss.name = 'ldam')" in e.message


def test_quickstart_validates():
    from tests.conftest import REPO

    sweep = load_checked(REPO / "search_spaces" / "quickstart.yaml")
    assert sweep.space["loss.name"].values == ("ce", "focal")
