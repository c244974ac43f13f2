"""Validation metrics against scikit-learn calls written out here, and by hand on small
cases (a class never predicted included); per-class threshold tuning; the trainer's
`train.tune_threshold`."""

import numpy as np
import pytest
from sklearn import metrics as skm

from raysweep.config import load_sweep
from tests.conftest import tiny_config
from trainables.metrics import classification_metrics, confusion, nll, per_class_report, predictions, tune_thresholds
from trainables.session import LocalSession
from trainables.trainer import Trainer


def logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1 - p))


# -- multi-class -------------------------------------------------------------

def test_multiclass_by_hand_with_a_class_never_predicted():
    # targets 0 0 1 1 2 2; predictions 0 0 1 0 0 1: class 2 is never predicted
    targets = np.array([0, 0, 1, 1, 2, 2])
    scores = np.eye(3)[[0, 0, 1, 0, 0, 1]] * 2.0
    m = classification_metrics("multiclass", targets, scores, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 6)
    # class a: P 2/4 R 2/2 F1 2/3; class b: P 1/2 R 1/2 F1 1/2; class c: P 0 (none predicted) R 0 F1 0
    assert (m["precision/a"], m["recall/a"], m["f1/a"]) == pytest.approx((0.5, 1.0, 2 / 3))
    assert (m["precision/b"], m["recall/b"], m["f1/b"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (m["precision/c"], m["recall/c"], m["f1/c"]) == (0.0, 0.0, 0.0)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert m["micro_f1"] == pytest.approx(0.5)  # single-label: micro F1 = accuracy
    assert m["weighted_f1"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)  # equal supports
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert "auroc" not in m


def test_multiclass_matches_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, 200)
    scores = rng.normal(size=(200, 5)) + np.eye(5)[targets] * 1.0
    m = classification_metrics("multiclass", targets, scores, list("vwxyz"))
    preds = scores.argmax(1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(targets, preds))
    for avg in ("macro", "micro", "weighted"):
        assert m[f"{avg}_f1"] == pytest.approx(skm.f1_score(targets, preds, average=avg))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(targets, preds))
    p, r, f, _ = skm.precision_recall_fscore_support(targets, preds)
    for c, name in enumerate("vwxyz"):
        assert (m[f"precision/{name}"], m[f"recall/{name}"], m[f"f1/{name}"]) == pytest.approx((p[c], r[c], f[c]))


def test_balanced_accuracy_ignores_classes_absent_from_the_targets():
    # class 2 has no validation samples but is predicted once: sklearn averages recall over classes 0 and 1
    targets, preds = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    m = classification_metrics("multiclass", targets, np.eye(3)[preds], ["a", "b", "c"])
    with pytest.warns(UserWarning):  # sklearn warns about the predicted-only class
        expected = skm.balanced_accuracy_score(targets, preds)
    assert m["balanced_accuracy"] == pytest.approx(expected) == pytest.approx(0.75)
    # macro F1 still counts class c (F1 0), as the labels are the dataset's classes
    assert m["macro_f1"] == pytest.approx(skm.f1_score(targets, preds, labels=[0, 1, 2], average="macro", zero_division=0))


# -- binary ------------------------------------------------------------------

def test_binary_matches_sklearn_and_ranks_by_the_class_1_score():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, 100)
    scores = rng.normal(size=(100, 2)) + np.eye(2)[targets] * 0.8
    m = classification_metrics("binary", targets, scores, ["neg", "pos"])
    preds = scores.argmax(1)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(targets, preds, average="macro"))
    assert m["f1/pos"] == pytest.approx(skm.f1_score(targets, preds))
    assert m["recall/neg"] == pytest.approx(skm.recall_score(targets, preds, pos_label=0))
    margin = scores[:, 1] - scores[:, 0]  # monotone in softmax(scores)[:, 1]
    prob1 = np.exp(scores[:, 1]) / np.exp(scores).sum(1)
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(targets, prob1))
    assert m["map"] == pytest.approx(skm.average_precision_score(targets, margin))


def test_binary_with_one_class_in_the_set_has_no_auroc():
    m = classification_metrics("binary", np.zeros(4, dtype=int), np.zeros((4, 2)), ["neg", "pos"])
    assert "auroc" not in m and m["accuracy"] == 1.0


# -- multi-label -------------------------------------------------------------

def test_multilabel_by_hand():
    targets = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0], [0, 0, 1]])
    probs = np.array([[0.9, 0.2, 0.6], [0.3, 0.4, 0.7], [0.8, 0.1, 0.6], [0.1, 0.3, 0.4]])
    # at 0.5: preds [1 0 1] [0 0 1] [1 0 1] [0 0 0]; class 1 (one positive) is never predicted
    m = classification_metrics("multilabel", targets, logit(probs), ["x", "y", "z"])
    assert m["accuracy"] == pytest.approx(1 / 4)  # subset accuracy: only sample 0 is all right
    assert (m["precision/x"], m["recall/x"]) == (1.0, 1.0)
    assert (m["precision/y"], m["recall/y"], m["f1/y"]) == (0.0, 0.0, 0.0)
    # class z: TP 2 (samples 0, 1), FP 1 (sample 2), FN 1 (sample 3): P 2/3, R 2/3
    assert (m["precision/z"], m["recall/z"]) == pytest.approx((2 / 3, 2 / 3))
    assert m["macro_f1"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    # micro: TP 4, FP 1, FN 2 -> 8 / (8 + 3)
    assert m["micro_f1"] == pytest.approx(8 / 11)
    # balanced: x (1 + 1)/2, y (0 + 1)/2, z (2/3 + 0/1)/2
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1 / 3) / 3)


def test_multilabel_matches_sklearn_on_random_scores():
    rng = np.random.default_rng(2)
    targets = (rng.random((150, 6)) < 0.3).astype(np.float32)
    targets[:, 5] = 0  # a class with no positives: no AUROC or AP for it
    scores = rng.normal(size=(150, 6)) + (targets * 2 - 1) * 0.7
    m = classification_metrics("multilabel", targets, scores, list("abcdef"), threshold=0.4)
    preds = (1 / (1 + np.exp(-scores)) >= 0.4).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(targets, preds))
    for avg in ("macro", "micro", "weighted"):
        assert m[f"{avg}_f1"] == pytest.approx(skm.f1_score(targets, preds, average=avg, zero_division=0))
    assert m["auroc"] == pytest.approx(np.mean([skm.roc_auc_score(targets[:, c], scores[:, c]) for c in range(5)]))
    assert m["map"] == pytest.approx(np.mean([skm.average_precision_score(targets[:, c], scores[:, c]) for c in range(5)]))
    # per class (TPR + TNR) / 2 is sklearn's binary balanced accuracy; the class without positives has TNR only
    per_class = [skm.balanced_accuracy_score(targets[:, c], preds[:, c]) for c in range(5)]
    per_class.append(np.mean(preds[:, 5] == 0))
    assert m["balanced_accuracy"] == pytest.approx(np.mean(per_class))


def test_multilabel_per_class_thresholds_and_confusion():
    targets = np.array([[1, 0], [0, 1], [1, 1]])
    probs = np.array([[0.6, 0.3], [0.2, 0.35], [0.7, 0.25]])
    thresholds = np.array([0.65, 0.3])
    preds = predictions("multilabel", logit(probs), thresholds)
    assert preds.tolist() == [[0, 1], [0, 1], [1, 0]]
    np.testing.assert_array_equal(confusion("multilabel", targets, logit(probs), 2, thresholds), skm.multilabel_confusion_matrix(targets, preds))
    rows = per_class_report("multilabel", targets, logit(probs), ["p", "q"], thresholds)
    assert rows[0] == dict(cls="p", precision=1.0, recall=0.5, f1=pytest.approx(2 / 3), support=2)


def test_predictions_do_not_overflow_on_large_logits():
    with np.errstate(over="raise"):
        assert predictions("multilabel", np.array([[-1000.0, 1000.0]])).tolist() == [[0, 1]]


def test_nll_is_ce_or_mean_bce():
    scores = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2]]))
    assert nll("multiclass", np.array([0, 1]), scores) == pytest.approx((-np.log(0.5) - np.log(0.6)) / 2)
    assert nll("multilabel", np.array([[1.0, 0.0]]), np.zeros((1, 2))) == pytest.approx(np.log(2))


# -- threshold tuning --------------------------------------------------------

def test_tune_thresholds_picks_each_class_best_f1_on_the_grid():
    rng = np.random.default_rng(3)
    targets = (rng.random((120, 4)) < 0.3).astype(int)
    scores = rng.normal(size=(120, 4)) + targets * 1.5 - 1.0
    grid = np.round(np.linspace(0.05, 0.95, 19), 2)
    tuned = tune_thresholds(targets, scores, grid)
    probs = 1 / (1 + np.exp(-scores))
    for c in range(4):
        f1s = np.array([skm.f1_score(targets[:, c], probs[:, c] >= t, zero_division=0) for t in grid])
        assert skm.f1_score(targets[:, c], probs[:, c] >= tuned[c]) == pytest.approx(f1s.max())
        assert tuned[c] in grid
    tuned_f1 = classification_metrics("multilabel", targets, scores, list("abcd"), tuned)["macro_f1"]
    assert tuned_f1 >= classification_metrics("multilabel", targets, scores, list("abcd"), 0.5)["macro_f1"]


def test_tune_thresholds_by_hand_and_ties_keep_the_default():
    # class 0: positives at 0.9 and 0.6, negatives at 0.4 and 0.2 -> any threshold in (0.4, 0.6] separates them;
    #   of the grid's tied values, 0.5 is nearest the default
    # class 1: no positives -> F1 is 0 at every threshold -> the default stays
    # class 2: positive at 0.3, negative at 0.1 -> F1 1 only for thresholds in (0.1, 0.3]; 0.3 is nearest 0.5
    targets = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.2, 0.3], [0.6, 0.3, 0.1], [0.4, 0.8, 0.1], [0.2, 0.1, 0.1]])
    tuned = tune_thresholds(targets, logit(probs))
    assert tuned.tolist() == pytest.approx([0.5, 0.5, 0.3])
    assert tune_thresholds(targets, logit(probs), default=0.7)[1] == pytest.approx(0.7)


# -- the trainer reports tuned thresholds ------------------------------------

def test_trainer_tunes_thresholds_on_validation_when_asked(sweep_file, tmp_path):
    def run(tune):
        raw = tiny_config(data={"task": "multilabel", "num_samples": 64}, loss={"name": "bce"}, train={"epochs": 1, "tune_threshold": tune})
        cfg = load_sweep(sweep_file(raw, f"s{tune}.yaml")).config
        session = LocalSession(tmp_path / str(tune))
        trainer = Trainer(cfg, session)
        return trainer, trainer.fit()

    plain_trainer, plain = run(False)
    tuned_trainer, tuned = run(True)
    assert "val/threshold_mean" not in plain
    targets, scores = tuned_trainer.folds[0].predict()
    expected = tune_thresholds(targets, scores)
    assert tuned["val/threshold_mean"] == pytest.approx(expected.mean())
    assert tuned["val/macro_f1"] == pytest.approx(classification_metrics("multilabel", targets, scores, tuned_trainer.samples.classes, expected)["macro_f1"])
    assert tuned["val/macro_f1"] >= plain["val/macro_f1"]  # same seed, same model: tuning on the set cannot lose
