"""Bad input: every user mistake stops raysweep in one line, before any trial starts.

Each case runs the command line (`raysweep.cli.main`, in a fresh directory) and asserts
exit status 2, exactly one line on stderr (the whole message, no traceback), and that
nothing was left behind in the directory it ran in (no results directory, no MLflow
store, no augmentation preview). The cases run in this process, because starting Python
with torch for each costs 5 s; a few of each kind, and every case that starts Ray, also
run as a real `python -m raysweep` process, which proves the same of the real program.

- config mistakes go through `raysweep validate` (no data opened, no Ray);
- data mistakes through `raysweep validate --data`, a few also through `raysweep run`,
  which checks the data before it connects to Ray;
- command-line and cluster mistakes through `raysweep run`; only the GPU case starts
  Ray (`ray` marker), an unreachable `--address`, an unusable `--storage` and a
  `--name` already taken are refused before that.

    pytest tests/test_bad_input.py -m "not ray"
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import pytest
import yaml

from tests.conftest import tiny_config
from tests.fixtures.ray_nodes import CLUSTER_MARKER, _signal_all, _wait_gone, cluster_processes, ticks_since_boot
from tests.trainables import data_factory as make

Sweep = Union[dict, str, None]  # a sweep file: sections, raw YAML text, or no file at all


@dataclass(frozen=True)
class Case:
    """`raysweep <command> sweep.yaml <args>` in a directory `setup` filled, refused with `expected`.

    `sweep` is the file (or `setup(tmp)` returns it, after writing the data it names);
    `{tmp}` in `expected` and `args` stands for the directory."""

    command: tuple[str, ...]
    expected: str
    sweep: Sweep = None
    args: tuple[str, ...] = ()
    setup: Optional[Callable[[Path], Sweep]] = None
    env: dict = field(default_factory=dict)


def validate(expected: str, sweep: Sweep = None, *args: str) -> Case:
    return Case(("validate",), expected, sweep, args)


def sweep(**sections) -> dict:
    return tiny_config(**sections)


def data_case(command: tuple[str, ...], setup: Callable[[Path], dict], expected: str, *args: str) -> Case:
    return Case(command, expected, args=args, setup=setup)


# -- the data each data case points at (relative paths: relative to where raysweep runs) ----------


def missing_dir(tmp: Path) -> dict:
    return sweep(data={"kind": "image_folder", "root": "gone"})


def missing_manifest(tmp: Path) -> dict:
    return sweep(data={"kind": "csv", "path": "nope.csv"})


def missing_image(tmp: Path) -> dict:
    make.csv_manifest(tmp, [("a.png", "x"), ("b.png", "y"), ("c.png", "x"), ("d.png", "y")])
    (tmp / "c.png").unlink()
    return sweep(data={"kind": "csv", "path": "manifest.csv"})


def corrupt_image(tmp: Path) -> dict:
    make.image_folder(tmp, {"a": 3, "b": 3})
    (tmp / "images" / "b" / "b_1.png").write_bytes(b"\x89PNG but not really")
    return sweep(data={"kind": "image_folder", "root": "images"})


def unknown_label(tmp: Path) -> dict:
    make.csv_manifest(tmp, [("a.png", "cat"), ("b.png", "dog"), ("c.png", "cta"), ("d.png", "dog")])
    return sweep(data={"kind": "csv", "path": "manifest.csv", "classes": ["cat", "dog"]})


def empty_class(tmp: Path) -> dict:
    make.image_folder(tmp, {"cat": 3, "dog": 3})
    return sweep(data={"kind": "image_folder", "root": "images", "classes": ["cat", "dog", "eel"]})


def too_many_folds(tmp: Path) -> dict:
    make.image_folder(tmp, {"cat": 6, "dog": 2})
    return sweep(data={"kind": "image_folder", "root": "images", "folds": 3})


def wrong_reshape(tmp: Path) -> dict:
    make.pixel_table(tmp, n=8, shape=(6, 5, 3), fmt="csv")
    return sweep(data={"kind": "pixel_table", "path": "pixels.csv", "reshape": [6, 5, 2]})


def labels_joined_by_space(tmp: Path) -> dict:
    make.csv_manifest(tmp, [("a.png", "1 2"), ("b.png", "1"), ("c.png", "2")])
    return sweep(data={"kind": "csv", "path": "manifest.csv", "classes": ["1", "2"], "task": "multilabel", "label_sep": "|"}, loss={"name": "bce"})


def mixed_channels(tmp: Path) -> dict:
    make.image_folder(tmp, {"a": 3, "b": 3}, channels=3)
    make.write_image(tmp / "images" / "b" / "b_1.png", 8, 1)
    return sweep(data={"kind": "image_folder", "root": "images"})


def wrong_in_chans(tmp: Path) -> dict:
    make.image_folder(tmp, {"a": 3, "b": 3}, channels=3)
    return sweep(data={"kind": "image_folder", "root": "images"}, model={"name": "tiny_cnn", "in_chans": 1})


def missing_channel_file(tmp: Path) -> dict:
    make.channel_files(tmp, ids=["s1", "s2", "s3", "s4"], channels=["red", "green"])
    make.csv_manifest(tmp, [("s1", "a"), ("s2", "b"), ("s3", "a"), ("s4", "b")], images=False)
    (tmp / "channels" / "s3_green.png").unlink()
    return sweep(data={"kind": "channel_files", "path": "manifest.csv", "root": "channels", "channels": ["red", "green"]})


def good_data(tmp: Path) -> dict:
    return sweep(tracking={"enabled": True})  # a run that got going would write ./mlflow.db


def a_file(tmp: Path) -> dict:
    (tmp / "notes.txt").write_text("not a directory\n")
    return good_data(tmp)


def sweep_named_quick(storage: str, manifest: bool = True) -> Callable[[Path], dict]:
    """A sweep directory `quick` already under `storage`."""

    def setup(tmp: Path) -> dict:
        (tmp / storage / "quick").mkdir(parents=True)
        if manifest:
            (tmp / storage / "quick" / "raysweep_manifest.json").write_text('{"sweep_id": "quick"}')
        return sweep()

    return setup


VALIDATE_DATA = ("validate", "--data")
RUN = ("run",)
MULTI_OBJECTIVE = {"metric": ["val/macro_f1", "val/loss"], "mode": ["max", "min"]}

CASES = {
    # -- the sweep file, through `raysweep validate` ----------------------------------------------
    "unknown-key": validate("error: sweep.yaml: optimizer.lrr: unknown key, did you mean 'lr'?", sweep(optimizer={"lrr": 0.1})),
    "unknown-section": validate("error: sweep.yaml: trian: unknown key, did you mean 'train' or 'tracking'?", {**sweep(), "trian": {"epochs": 3}}),
    "wrong-type": validate("error: sweep.yaml: train.epochs: must be an integer, got 'many'", sweep(train={"epochs": "many"})),
    "section-not-a-mapping": validate("error: sweep.yaml: optimizer: must be a mapping, got 3", sweep(optimizer=3)),
    "negative-lr": validate("error: sweep.yaml: optimizer.lr: must be > 0, got -0.1", sweep(optimizer={"lr": -0.1})),
    "drop-rate-above-1": validate("error: sweep.yaml: model.drop_rate: must be < 1, got 1.5", sweep(model={"drop_rate": 1.5})),
    "one-fold": validate("error: sweep.yaml: data.folds: must be >= 2, got 1", sweep(data={"folds": 1})),
    "accumulate-0": validate("error: sweep.yaml: train.accumulate: must be >= 1, got 0", sweep(train={"accumulate": 0})),
    "unknown-head": validate(
        "error: sweep.yaml: model.head: must be one of linear, mish_mlp, normed_linear, got 'mlp', did you mean 'mish_mlp'?",
        sweep(model={"head": "mlp"}),
    ),
    "name-with-space": validate("error: sweep.yaml: name: must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$, got 'my sweep'", sweep(name="my sweep")),
    "no-name": validate("error: sweep.yaml: name: required", {k: v for k, v in sweep().items() if k != "name"}),
    "empty-grid": validate("error: sweep.yaml: optimizer.lr: grid must not be empty", sweep(optimizer={"lr": {"grid": []}})),
    "bad-value-in-choice": validate("error: sweep.yaml: optimizer.lr: must be > 0, got -0.1 (in choice[1])", sweep(optimizer={"lr": {"choice": [0.1, -0.1]}})),
    "default-outside-domain": validate(
        "error: sweep.yaml: optimizer.lr: default 1.0 is not in the loguniform domain [0.01, 0.1]",
        sweep(optimizer={"lr": {"loguniform": [0.01, 0.1], "default": 1.0}}),
    ),
    "misspelt-domain": validate(
        "error: sweep.yaml: optimizer.lr: unknown domain 'logunifrom' (did you mean 'loguniform'?); allowed: choice, grid, uniform, loguniform, int",
        sweep(optimizer={"lr": {"logunifrom": [1e-4, 1e-2]}}),
    ),
    "misspelt-domain-with-default": validate(
        "error: sweep.yaml: train.batch_size: unknown domain 'chioce' (did you mean 'choice'?); allowed: choice, grid, uniform, loguniform, int",
        sweep(train={"batch_size": {"chioce": [8, 16], "default": 8}}),
    ),
    "misspelt-domain-option": validate(
        "error: sweep.yaml: optimizer.lr: unknown domain option 'defualt' (did you mean 'default'?); allowed: default",
        sweep(optimizer={"lr": {"loguniform": [1e-4, 1e-2], "defualt": 1e-3}}),
    ),
    "domain-on-unsearchable-key": validate(
        "error: sweep.yaml: resources.workers: cannot be searched; give one value, not grid", sweep(resources={"workers": {"grid": [1, 2]}}),
    ),
    "ddp-workers-sharing-one-gpu": validate(
        "error: sweep.yaml: resources.gpus_per_worker: 0.5 with workers: 2 would put DDP workers on one GPU, which NCCL refuses "
        "(ray-project/ray#48012); set gpus_per_worker: 1, or workers: 1 to pack one-worker trials onto a GPU",
        sweep(resources={"workers": 2, "gpus_per_worker": 0.5}),
    ),
    "gpu-count-ray-cannot-schedule": validate(
        "error: sweep.yaml: resources.gpus_per_worker: must be a fraction below 1 or a whole number (Ray's rule), got 1.5",
        sweep(resources={"gpus_per_worker": 1.5}),
    ),
    "float-domain-on-int-key": validate(
        "error: sweep.yaml: train.epochs: is an integer; use {int: [1, 5]} instead of uniform", sweep(train={"epochs": {"uniform": [1, 5]}}),
    ),
    "plain-file-mlflow-store": validate(
        "error: sweep.yaml: tracking.uri: MLflow 3 refuses the plain file store; use sqlite:///path.db or http(s)://server",
        sweep(tracking={"uri": "file:///tmp/mlruns"}),
    ),
    "misspelt-resize-mode": validate(
        "error: sweep.yaml: augment.resize.mode: must be one of auto, none, resize, center_crop, letterbox, random_resized_crop, got 'centre_crop', did you mean 'center_crop' or 'random_resized_crop' or 'letterbox'?",
        sweep(augment={"resize": {"mode": "centre_crop"}}),
    ),
    "two-character-separator": validate("error: sweep.yaml: data.sep: must be one character (or auto), got ';;'", sweep(data={"sep": ";;"})),
    "one-mode-for-two-metrics": validate(
        "error: sweep.yaml: search.mode: needs one mode per metric (2), got 1", sweep(search={"metric": ["val/macro_f1", "val/loss"], "mode": ["max"]}),
    ),
    "cases-not-a-list": validate("error: sweep.yaml: search.cases: must be a list, got 3", sweep(search={"cases": 3})),
    "cases-empty": validate(
        "error: sweep.yaml: search.cases: must be a non-empty list of mappings of dotted keys to values, got []", sweep(search={"cases": []}),
    ),
    "case-with-other-keys": validate(
        "error: sweep.yaml: search.cases[1]: has keys train.batch_size, optimizer.lr but search.cases[0] has train.batch_size; every case sets the same keys",
        sweep(search={"cases": [{"train.batch_size": 8}, {"train.batch_size": 16, "optimizer.lr": 0.1}]}),
    ),
    "case-repeated": validate(
        "error: sweep.yaml: search.cases[1]: repeats search.cases[0]", sweep(search={"cases": [{"train.batch_size": 8}, {"train.batch_size": 8}]}),
    ),
    "case-unknown-key": validate(
        "error: sweep.yaml: search.cases[0].train.batchsize: unknown key, did you mean 'batch_size' or 'max_val_batches'? "
        "(a case's keys are dotted paths such as model.name or train.batch_size)",
        sweep(search={"cases": [{"train.batchsize": 8}]}),
    ),
    "case-bad-value": validate(
        "error: sweep.yaml: search.cases[1].train.accumulate: must be >= 1, got 0",
        sweep(search={"cases": [{"train.batch_size": 8, "train.accumulate": 1}, {"train.batch_size": 16, "train.accumulate": 0}]}),
    ),
    "case-unknown-model": validate(
        "error: sweep.yaml: search.cases[1].model.name: unknown model 'resnet5O', did you mean 'resnet50' or 'resnet51q' or 'resnet50t'?",
        sweep(search={"cases": [{"model.name": "tiny_cnn"}, {"model.name": "resnet5O"}]}),
    ),
    "case-key-also-a-domain": validate(
        "error: sweep.yaml: search.cases[0].train.batch_size: is searched by its own grid domain too; give it one value there, or leave it out of the cases",
        sweep(train={"batch_size": {"grid": [8, 16]}}, search={"cases": [{"train.batch_size": 8}]}),
    ),
    "case-on-unsearchable-key": validate(
        "error: sweep.yaml: search.cases[0].resources.workers: cannot be searched, so a case cannot set it", sweep(search={"cases": [{"resources.workers": 2}]}),
    ),
    "case-holding-a-domain": validate(
        "error: sweep.yaml: search.cases[0].train.batch_size: a case holds plain values, not a search domain",
        sweep(search={"cases": [{"train.batch_size": {"grid": [8, 16]}}]}),
    ),
    "unknown-data-kind": validate("error: sweep.yaml: data.kind: unknown data source 'imagefolder', did you mean 'image_folder'?", sweep(data={"kind": "imagefolder"})),
    "csv-without-path": validate("error: sweep.yaml: data.path: required for data.kind 'csv'", sweep(data={"kind": "csv"})),
    "unknown-model": validate(
        "error: sweep.yaml: model.name: unknown model 'resnet5O', did you mean 'resnet50' or 'resnet51q' or 'resnet50t'?", sweep(model={"name": "resnet5O"}),
    ),
    "unknown-loss": validate(
        "error: sweep.yaml: loss.name: unknown loss 'focall', did you mean 'focal' or 'recall' or 'sigmoid_focal'?", sweep(loss={"name": "focall"}),
    ),
    "unknown-loss-in-grid": validate(
        "error: sweep.yaml: loss.name: unknown loss 'cee', did you mean 'ce' or 'bce'? (in grid[1])", sweep(loss={"name": {"grid": ["ce", "cee"]}}),
    ),
    "ldam-on-multilabel": validate(
        "error: sweep.yaml: loss.name: loss 'ldam' needs single-label class counts; data.task is multilabel (use bce or sigmoid_focal)",
        sweep(data={"task": "multilabel"}, loss={"name": "ldam", "max_m": 0.5}),
    ),
    "ldam-without-margin": validate(
        "error: sweep.yaml: loss.C: loss 'ldam' takes exactly one of loss.max_m (largest margin, Cao et al.) and loss.C (margin C / n_j^(1/4)); got neither",
        sweep(loss={"name": "ldam"}),
    ),
    "unknown-optimizer": validate(
        "error: sweep.yaml: optimizer.name: unknown optimizer 'adamm', did you mean 'adam' or 'radam' or 'nadam'?", sweep(optimizer={"name": "adamm"}),
    ),
    "unknown-scheduler": validate("error: sweep.yaml: scheduler.name: unknown scheduler 'cosin', did you mean 'cosine'?", sweep(scheduler={"name": "cosin"})),
    "unknown-augment-preset": validate(
        "error: sweep.yaml: augment.preset: unknown augmentation preset 'heavy'; allowed: cifar_hw2, ece449, light, none", sweep(augment={"preset": "heavy"}),
    ),
    "fold-not-below-folds": validate("error: sweep.yaml: data.fold: must be < data.folds (3), got 3", sweep(data={"folds": 3, "fold": 3})),
    "unknown-sampler": validate("error: sweep.yaml: search.sampler: unknown Optuna sampler 'tpee', did you mean 'tpe'?", sweep(search={"sampler": "tpee"})),
    "single-objective-sampler-two-metrics": validate(
        "error: sweep.yaml: search.sampler: sampler 'cmaes' optimizes one metric; use tpe, nsga2 or random for 2 metrics",
        sweep(search={**MULTI_OBJECTIVE, "sampler": "cmaes"}),
    ),
    "unknown-trial-scheduler": validate(
        "error: sweep.yaml: search.scheduler: unknown trial scheduler 'ashaa', did you mean 'asha'?", sweep(search={"scheduler": "ashaa"}),
    ),
    "multi-objective-with-hyperband": validate(
        "error: sweep.yaml: search.scheduler: hyperband stops trials on one metric; with 2 metrics use scheduler: asha (multi-objective ASHA) or none",
        sweep(search={**MULTI_OBJECTIVE, "scheduler": "hyperband"}),
    ),
    "multi-objective-with-median": validate(
        "error: sweep.yaml: search.scheduler: median stops trials on one metric; with 2 metrics use scheduler: asha (multi-objective ASHA) or none",
        sweep(search={**MULTI_OBJECTIVE, "scheduler": "median"}),
    ),
    "fractional-reduction-factor": validate(
        "error: sweep.yaml: search.reduction_factor: asha takes a whole reduction factor (2, 3, 4, ...), got 2.5",
        sweep(search={"scheduler": "asha", "reduction_factor": 2.5}),
    ),
    "max-t-above-epochs": validate("error: sweep.yaml: search.max_t: must be <= train.epochs (2), got 5", sweep(search={"max_t": 5})),
    "unknown-metric": validate(
        "error: sweep.yaml: search.metric: the trainer never reports 'val/not_a_metric', did you mean 'val/auroc'?; allowed: val/accuracy, val/auroc, "
        "val/balanced_accuracy, val/loss, val/macro_f1, val/map, val/micro_f1, val/weighted_f1, train/loss, val/precision/<class>, val/recall/<class>, val/f1/<class>",
        sweep(search={"metric": "val/not_a_metric"}),
    ),
    "misspelt-metric": validate(
        "error: sweep.yaml: search.metric: the trainer never reports 'val/macro-f1', did you mean 'val/macro_f1'?; allowed: val/accuracy, "
        "val/balanced_accuracy, val/loss, val/macro_f1, val/micro_f1, val/weighted_f1, train/loss, val/precision/<class>, val/recall/<class>, val/f1/<class>",
        sweep(data={"task": "multiclass"}, search={"metric": "val/macro-f1"}),
    ),
    "second-metric-of-two": validate(
        "error: sweep.yaml: search.metric: the trainer never reports 'val/los', did you mean 'val/loss'?; allowed: val/accuracy, val/auroc, "
        "val/balanced_accuracy, val/loss, val/macro_f1, val/map, val/micro_f1, val/weighted_f1, train/loss, val/precision/<class>, val/recall/<class>, val/f1/<class>",
        sweep(search={"metric": ["val/macro_f1", "val/los"], "mode": ["max", "min"], "scheduler": "none"}),
    ),
    "per-class-metric-of-a-declared-class": validate(
        "error: sweep.yaml: search.metric: the trainer never reports 'val/f1/cta', did you mean 'val/f1/cat'?; allowed: val/accuracy, val/auroc, "
        "val/balanced_accuracy, val/loss, val/macro_f1, val/map, val/micro_f1, val/weighted_f1, train/loss, val/precision/<class>, val/recall/<class>, val/f1/<class>",
        sweep(data={"classes": ["cat", "dog", "eel"]}, search={"metric": "val/f1/cta"}),
    ),
    "cv-without-folds": validate("error: sweep.yaml: search.cv.mode: cross-validation (per_trial) needs data.folds", sweep(search={"cv": {"mode": "per_trial"}})),
    # -- the file itself and --set -----------------------------------------------------------------
    "bad-yaml": validate("error: sweep.yaml: line 2: not valid YAML: expected ',' or ']', but got '<stream end>'", "name: [unclosed\n"),
    "empty-file": validate("error: sweep.yaml: is empty; a sweep file is a mapping of sections (name, data, model, ...)", ""),
    "not-a-mapping": validate("error: sweep.yaml: must be a mapping of sections (name, data, model, ...), got a list", "- data\n- model\n"),
    "missing-file": validate("error: sweep.yaml: no such file", None),
    "python-tag": validate(  # safe loading only: the tag would run `touch pwned`
        "error: sweep.yaml: line 1: not valid YAML: tag !!python/object/apply:os.system is not allowed (sweep files are read as plain YAML, no Python objects)",
        "name: !!python/object/apply:os.system ['touch pwned']\n",
    ),
    "python-object-tag": validate(
        "error: sweep.yaml: line 2: not valid YAML: tag !!python/object:collections.OrderedDict is not allowed (sweep files are read as plain YAML, no Python objects)",
        "name: tiny\nmodel: !!python/object:collections.OrderedDict {}\n",
    ),
    "set-unknown-key": validate("error: --set: train.epoch: unknown key, did you mean 'epochs'?", sweep(), "--set", "train.epoch=3"),
    "set-unknown-section": validate("error: --set: optimzer.lr: unknown key 'optimzer', did you mean 'optimizer'?", sweep(), "--set", "optimzer.lr=0.1"),
    "set-bad-value": validate("error: --set: optimizer.lr: must be > 0, got -1", sweep(), "--set", "optimizer.lr=-1"),
    "set-without-value": validate("error: --set: expected dotted.key=value, got 'train.epochs'", sweep(), "--set", "train.epochs"),
    "set-python-tag": validate(  # a --set value is YAML read safely too: the tag stays an inert string
        "error: --set: train.epochs: must be an integer, got \"!!python/object/apply:os.system ['touch pwned']\"",
        sweep(), "--set", "train.epochs=!!python/object/apply:os.system ['touch pwned']",
    ),
    # -- the data, through `raysweep validate --data` --------------------------------------------
    "missing-directory": data_case(VALIDATE_DATA, missing_dir, "error: sweep.yaml: data.root: no such directory: {tmp}/gone"),
    "missing-directory-set": data_case(VALIDATE_DATA, missing_dir, "error: --set: data.root: no such directory: {tmp}/elsewhere", "--set", "data.root=elsewhere"),
    "per-class-metric-of-the-datas-classes": data_case(
        VALIDATE_DATA, lambda tmp: sweep(search={"metric": "val/f1/3"}),
        "error: sweep.yaml: search.metric: the trainer never reports 'val/f1/3', did you mean 'val/f1/2'?; allowed: val/accuracy, "
        "val/balanced_accuracy, val/loss, val/macro_f1, val/micro_f1, val/weighted_f1, train/loss, val/precision/<class>, val/recall/<class>, val/f1/<class>",
    ),
    "missing-manifest": data_case(VALIDATE_DATA, missing_manifest, "error: sweep.yaml: data.path: no such file: {tmp}/nope.csv"),
    "missing-image": data_case(VALIDATE_DATA, missing_image, "error: {tmp}/c.png: no such file ({tmp}/manifest.csv line 4)"),
    "missing-channel-file": data_case(VALIDATE_DATA, missing_channel_file, "error: {tmp}/channels/s3_green.png: no such file ({tmp}/manifest.csv line 4)"),
    "corrupt-image": data_case(VALIDATE_DATA, corrupt_image, "error: {tmp}/images/b/b_1.png: not an image file PIL can read"),
    "label-not-in-classes": data_case(VALIDATE_DATA, unknown_label, "error: {tmp}/manifest.csv: line 4: label 'cta' is not in data.classes (cat, dog)"),
    "class-without-samples": data_case(VALIDATE_DATA, empty_class, "error: sweep.yaml: data: class 'eel' has no samples"),
    "folds-above-smallest-class": data_case(
        VALIDATE_DATA, too_many_folds, "error: sweep.yaml: data.folds: a stratified split into 3 folds needs >= 3 samples per class; class 'dog' has 2",
    ),
    "reshape-not-matching-rows": data_case(
        VALIDATE_DATA, wrong_reshape, "error: sweep.yaml: data.reshape: [6, 5, 2] holds 60 values but the rows of {tmp}/pixels.csv have 90 pixels",
    ),
    "crop-larger-than-the-shorter-side": data_case(
        VALIDATE_DATA, lambda tmp: {**good_data(tmp), "augment": {"resize": {"mode": "center_crop", "shorter_side": 200, "size": 224}}},
        "error: sweep.yaml: augment.resize.shorter_side: is 200, smaller than the 224x224 crop; use at least 224",
    ),
    "labels-joined-by-another-separator": data_case(
        VALIDATE_DATA, labels_joined_by_space,
        "error: {tmp}/manifest.csv: line 2: label '1 2' is not in data.classes (1, 2); split on ' ' it is classes 1, 2: set data.label_sep: ' '",
    ),
    "mixed-channel-counts": data_case(
        VALIDATE_DATA, mixed_channels,
        "error: {tmp}/images/b/b_1.png: has 1 channel but the first image ({tmp}/images/a/a_0.png) has 3; set data.image_mode (L, RGB or RGBA) to convert every file",
    ),
    "in-chans-not-the-images": data_case(
        VALIDATE_DATA, wrong_in_chans, "error: sweep.yaml: model.in_chans: is 1 but the images have 3 channels ({tmp}/images/a/a_0.png)",
    ),
    # -- `raysweep run` checks the data before it starts Ray ---------------------------------------
    "run-missing-directory": data_case(RUN, missing_dir, "error: sweep.yaml: data.root: no such directory: {tmp}/gone"),
    "run-label-not-in-classes": data_case(RUN, unknown_label, "error: {tmp}/manifest.csv: line 4: label 'cta' is not in data.classes (cat, dog)"),
    "run-folds-above-smallest-class": data_case(
        RUN, too_many_folds, "error: sweep.yaml: data.folds: a stratified split into 3 folds needs >= 3 samples per class; class 'dog' has 2",
    ),
    # -- ... and --storage and --address before it starts Ray --------------------------------------
    "storage-is-a-file": data_case(RUN, a_file, "error: --storage: notes.txt is a file, not a directory", "--storage", "notes.txt"),
    "storage-under-a-file": data_case(
        RUN, a_file, "error: --storage: cannot create notes.txt/results: {tmp}/notes.txt is a file, not a directory", "--storage", "notes.txt/results",
    ),
    # -- an explicit --name is never made unique: one that is taken is refused -------------------
    "name-taken": data_case(
        RUN, sweep_named_quick("raysweep_results"),
        "error: --name: sweep 'quick' already exists in {tmp}/raysweep_results; continue it with 'raysweep resume quick', or choose another --name",
        "--name", "quick",
    ),
    "name-taken-in-storage": data_case(
        RUN, sweep_named_quick("runs/cifar"),
        "error: --name: sweep 'quick' already exists in {tmp}/runs/cifar; continue it with 'raysweep resume quick --storage runs/cifar', or choose another --name",
        "--name", "quick", "--storage", "runs/cifar",
    ),
    "name-taken-by-no-sweep": data_case(
        RUN, sweep_named_quick("raysweep_results", manifest=False),
        "error: --name: {tmp}/raysweep_results/quick already exists and holds no sweep; choose another --name", "--name", "quick",
    ),
    "unreachable-address": data_case(RUN, good_data, "error: --address: cannot reach a Ray cluster at 127.0.0.1:1", "--address", "127.0.0.1:1"),
    # -- a trial that can never fit: starts Ray to see the cluster ---------------------------------
    "gpus-on-a-cluster-without": pytest.param(
        Case(RUN, "error: sweep.yaml: resources.gpus_per_worker: a trial needs 1 GPU (1 worker(s) x 1), the cluster has 0",
             sweep(resources={"gpus_per_worker": 1}, tracking={"enabled": True}), env={"CUDA_VISIBLE_DEVICES": ""}),
        marks=pytest.mark.ray,
    ),
}


def _param(name: str, case) -> "pytest.ParameterSet":
    if isinstance(case, Case):
        return pytest.param(case, id=name)
    return pytest.param(*case.values, marks=case.marks, id=name)


def write_sweep(tmp: Path, content: Sweep) -> None:
    if content is None:
        return
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    (tmp / "sweep.yaml").write_text(text)


def raysweep(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run the CLI; then stop whatever Ray processes it left behind, found by a marker in
    their environment or by the CLI's session (never by name)."""
    marker = f"bad-input-{uuid.uuid4().hex[:12]}"
    since = ticks_since_boot()
    full_env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    full_env.update({CLUSTER_MARKER: marker, **env})
    proc = subprocess.Popen(
        [sys.executable, "-m", "raysweep", *args], cwd=cwd, env=full_env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        left = cluster_processes(marker, {proc.pid}, since)
        _signal_all(left, signal.SIGTERM)
        _signal_all(_wait_gone(left, 10), signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def in_process(args: list[str], cwd: Path, env: dict, capsys) -> subprocess.CompletedProcess:
    """The CLI's `main` as `raysweep` would run it in `cwd`, with the environment restored after."""
    from raysweep.cli import main

    saved, here = dict(os.environ), os.getcwd()
    for key in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
        os.environ.pop(key, None)
    os.environ.update(env)
    os.chdir(cwd)
    capsys.readouterr()
    try:
        code = main(args)
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


# these also run as a real process: a config, a data and a command-line mistake, each command
IN_A_PROCESS = ("unknown-key", "misspelt-metric", "python-tag", "corrupt-image", "run-label-not-in-classes", "unreachable-address", "storage-is-a-file", "name-taken")


def _check_case(tmp_path, case: Case, run) -> None:
    tmp = tmp_path.resolve()
    write_sweep(tmp, case.setup(tmp) if case.setup else case.sweep)
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    args = [a.replace("{tmp}", str(tmp)) for a in case.args]

    command, *options = case.command  # `validate sweep.yaml --data`
    result = run([command, "sweep.yaml", *options, *args], tmp, case.env)

    assert (result.returncode, result.stderr) == (2, case.expected.replace("{tmp}", str(tmp)) + "\n"), result.stdout
    assert sorted(p.relative_to(tmp) for p in tmp.rglob("*")) == before  # no results, no mlflow.db, no preview
    if command == "run":
        assert result.stdout == ""  # nothing started


def _needs_ray(param) -> bool:
    return any(m.name == "ray" for m in param.marks)


@pytest.mark.parametrize("case", [p for p in (_param(n, c) for n, c in CASES.items()) if not _needs_ray(p)])
def test_bad_input_is_refused_in_one_line(tmp_path, case: Case, capsys):
    _check_case(tmp_path, case, lambda args, cwd, env: in_process(args, cwd, env, capsys))


@pytest.mark.parametrize("case", [p for p in (_param(n, c) for n, c in CASES.items()) if _needs_ray(p) or p.id in IN_A_PROCESS])
def test_bad_input_is_refused_in_one_line_by_the_real_program(tmp_path, case: Case):
    _check_case(tmp_path, case, raysweep)


def test_secrets_in_a_tracking_uri_are_never_printed(tmp_path):
    """`raysweep ui` names the team server without the user:password in its URI."""
    write_sweep(tmp_path, sweep(tracking={"uri": "http://alice:s3cret@mlflow.example:5000"}))
    result = raysweep(["ui", "sweep.yaml"], tmp_path, {})
    assert (result.returncode, result.stdout, result.stderr) == (0, "MLflow UI: http://***@mlflow.example:5000 (the tracking server serves it)\n", "")


def test_an_unreachable_mlflow_is_refused_without_its_password(tmp_path, monkeypatch):
    """MLflow's own error quotes the request URL, credentials and all; raysweep's line does not."""
    from raysweep.config import load_sweep
    from raysweep.errors import ConfigError
    from raysweep.sweep.layout import SweepLayout
    from raysweep.tracking.sweep import open_sweep

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    write_sweep(tmp_path, sweep(tracking={"uri": "http://alice:s3cret@127.0.0.1:1"}))
    loaded = load_sweep(tmp_path / "sweep.yaml")
    with pytest.raises(ConfigError) as info:
        open_sweep(loaded, SweepLayout(str(tmp_path / "results"), "tiny"), {"config_hash": "0"})
    line = info.value.line()
    assert line.startswith("tracking.uri: cannot reach MLflow at http://***@127.0.0.1:1: API request to http://***@127.0.0.1:1/api/")
    assert "s3cret" not in line and "alice" not in line


def test_params_logged_to_mlflow_hide_secrets():
    from raysweep.tracking.store import REDACTED, flat_params, redact_text, redact_uri

    params = flat_params({
        "tracking": {"uri": "https://alice:s3cret@mlflow.example/", "enabled": True},
        "data": {"path": "s3://bucket/train.csv", "api_key": "k-123", "root": "/data/x"},
        "model": {"kwargs": {"hf_token": "hf_abc", "auth": "basic", "widths": [4, 8]}},
        "optimizer": {"lr": 0.1, "db_password": "pw"},
    })
    assert params == {
        "tracking.uri": "https://***@mlflow.example/", "tracking.enabled": "True",
        "data.path": "s3://bucket/train.csv", "data.api_key": REDACTED, "data.root": "/data/x",
        "model.kwargs.hf_token": REDACTED, "model.kwargs.auth": REDACTED, "model.kwargs.widths": "[4, 8]",
        "optimizer.lr": "0.1", "optimizer.db_password": REDACTED,
    }
    assert redact_uri("postgresql://mlflow:pw@db:5432/mlflow") == "postgresql://***@db:5432/mlflow"
    assert redact_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    assert redact_text("request to http://a:b@h:1/api failed (http://c@h)") == "request to http://***@h:1/api failed (http://***@h)"


def test_a_storage_that_cannot_be_written_is_refused_before_ray_starts(tmp_path):
    """A read-only directory: a read-only mount where the tests run as root (root writes
    through file permissions), the permissions themselves otherwise."""
    tmp = tmp_path.resolve()
    locked = tmp / "locked"
    locked.mkdir()
    storage, parent, reason = "locked/results", locked, "Permission denied"
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(locked)], capture_output=True).returncode == 0
    if mounted:
        reason = "Read-only file system"
    elif os.geteuid() == 0:  # root without the right to mount: sysfs refuses root a new directory
        storage, parent = "/sys/raysweep/results", Path("/sys")
    else:
        locked.chmod(0o555)
    try:
        write_sweep(tmp, good_data(tmp))
        result = raysweep(["run", "sweep.yaml", "--storage", storage], tmp, {})
        assert (result.returncode, result.stderr) == (2, f"error: --storage: cannot create {storage}: cannot write to {parent}: {reason}\n")
        assert result.stdout == "" and not (tmp / "mlflow.db").exists()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(locked)], check=False)
