"""Concurrency planning from cluster resources (no Ray needed: the cluster is described)."""

import pytest

from raysweep.config import load_sweep
from raysweep.errors import ClusterError
from raysweep.sweep.plan import per_trial, plan
from tests.conftest import tiny_config


def cfg_of(sweep_file, **resources):
    return load_sweep(sweep_file(tiny_config(resources=resources))).config


@pytest.mark.parametrize(
    "resources, cluster, expected",
    [
        ({"workers": 2, "cpus_per_worker": 0.5}, {"CPU": 2.0}, 2),  # two 2-worker trials on two cores
        ({"workers": 1, "cpus_per_worker": 1}, {"CPU": 2.0}, 2),
        ({"workers": 2, "cpus_per_worker": 1}, {"CPU": 2.0}, 1),
        ({"workers": 1, "cpus_per_worker": 0.3}, {"CPU": 2.0}, 6),
        ({"workers": 2, "cpus_per_worker": 4, "gpus_per_worker": 1}, {"CPU": 32.0, "GPU": 4.0}, 2),
        ({"workers": 1, "cpus_per_worker": 1, "max_concurrent": 1}, {"CPU": 8.0}, 1),
    ],
)
def test_as_many_trials_as_fit_at_once(sweep_file, resources, cluster, expected):
    nodes = [cluster]
    assert plan(cfg_of(sweep_file, **resources), cluster, nodes, cfg_of(sweep_file, **resources).resources.max_concurrent).concurrency == expected


def test_a_trial_asks_workers_times_per_worker_and_nothing_for_the_trial_actor(sweep_file):
    assert per_trial(cfg_of(sweep_file, workers=3, cpus_per_worker=2, gpus_per_worker=1, custom={"node_b": 1})) == {"CPU": 6, "GPU": 3, "node_b": 3}


def test_one_worker_trials_with_a_fraction_of_a_gpu_are_packed_onto_one_gpu(sweep_file):
    cfg = cfg_of(sweep_file, workers=1, cpus_per_worker=2, gpus_per_worker=0.25)
    assert per_trial(cfg) == {"CPU": 2, "GPU": 0.25}
    assert plan(cfg, {"CPU": 16.0, "GPU": 1.0}, [{"CPU": 16.0, "GPU": 1.0}]).concurrency == 4
    assert plan(cfg, {"CPU": 6.0, "GPU": 1.0}, [{"CPU": 6.0, "GPU": 1.0}]).concurrency == 3  # the CPUs bound it here


def test_the_fraction_reaches_ray_train_and_an_inline_trial_actor(sweep_file, tmp_path):
    from raysweep.sweep.trial import trial_resources
    from trainables.launch import build_trainer

    cfg = cfg_of(sweep_file, workers=1, cpus_per_worker=2, gpus_per_worker=0.25)
    scaling = build_trainer(cfg, name="packed", storage_path=str(tmp_path)).scaling_config
    assert scaling.use_gpu and scaling.num_workers == 1 and scaling.resources_per_worker == {"CPU": 2, "GPU": 0.25}
    inline = cfg.model_copy(update={"resources": cfg.resources.model_copy(update={"inline": True})})
    assert trial_resources(inline) == {"CPU": 2, "GPU": 0.25}


def test_a_trial_that_can_never_fit_is_refused(sweep_file):
    with pytest.raises(ClusterError, match=r"^resources.gpus_per_worker: a trial needs 8 GPU \(4 worker\(s\) x 2\), the cluster has 4$"):
        plan(cfg_of(sweep_file, workers=4, gpus_per_worker=2), {"CPU": 64.0, "GPU": 4.0}, [{"CPU": 64.0, "GPU": 4.0}])
    with pytest.raises(ClusterError, match="one worker needs 4 CPU, the largest node has 2"):
        plan(cfg_of(sweep_file, workers=1, cpus_per_worker=4), {"CPU": 6.0}, [{"CPU": 2.0}] * 3)


def test_an_autoscaling_cluster_is_trusted(sweep_file):
    cfg = cfg_of(sweep_file, workers=2, gpus_per_worker=1)
    assert plan(cfg, {"CPU": 2.0}, [{"CPU": 2.0}], 3, autoscaling=True).concurrency == 3


def cv_cfg(sweep_file, parallel, folds=5, **resources):
    raw = tiny_config(data={"folds": folds}, search={"cv": {"mode": "per_trial", "parallel": parallel}}, resources={"workers": 1, "cpus_per_worker": 1, **resources})
    return load_sweep(sweep_file(raw)).config


@pytest.mark.parametrize(
    "parallel, cluster, folds, concurrency",
    [
        ("auto", {"CPU": 2.0}, 2, 1),  # a trial's two folds fit: they train at once
        ("auto", {"CPU": 3.0}, 2, 1),
        ("auto", {"CPU": 16.0}, 2, 8),
        (True, {"CPU": 5.0}, 5, 1),
        (False, {"CPU": 2.0}, 1, 2),  # lockstep: one worker trains every fold
    ],
)
def test_per_trial_folds_train_at_once_where_they_fit(sweep_file, parallel, cluster, folds, concurrency):
    cfg = cv_cfg(sweep_file, parallel, folds=folds if folds > 1 else 5)
    got = plan(cfg, cluster, [cluster])
    assert (got.fold_groups, got.concurrency) == (folds, concurrency)
    assert got.per_trial == {"CPU": folds}


def test_auto_spreads_the_folds_over_the_workers_there_are_and_the_rest_wait_their_turn(sweep_file):
    got = plan(cv_cfg(sweep_file, "auto", folds=5), {"CPU": 2.0}, [{"CPU": 2.0}])
    assert (got.fold_groups, got.concurrency) == (2, 1)  # folds 0,2,4 on one worker; 1,3 on the other
    assert "2 folds at once" in got.describe()


def test_folds_asked_at_once_that_cannot_fit_are_refused_naming_the_key(sweep_file):
    with pytest.raises(ClusterError, match="5 folds at once") as e:
        plan(cv_cfg(sweep_file, True, folds=5), {"CPU": 2.0}, [{"CPU": 2.0}])
    assert e.value.path == "search.cv.parallel"


def test_inline_trials_train_their_folds_in_lockstep(sweep_file):
    assert plan(cv_cfg(sweep_file, True, folds=3, inline=True), {"CPU": 4.0}, [{"CPU": 4.0}]).fold_groups == 1
