"""The loss registry: every loss against its paper's formula, by hand on 2-4 samples and
against a float64 re-implementation on random inputs; gradients; epoch-dependent LDAM-DRW;
the mutual-channel loss's channel groups, mask and terms; and the user errors."""

import inspect
import math

import numpy as np
import pytest
import torch
import torchvision
from sklearn.utils.class_weight import compute_class_weight
from torch.nn import functional as F

from raysweep.config.sections.training import LossConfig
from raysweep.errors import ConfigError
from trainables.losses import (
    LOSSES,
    build_loss,
    channel_groups,
    channel_mask,
    cross_channel_max,
    loss_kwargs,
    loss_params,
    loss_tasks,
    mutual_channel_terms,
)

LN = math.log

# Two samples, three classes, logits chosen so the softmax is round:
#   sample 0: z = (ln 2, 0, 0)  -> p = (1/2, 1/4, 1/4), target 0 -> p_y = 0.5
#   sample 1: z = (0, ln 3, 0)  -> p = (1/5, 3/5, 1/5), target 1 -> p_y = 0.6
Z = torch.tensor([[LN(2), 0.0, 0.0], [0.0, LN(3), 0.0]])
Y = torch.tensor([0, 1])


def rand_case(n=32, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 2, torch.randint(0, k, (n,), generator=g)


def softmax64(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def close(a, b, tol=1e-5):
    a, b = (v.detach() if torch.is_tensor(v) else v for v in (a, b))
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


# -- the registry ------------------------------------------------------------

def test_every_loss_is_registered_with_its_keys_and_tasks():
    assert set(LOSSES.names()) == {"ce", "bce", "focal", "sigmoid_focal", "flsd53", "ldam", "recall", "mc"}
    assert loss_params("focal") == {"gamma", "alpha"}
    assert loss_params("ldam") == {"max_m", "C", "s", "drw_start_epoch", "drw_beta"}
    assert loss_params("mc") == {"mu", "lambda", "channels_per_class"}  # the sweep file's keys
    assert loss_params("flsd53") == set()
    for name in ("ce", "focal", "flsd53", "ldam", "recall", "mc"):
        assert "multilabel" not in loss_tasks(name), name
    assert "multilabel" in loss_tasks("bce") and "multilabel" in loss_tasks("sigmoid_focal")


def test_a_loss_is_a_frozen_record_of_its_factory_and_tasks():
    import dataclasses

    info = LOSSES.get("focal")
    assert (info.name, info.tasks) == ("focal", loss_tasks("focal")) and "gamma" in inspect.signature(info.factory).parameters
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.tasks = ("multilabel",)  # type: ignore[misc]


def test_every_loss_key_is_a_key_of_the_loss_section():
    from raysweep.config.schema import key_exists

    for name in LOSSES.names():
        for key in loss_params(name):
            assert key_exists(f"loss.{key}"), (name, key)


def test_build_loss_takes_the_whole_loss_section_and_keeps_what_the_loss_declares():
    cfg = LossConfig.model_validate({"name": "focal", "gamma": 0.0, "lambda": 3.0, "max_m": 0.5})
    criterion = build_loss("focal", class_counts=[5, 5, 5], num_classes=3, **loss_kwargs(cfg))
    assert close(criterion(Z, Y), F.cross_entropy(Z, Y))  # gamma 0, no alpha: plain CE


def test_unknown_loss_names_the_closest():
    with pytest.raises(ConfigError) as info:
        build_loss("focall")
    assert info.value.path == "loss.name" and "'focal'" in info.value.message


# -- ce and bce --------------------------------------------------------------

def test_ce_by_hand():
    assert close(build_loss("ce")(Z, Y), (-LN(0.5) - LN(0.6)) / 2)


def test_ce_balanced_weights_are_sklearns_and_give_a_weighted_mean():
    counts = [6, 3, 1]
    labels = np.repeat(np.arange(3), counts)
    expected_w = compute_class_weight("balanced", classes=np.arange(3), y=labels)  # n / (k n_j)
    criterion = build_loss("ce", class_counts=counts, class_weight="balanced")
    np.testing.assert_allclose(criterion.weight.numpy(), expected_w, rtol=1e-6)
    z, y = rand_case(k=3)
    p = softmax64(z)
    nll = -np.log(p[np.arange(len(y)), y.numpy()])
    w = expected_w[y.numpy()]
    assert close(criterion(z, y), (w * nll).sum() / w.sum())


def test_ce_effective_number_weights():
    counts, beta = np.array([100, 10, 1]), 0.99
    raw = (1 - beta) / (1 - beta ** counts)
    expected = raw / raw.sum() * 3
    criterion = build_loss("ce", class_counts=counts, class_weight="effective_number", beta=beta)
    np.testing.assert_allclose(criterion.weight.numpy(), expected, rtol=1e-6)


def test_ce_label_smoothing_by_hand():
    # smoothed target: (1 - e) one-hot + e / k; loss = (1 - e)(-log p_y) + e * mean_j(-log p_j)
    e = 0.3
    p = np.array([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2]])
    per = [(1 - e) * -LN(p[i, Y[i]]) + e * np.mean(-np.log(p[i])) for i in range(2)]
    assert close(build_loss("ce", label_smoothing=e)(Z, Y), np.mean(per))


def test_ce_class_weight_without_counts_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        build_loss("ce", class_weight="balanced", class_counts=None)
    assert info.value.path == "loss.name"


def test_bce_pos_weight_by_hand_and_binary_index_targets():
    # logit 0 -> sigmoid 1/2: a positive costs pos_weight * ln 2, a negative ln 2
    z = torch.zeros(1, 2)
    t = torch.tensor([[1.0, 0.0]])
    assert close(build_loss("bce", num_classes=2, pos_weight=3.0)(z, t), (3 * LN(2) + LN(2)) / 2)
    assert close(build_loss("bce", num_classes=2, pos_weight=[1.0, 5.0])(z, torch.tensor([[0.0, 1.0]])), (LN(2) + 5 * LN(2)) / 2)
    # binary task: class indices are one-hot encoded over the 2 logits
    zb, yb = rand_case(k=2)
    assert close(build_loss("bce")(zb, yb), F.binary_cross_entropy_with_logits(zb, F.one_hot(yb, 2).float()))


def test_bce_pos_weight_of_the_wrong_length():
    with pytest.raises(ConfigError) as info:
        build_loss("bce", num_classes=3, pos_weight=[1.0, 2.0])
    assert info.value.path == "loss.pos_weight"


# -- focal losses ------------------------------------------------------------

def test_focal_by_hand_with_per_class_and_scalar_alpha():
    # -alpha_y (1 - p_y)^2 log p_y: sample 0 alpha 0.25, (1/2)^2; sample 1 alpha 0.5, (2/5)^2
    per_class = build_loss("focal", num_classes=3, gamma=2.0, alpha=[0.25, 0.5, 1.0])
    expected = (0.25 * 0.25 * -LN(0.5) + 0.5 * 0.16 * -LN(0.6)) / 2
    assert close(per_class(Z, Y), expected)
    scalar = build_loss("focal", num_classes=3, gamma=2.0, alpha=0.25)
    assert close(scalar(Z, Y), 0.25 * (0.25 * -LN(0.5) + 0.16 * -LN(0.6)) / 2)
    assert close(build_loss("focal", gamma=0.0)(Z, Y), build_loss("ce")(Z, Y))


def test_focal_against_float64():
    z, y = rand_case(k=4)
    alpha = np.array([0.1, 0.2, 0.3, 0.4])
    p = softmax64(z)[np.arange(len(y)), y.numpy()]
    expected = np.mean(alpha[y.numpy()] * (1 - p) ** 1.5 * -np.log(p))
    assert close(build_loss("focal", num_classes=4, gamma=1.5, alpha=list(alpha))(z, y), expected)


def test_focal_alpha_of_the_wrong_length():
    with pytest.raises(ConfigError) as info:
        build_loss("focal", num_classes=3, alpha=[1.0, 2.0])
    assert info.value.path == "loss.alpha"


def test_focal_gradient_stays_finite_on_a_sure_sample_with_gamma_below_one():
    z = torch.tensor([[100.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
    loss = build_loss("focal", gamma=0.5)(z, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad[1].abs().sum() > 0


def test_sigmoid_focal_by_hand_and_against_torchvision():
    # logit 0: p_t = 1/2 for a positive and a negative alike; alpha 0.25 / 0.75
    z, t = torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])
    by_hand = (0.25 * 0.25 * LN(2) + 0.75 * 0.25 * LN(2)) / 2
    assert close(build_loss("sigmoid_focal", num_classes=2, gamma=2.0, alpha=0.25)(z, t), by_hand)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(16, 5, generator=g) * 3
    t = (torch.rand(16, 5, generator=g) < 0.3).float()
    for gamma, alpha in ((2.0, 0.25), (0.0, 0.5), (1.0, None)):
        tv = torchvision.ops.sigmoid_focal_loss(z.double(), t.double(), alpha=-1 if alpha is None else alpha, gamma=gamma, reduction="mean")
        assert close(build_loss("sigmoid_focal", num_classes=5, gamma=gamma, alpha=alpha)(z, t), tv), (gamma, alpha)


def test_flsd53_by_hand():
    # sample 0: p_y = 0.5 -> gamma 3; sample 1: z = (0, ln 8, 0), target 0 -> p_y = 0.1 < 0.2 -> gamma 5
    z = torch.tensor([[LN(2), 0.0, 0.0], [0.0, LN(8), 0.0]])
    y = torch.tensor([0, 0])
    expected = (0.5**3 * -LN(0.5) + 0.9**5 * -LN(0.1)) / 2
    criterion = build_loss("flsd53")
    assert close(criterion(z, y), expected)
    assert criterion.gammas(z, y).tolist() == [3.0, 5.0]


def test_flsd53_gamma_switches_at_0_2_and_carries_no_gradient():
    z, y = rand_case(n=64, k=4, seed=3)
    z.requires_grad_(True)
    criterion = build_loss("flsd53")
    gammas = criterion.gammas(z, y)
    assert not gammas.requires_grad
    p = F.softmax(z.detach().double(), 1)[torch.arange(len(y)), y]
    assert torch.equal(gammas, torch.where(p < 0.2, 5.0, 3.0).float())
    assert {3.0, 5.0} <= set(gammas.tolist())  # the batch exercises both branches
    criterion(z, y).backward()
    # reference in float64: the focal loss with those gammas as constants
    z64 = z.detach().double().requires_grad_(True)
    logp = F.log_softmax(z64, 1)[torch.arange(len(y)), y]
    (-(1 - logp.exp()) ** gammas.double() * logp).mean().backward()
    torch.testing.assert_close(z.grad.double(), z64.grad, rtol=1e-4, atol=1e-6)


# -- LDAM-DRW ----------------------------------------------------------------

COUNTS = [16, 1, 81]  # n^(-1/4) = 1/2, 1, 1/3


def test_ldam_max_m_margins_scale_to_the_largest_and_match_by_hand():
    criterion = build_loss("ldam", class_counts=COUNTS, max_m=0.6, s=1.0)
    np.testing.assert_allclose(criterion.margins.numpy(), [0.3, 0.6, 0.2], rtol=1e-6)
    # sample 0: -log(2 e^-0.3 / (2 e^-0.3 + 2)) = log(1 + e^0.3)
    # sample 1: -log(3 e^-0.6 / (3 e^-0.6 + 2))
    expected = (LN(1 + math.exp(0.3)) - LN(3 * math.exp(-0.6) / (3 * math.exp(-0.6) + 2))) / 2
    assert close(criterion(Z, Y), expected)
    assert build_loss("ldam", class_counts=COUNTS, max_m=0.6).s == 30.0  # the paper's scale by default


def test_ldam_c_form_with_negative_c_rewards_the_true_class():
    criterion = build_loss("ldam", class_counts=COUNTS, C=-2.0)
    np.testing.assert_allclose(criterion.margins.numpy(), [-1.0, -2.0, -2.0 / 3], rtol=1e-6)
    assert criterion.s == 1.0
    # sample 0: -log(2e / (2e + 2)) = log(1 + e^-1); sample 1: -log(3e^2 / (3e^2 + 2))
    expected = (LN(1 + math.exp(-1)) - LN(3 * math.exp(2) / (3 * math.exp(2) + 2))) / 2
    assert close(criterion(Z, Y), expected)
    assert criterion(Z, Y) < build_loss("ce")(Z, Y)


def ldam64(z, y, counts, max_m=None, C=None, s=1.0, weights=None):
    z, y, n = z.double().numpy(), y.numpy(), np.asarray(counts, dtype=np.float64)
    margins = C / n**0.25 if C is not None else max_m * n**-0.25 / (n**-0.25).max()
    out = np.zeros(len(y))
    for i in range(len(y)):
        row = z[i].copy()
        row[y[i]] -= margins[y[i]]
        row = s * row
        out[i] = -(row[y[i]] - row.max() - np.log(np.exp(row - row.max()).sum()))
    w = np.ones(len(n)) if weights is None else weights
    return (w[y] * out).sum() / w[y].sum()


def test_ldam_against_float64_both_forms():
    z, y = rand_case(k=3)
    counts = [500, 40, 3]
    assert close(build_loss("ldam", class_counts=counts, max_m=0.5)(z, y), ldam64(z, y, counts, max_m=0.5, s=30.0), tol=1e-4)
    assert close(build_loss("ldam", class_counts=counts, C=0.7, s=2.0)(z, y), ldam64(z, y, counts, C=0.7, s=2.0))


def test_ldam_drw_switches_on_exactly_at_its_epoch():
    z, y = rand_case(k=3, seed=5)
    counts, beta = [500, 40, 3], 0.999
    criterion = build_loss("ldam", class_counts=counts, max_m=0.5, s=10.0, drw_start_epoch=3, drw_beta=beta)
    raw = (1 - beta) / (1 - beta ** np.array(counts, dtype=np.float64))
    w = raw / raw.sum() * 3
    plain, weighted = ldam64(z, y, counts, max_m=0.5, s=10.0), ldam64(z, y, counts, max_m=0.5, s=10.0, weights=w)
    assert not close(plain, weighted)
    for epoch, expected in ((0, plain), (2, plain), (3, weighted), (7, weighted)):
        criterion.set_epoch(epoch)
        assert close(criterion(z, y), expected), epoch
    # the same weighted mean as nn.CrossEntropyLoss(weight=...) on the shifted, scaled logits
    shifted = 10.0 * (z - F.one_hot(y, 3) * criterion.margins[y][:, None])
    assert close(criterion(z, y), torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))(shifted, y))


def test_ldam_without_drw_never_reweights():
    z, y = rand_case(k=3)
    criterion = build_loss("ldam", class_counts=[500, 40, 3], C=1.0)
    criterion.set_epoch(100)
    assert close(criterion(z, y), ldam64(z, y, [500, 40, 3], C=1.0))


@pytest.mark.parametrize("kwargs, path", [({}, "loss.C"), ({"max_m": 0.5, "C": 1.0}, "loss.C")])
def test_ldam_needs_exactly_one_margin_form(kwargs, path):
    with pytest.raises(ConfigError) as info:
        build_loss("ldam", class_counts=COUNTS, **kwargs)
    assert info.value.path == path and "exactly one" in info.value.message


def test_ldam_without_class_counts_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        build_loss("ldam", class_counts=None, num_classes=3, max_m=0.5)
    assert info.value.path == "loss.name"


# -- recall loss -------------------------------------------------------------

def test_recall_weights_are_the_batch_false_negative_rates_including_zero():
    # predictions (argmax): 0, 1, 1, 0; targets 0, 0, 1, 2
    z = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 2])
    criterion = build_loss("recall", num_classes=3)
    # class 0: 1 of 2 missed -> 0.5; class 1: none missed -> 0; class 2: its only sample missed -> 1
    assert criterion.class_weights(z, y).tolist() == [0.5, 0.0, 1.0]
    ce = F.cross_entropy(z.detach(), y, reduction="none")
    loss = criterion(z, y)
    assert close(loss, (0.5 * ce[0] + 0.5 * ce[1] + 0.0 * ce[2] + 1.0 * ce[3]) / 4)
    loss.backward()
    assert z.grad[2].abs().sum() == 0  # weight 0: no gradient from a class with no false negatives
    assert z.grad[3].abs().sum() > 0


def test_recall_against_float64_with_detached_weights():
    z, y = rand_case(n=40, k=4, seed=2)
    z.requires_grad_(True)
    pred, yn = z.detach().numpy().argmax(1), y.numpy()
    w = np.array([np.mean(pred[yn == c] != c) if (yn == c).any() else 0.0 for c in range(4)])
    z64 = z.detach().double().requires_grad_(True)
    ref = (torch.tensor(w)[y] * F.cross_entropy(z64, y, reduction="none")).mean()
    loss = build_loss("recall", num_classes=4)(z, y)
    assert close(loss, ref)
    loss.backward()
    ref.backward()  # w a constant: the gradient is that of a CE weighted per sample
    torch.testing.assert_close(z.grad.double(), z64.grad, rtol=1e-4, atol=1e-7)


# -- mutual-channel loss -----------------------------------------------------

def test_channel_groups_follow_the_cifar_report():
    groups = channel_groups(1792, 219)  # EfficientNet-B4 features, 219 classes
    assert groups[:179] == [8] * 179 and groups[179:] == [9] * 40 and sum(groups) == 1792
    assert channel_groups(12, 4) == [3, 3, 3, 3]
    assert channel_groups(12, 4, channels_per_class=2) == [2, 2, 2, 2]


def test_mc_channel_errors_name_channels_per_class():
    with pytest.raises(ConfigError) as info:
        channel_groups(3, 4)
    assert info.value.path == "loss.channels_per_class" and "3 channels for 4 classes" in info.value.message
    with pytest.raises(ConfigError) as info:
        channel_groups(12, 4, channels_per_class=4)
    assert info.value.path == "loss.channels_per_class"
    criterion = build_loss("mc", num_classes=4)
    with pytest.raises(ConfigError):
        criterion(torch.zeros(2, 4), torch.tensor([0, 1]), features=torch.zeros(2, 3, 2, 2))


def test_cross_channel_max_with_uneven_groups():
    x = torch.arange(7.0).reshape(1, 7, 1)  # groups 2, 2, 3: channels {0,1} {2,3} {4,5,6}
    assert cross_channel_max(x, [2, 2, 3]).flatten().tolist() == [1.0, 3.0, 6.0]


def test_channel_mask_keeps_half_of_each_class_at_random():
    torch.manual_seed(0)
    groups = [3, 3, 4, 4, 1]
    masks = [channel_mask(groups).flatten() for _ in range(20)]
    for m in masks:
        kept = [int(part.sum()) for part in torch.split(m, groups)]
        assert kept == [2, 2, 2, 2, 1]
    assert len({tuple(m.tolist()) for m in masks}) > 1  # drawn afresh


def test_mc_terms_by_hand():
    # 2 classes x 2 channels, one sample, H=1, W=2.
    # class 0 channels: (ln 3, 0), (0, ln 3) -> spatial softmax (3/4, 1/4), (1/4, 3/4) -> max (3/4, 3/4) -> sum 3/2
    # class 1 channels: (0, 0), (0, 0)      -> (1/2, 1/2) each                       -> sum 1
    # D = mean(3/2 / 2, 1 / 2) = 0.625
    f = torch.tensor([[[[LN(3), 0.0]], [[0.0, LN(3)]], [[0.0, 0.0]], [[0.0, 0.0]]]])
    y = torch.tensor([0])
    ones = torch.ones(1, 4, 1, 1)
    l_dis, d = mutual_channel_terms(f, y, [2, 2], ones)
    assert close(d, 0.625)
    # no mask: CCMP (ln 3, ln 3) and (0, 0) -> GAP scores (ln 3, 0) -> CE = -log(3/4)
    assert close(l_dis, -LN(0.75))
    # channel 1 of class 0 dropped: CCMP (ln 3, 0) -> GAP ln3/2 -> CE = -log(sqrt3 / (sqrt3 + 1))
    dropped = torch.tensor([1.0, 0.0, 1.0, 1.0]).reshape(1, 4, 1, 1)
    l_dis, _ = mutual_channel_terms(f, y, [2, 2], dropped)
    assert close(l_dis, -LN(math.sqrt(3) / (math.sqrt(3) + 1)))


def mc64(z, y, f, groups, mask, mu, lam):
    """A straightforward float64 loop: per sample, per class."""
    z, y, f, mask = z.double().numpy(), y.numpy(), f.double().numpy(), mask.double().numpy().reshape(-1)
    b, _, h, w = f.shape
    starts = np.cumsum([0] + list(groups))
    ce, dis, div = [], [], []
    for i in range(b):
        ce.append(-np.log(softmax64(z[i : i + 1])[0, y[i]]))
        scores, d = [], []
        for c, (s, e) in enumerate(zip(starts[:-1], starts[1:])):
            maps = f[i, s:e].reshape(e - s, h * w)
            scores.append((maps * mask[s:e, None]).max(axis=0).mean())
            soft = np.exp(maps - maps.max(1, keepdims=True))
            soft /= soft.sum(1, keepdims=True)
            d.append(soft.max(axis=0).sum() / (e - s))
        dis.append(-np.log(softmax64(np.array([scores]))[0, y[i]]))
        div.append(np.mean(d))
    return np.mean(ce) + mu * (np.mean(dis) + lam * (1 - np.mean(div)))


def test_mc_against_float64_and_its_gradient_flows():
    g = torch.Generator().manual_seed(4)
    z, y = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])
    f = torch.randn(6, 3, 3, 3, generator=g, requires_grad=True)  # 1 channel a class: the mask keeps it
    criterion = build_loss("mc", num_classes=3, mu=0.5, lambda_=2.0)
    assert criterion.needs_features
    loss = criterion(z, y, features=f)
    assert close(loss, mc64(z, y, f.detach(), [1, 1, 1], torch.ones(1, 3, 1, 1), 0.5, 2.0))
    loss.backward()
    assert torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0
    # uneven groups (8 channels, 3 classes -> 2, 3, 3) with a given mask, through the pure terms
    f8 = torch.randn(6, 8, 2, 3, generator=g)
    mask = torch.tensor([1.0, 0, 1, 1, 0, 0, 1, 1]).reshape(1, 8, 1, 1)
    l_dis, d = mutual_channel_terms(f8, y, [2, 3, 3], mask)
    value = F.cross_entropy(z, y) + 0.5 * (l_dis + 2.0 * (1 - d))
    assert close(value, mc64(z, y, f8, [2, 3, 3], mask, 0.5, 2.0))


def test_mc_rewards_channels_of_a_class_that_attend_to_different_places():
    y = torch.tensor([0])
    z = torch.zeros(1, 2)
    same = torch.zeros(1, 4, 1, 2)
    same[0, :, 0, 0] = 3.0  # all four channels peak on position 0
    apart = same.clone()
    apart[0, 1] = torch.tensor([0.0, 3.0])  # class 0's second channel moves to position 1
    apart[0, 3] = torch.tensor([0.0, 3.0])
    torch.manual_seed(0)
    criterion = build_loss("mc", num_classes=2, mu=1.0, lambda_=10.0)
    _, d_same = mutual_channel_terms(same, y, [2, 2], torch.ones(1, 4, 1, 1))
    _, d_apart = mutual_channel_terms(apart, y, [2, 2], torch.ones(1, 4, 1, 1))
    assert d_apart > d_same
    torch.manual_seed(0)
    loss_same = criterion(z, y, features=same)
    torch.manual_seed(0)
    loss_apart = criterion(z, y, features=apart)
    assert loss_apart < loss_same


# -- every loss trains -------------------------------------------------------

@pytest.mark.parametrize("name, kwargs", [
    ("ce", {}), ("bce", {}), ("focal", {"gamma": 2.0}), ("sigmoid_focal", {"alpha": 0.25}), ("flsd53", {}),
    ("ldam", {"max_m": 0.5, "drw_start_epoch": 0}), ("ldam", {"C": -1.0}), ("recall", {}), ("mc", {"mu": 0.1}),
])
def test_every_loss_gives_a_finite_gradient(name, kwargs):
    z, y = rand_case(n=16, k=4, seed=7)
    z.requires_grad_(True)
    criterion = build_loss(name, class_counts=[30, 10, 5, 1], num_classes=4, **kwargs)
    criterion.set_epoch(0)
    extra = {"features": torch.randn(16, 8, 2, 2)} if criterion.needs_features else {}
    loss = criterion(z, y, **extra)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("loss, data", [
    ({"name": "mc", "mu": 0.1}, {}),  # the trainer hands over the backbone's feature map
    ({"name": "ldam", "max_m": 0.5, "drw_start_epoch": 1}, {}),  # set_epoch switches DRW on in epoch 2
    ({"name": "recall"}, {}),
    ({"name": "sigmoid_focal", "alpha": 0.25}, {"task": "multilabel"}),
])
def test_the_trainer_trains_with_the_loss(sweep_file, tmp_path, loss, data):
    from raysweep.commands import load_checked
    from tests.conftest import tiny_config
    from trainables.session import LocalSession
    from trainables.trainer import Trainer

    raw = tiny_config(loss=loss, data=data, model={"kwargs": {"widths": [6, 12]}}, train={"epochs": 2})
    cfg = load_checked(sweep_file(raw)).config
    trainer = Trainer(cfg, LocalSession(tmp_path))
    final = trainer.fit()
    assert final["epoch"] == 2 and math.isfinite(final["train/loss"]) and "diverged" not in final
    if loss["name"] == "ldam":
        assert trainer.folds[0].criterion.reweighting
