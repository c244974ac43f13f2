"""Optimizers and learning-rate schedules: what `build_optimizer` and
`build_scheduler` hand back, epoch by epoch, as the trainer steps them."""

import io
import math

import pytest
import torch
from torch import nn
from timm.optim import Lookahead

from raysweep.commands import load_checked
from raysweep.config import load_sweep
from raysweep.config.sections.training import OptimizerConfig, SchedulerConfig
from raysweep.errors import ConfigError
from tests.conftest import tiny_config
from trainables.optim import SCHEDULERS, build_optimizer, build_scheduler
from trainables.session import LocalSession
from trainables.trainer import Trainer


def net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


# -- optimizers ------------------------------------------------------------------

@pytest.mark.parametrize(
    "fields, cls, expected",
    [
        ({"name": "sgd", "lr": 0.05, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": False}),
        ({"name": "sgd", "lr": 0.05, "momentum": 0.8, "nesterov": True}, torch.optim.SGD, {"momentum": 0.8, "nesterov": True}),
        ({"name": "adam", "lr": 1e-3, "betas": [0.8, 0.99], "eps": 1e-6}, torch.optim.Adam, {"lr": 1e-3, "betas": (0.8, 0.99), "eps": 1e-6}),
        ({"name": "adamw", "lr": 1e-3}, torch.optim.AdamW, {"lr": 1e-3, "betas": (0.9, 0.999)}),
        ({"name": "radam", "lr": 1e-3}, torch.optim.RAdam, {"lr": 1e-3}),
    ],
)
def test_optimizer_class_and_hyperparameters(fields, cls, expected):
    opt = build_optimizer(net(), OptimizerConfig(**fields))
    assert type(opt) is cls
    for key, value in expected.items():
        assert opt.defaults[key] == value, key


def test_optimizer_aliases_are_registered_names():
    from trainables.optim import optimizer_names
    from trainables.optim_names import OPTIMIZER_ALIASES, resolve_optimizer_name

    assert list(OPTIMIZER_ALIASES) == ["ranger"] and "ranger" in optimizer_names()
    assert resolve_optimizer_name("ranger") == "lookahead_radam" and resolve_optimizer_name("adamw") == "adamw"


def test_ranger_is_lookahead_around_radam():
    opt = build_optimizer(net(), OptimizerConfig(name="ranger", lr=3e-4))
    assert isinstance(opt, Lookahead)
    assert type(opt._base_optimizer) is torch.optim.RAdam
    assert opt.param_groups is opt._base_optimizer.param_groups  # a schedule's lr reaches RAdam
    assert opt.param_groups[0]["lr"] == 3e-4 and opt.defaults["lookahead_k"] == 6


def test_sgd_ignores_adam_only_keys():
    opt = build_optimizer(net(), OptimizerConfig(name="sgd", betas=[0.5, 0.5], eps=1e-3))
    assert "betas" not in opt.defaults and "eps" not in opt.defaults


def test_weight_decay_reaches_weights_but_not_biases_or_norms():
    model = net()
    opt = build_optimizer(model, OptimizerConfig(name="sgd", weight_decay=5e-5))
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 5e-5 for p in g["params"]}
    no_decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    conv, bn, _, fc = model
    assert decay == {id(conv.weight), id(fc.weight)}
    assert no_decay == {id(conv.bias), id(bn.weight), id(bn.bias), id(fc.bias)}


def test_no_weight_decay_gives_one_group():
    opt = build_optimizer(net(), OptimizerConfig(name="adam", weight_decay=0.0))
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0


# -- schedules --------------------------------------------------------------------

def lrs(fields: dict, epochs: int = 12, metrics=None, mode: str = "max", lr: float = 0.1) -> list[float]:
    """The lr each epoch trains with, stepping as the trainer does."""
    opt = torch.optim.SGD(net().parameters(), lr=lr)
    sched = build_scheduler(opt, SchedulerConfig(**fields), epochs, mode)
    out = []
    for epoch in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        if sched is not None:
            sched.step(epoch + 1, None if metrics is None else metrics[epoch])
    return out


def torch_lrs(make, epochs: int = 12, lr: float = 0.1) -> list[float]:
    """The same under one of torch's schedulers, stepped once per epoch."""
    opt = torch.optim.SGD(net().parameters(), lr=lr)
    sched = make(opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


HAND = {
    "none": ({"name": "none"}, [0.1] * 12),
    # IJCNN: x0.1 every 10 epochs, staircase
    "step": ({"name": "step", "decay_epochs": 10, "decay_rate": 0.1}, [0.1] * 10 + [0.01] * 2),
    "step4": ({"name": "step", "decay_epochs": 4, "decay_rate": 0.5}, [0.1] * 4 + [0.05] * 4 + [0.025] * 4),
    # ECE449: milestones [5, 10, 20, 40, 75], gamma 0.25: epoch 5 is the first at lr/4
    "multistep": ({"name": "multistep", "milestones": [5, 10, 20, 40, 75], "decay_rate": 0.25}, [0.1] * 5 + [0.025] * 5 + [0.00625] * 2),
    # CIFAR report: lr0 * 0.8 ** (epoch / 3)
    "exponential": ({"name": "exponential", "decay_rate": 0.8, "decay_epochs": 3}, [0.1 * 0.8 ** (e / 3) for e in range(12)]),
    # half a cosine over 10 epochs down to 0.001, then held there
    "cosine": (
        {"name": "cosine", "t_max": 10, "min_lr": 0.001},
        [0.001 + 0.5 * 0.099 * (1 + math.cos(math.pi * e / 10)) for e in range(10)] + [0.001, 0.001],
    ),
    "cosine_default_t": ({"name": "cosine"}, [0.5 * 0.1 * (1 + math.cos(math.pi * e / 12)) for e in range(12)]),
}


@pytest.mark.parametrize("case", sorted(HAND))
def test_schedule_per_epoch_learning_rates(case):
    fields, expected = HAND[case]
    assert lrs(fields) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    "fields, make",
    [
        ({"name": "step", "decay_epochs": 3, "decay_rate": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        ({"name": "multistep", "milestones": [2, 5, 9], "decay_rate": 0.25}, lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5, 9], 0.25)),
        ({"name": "cosine", "t_max": 12, "min_lr": 5e-6}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=5e-6)),
        ({"name": "exponential", "decay_rate": 0.8, "decay_epochs": 1}, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.8)),
    ],
)
def test_schedules_match_the_torch_schedulers_the_reports_used(fields, make):
    assert lrs(fields) == pytest.approx(torch_lrs(make), rel=1e-6)


def test_warmup_ramps_linearly_then_joins_the_schedule_in_absolute_epochs():
    got = lrs({"name": "multistep", "milestones": [6], "decay_rate": 0.1, "warmup_epochs": 4, "warmup_lr": 0.02})
    assert got == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1, 0.1] + [0.01] * 6)
    cos = lrs({"name": "cosine", "t_max": 12, "warmup_epochs": 2, "warmup_lr": 0.0})
    assert cos[:2] == pytest.approx([0.0, 0.05])
    assert cos[2:] == pytest.approx([0.05 * (1 + math.cos(math.pi * e / 12)) for e in range(2, 12)])
    exp = lrs({"name": "exponential", "decay_rate": 0.5, "decay_epochs": 1, "warmup_epochs": 1, "warmup_lr": 0.01})
    assert exp[:3] == pytest.approx([0.01, 0.05, 0.025])


@pytest.mark.parametrize(
    "mode, metrics",
    [
        ("max", [0.5, 0.6, 0.7, 0.7, 0.69, 0.7, 0.71, 0.71, 0.71, 0.71, 0.71, 0.71]),
        ("min", [1.0, 0.9, 0.8, 0.8, 0.81, 0.8, 0.79, 0.79, 0.79, 0.79, 0.79, 0.79]),
    ],
)
def test_plateau_decays_after_patience_epochs_without_improvement(mode, metrics):
    # best after epoch 2; epochs 3, 4, 5 bring nothing better: after the third (> patience 2), halve
    # epoch 6 improves again; 7, 8, 9 do not: halve again after epoch 9
    got = lrs({"name": "plateau", "patience": 2, "decay_rate": 0.5}, metrics=metrics, mode=mode)
    assert got == pytest.approx([0.1] * 6 + [0.05] * 4 + [0.025] * 2)


def test_plateau_in_the_wrong_mode_decays_at_once():
    rising = [0.1 * e for e in range(12)]
    got = lrs({"name": "plateau", "patience": 2, "decay_rate": 0.5}, metrics=rising, mode="min")
    assert got[:5] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05])  # every rise is a bad epoch in min mode


def test_plateau_ignores_warmup_epochs():
    flat = [0.5] * 12
    got = lrs({"name": "plateau", "patience": 1, "decay_rate": 0.5, "warmup_epochs": 3, "warmup_lr": 0.01}, metrics=flat)
    assert got[:4] == pytest.approx([0.01, 0.04, 0.07, 0.1])
    # counting starts after warmup: epoch 3 sets the best, 4 and 5 are bad, decay after the second
    assert got[4:7] == pytest.approx([0.1, 0.1, 0.05])


ROUND_TRIP = [
    {"name": "step", "decay_epochs": 3, "decay_rate": 0.5, "warmup_epochs": 1},
    {"name": "multistep", "milestones": [3, 7], "decay_rate": 0.25},
    {"name": "cosine", "t_max": 10, "min_lr": 1e-4, "warmup_epochs": 2},
    {"name": "exponential", "decay_rate": 0.8, "decay_epochs": 3},
    {"name": "plateau", "patience": 2, "decay_rate": 0.5},
]


@pytest.mark.parametrize("fields", ROUND_TRIP, ids=[f["name"] for f in ROUND_TRIP])
def test_scheduler_state_survives_a_checkpoint(fields):
    """Stop after 5 epochs, save optimizer and scheduler as a checkpoint does
    (weights-only), rebuild both, load, go on: the lrs match an unbroken run."""
    metrics = [0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7]  # plateau: 2 bad epochs at the cut
    cfg = SchedulerConfig(**fields)

    def new():
        opt = torch.optim.SGD(net().parameters(), lr=0.1)
        return opt, build_scheduler(opt, cfg, 12, "max")

    def run(opt, sched, epochs):
        out = []
        for epoch in epochs:
            out.append(opt.param_groups[0]["lr"])
            sched.step(epoch + 1, metrics[epoch])
        return out

    straight = run(*new(), range(12))
    opt, sched = new()
    first = run(opt, sched, range(5))
    buf = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt, sched = new()
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    assert first + run(opt, sched, range(5, 12)) == pytest.approx(straight)


def test_every_registered_schedule_builds_or_is_none():
    opt = torch.optim.SGD(net().parameters(), lr=0.1)
    sequence = {"stages": ["cosine", "multistep"], "stage_starts": [2]}  # what the config check asks of sequential
    built = {name: build_scheduler(opt, SchedulerConfig(name=name, **(sequence if name == "sequential" else {})), 5) for name in SCHEDULERS}
    assert set(built) == {"none", "step", "multistep", "cosine", "exponential", "plateau", "sequential"}
    assert built.pop("none") is None and all(s is not None for s in built.values())


def test_an_unknown_schedule_suggests_the_name():
    opt = torch.optim.SGD(net().parameters(), lr=0.1)
    with pytest.raises(ConfigError) as info:
        build_scheduler(opt, SchedulerConfig(name="cosin"), 5)
    assert info.value.path == "scheduler.name" and "'cosine'" in info.value.message


# -- AMP and channels-last on CPU ------------------------------------------------

def test_amp_and_channels_last_are_harmless_no_ops_on_cpu(sweep_file, tmp_path):
    def fit(**train):
        cfg = load_sweep(sweep_file(tiny_config(train={"epochs": 1, **train}), name=f"{len(train)}.yaml")).config
        trainer = Trainer(cfg, LocalSession(tmp_path / str(len(train)), device="cpu"))
        return trainer.fit(), trainer.folds[0].module.state_dict()

    (fast, fast_state), (plain, plain_state) = fit(amp="bf16", channels_last=True), fit()
    assert fast["epoch"] == 1 and math.isfinite(fast["train/loss"])
    assert fast["train/loss"] == plain["train/loss"] and fast["val/loss"] == plain["val/loss"]
    for k in plain_state:
        assert torch.equal(fast_state[k], plain_state[k]), k


ECE449_TWO_STAGES = dict(name="sequential", stages=["cosine", "multistep"], stage_starts=[3], t_max=150, min_lr=5e-6, milestones=[1, 2], decay_rate=0.25)


def test_sequential_runs_cosine_then_multistep_each_from_its_own_start():
    """ECE449's two stages under torch's SequentialLR: the cosine from lr, then from epoch 3 the
    multistep from lr again, its milestones counted from its start."""
    cosine = [5e-6 + (0.05 - 5e-6) * (1 + math.cos(math.pi * t / 150)) / 2 for t in range(3)]
    assert lrs(ECE449_TWO_STAGES, epochs=6, lr=0.05) == pytest.approx(cosine + [0.05, 0.0125, 0.003125])


def test_a_sequential_schedule_resumes_from_its_checkpointed_state(tmp_path):
    from trainables.checkpoint import load_state, save_state

    def run(opt, sched, epochs):
        out = []
        for epoch in epochs:
            out.append(opt.param_groups[0]["lr"])
            sched.step(epoch + 1)
        return out

    whole_opt = torch.optim.SGD(net().parameters(), lr=0.05)
    whole = run(whole_opt, build_scheduler(whole_opt, SchedulerConfig(**ECE449_TWO_STAGES), 6), range(6))
    opt = torch.optim.SGD(net().parameters(), lr=0.05)
    sched = build_scheduler(opt, SchedulerConfig(**ECE449_TWO_STAGES), 6)
    first = run(opt, sched, range(4))
    directory = save_state(tmp_path, {"opt": opt.state_dict(), "sched": sched.state_dict()}).parent
    state = load_state(directory)  # weights_only: the schedule's state is plain data
    opt2 = torch.optim.SGD(net().parameters(), lr=0.05)
    opt2.load_state_dict(state["opt"])
    sched2 = build_scheduler(opt2, SchedulerConfig(**ECE449_TWO_STAGES), 6)
    sched2.load_state_dict(state["sched"])
    assert first + run(opt2, sched2, range(4, 6)) == pytest.approx(whole)


@pytest.mark.parametrize("fields, expected", [
    ({"stages": ["cosine"], "stage_starts": []}, "scheduler.stages: sequential needs two or more stages, e.g. [cosine, multistep]; got ['cosine']"),
    ({"stages": ["cosine", "plateau"], "stage_starts": [2]}, "scheduler.stages[1]: unknown stage 'plateau'; allowed: cosine, exponential, multistep, none, step"),
    ({"stages": ["cosine", "multistep"], "stage_starts": []}, "scheduler.stage_starts: needs one start epoch per stage after the first (1), got []"),
    ({"stages": ["cosine", "multistep"], "stage_starts": [5]}, "scheduler.stage_starts: must rise from above 0 to below train.epochs (2), got [5]"),
    ({"stages": ["cosine", "multistep"], "stage_starts": [1], "warmup_epochs": 1}, "scheduler.warmup_epochs: sequential takes no warmup_epochs (its stages are the whole schedule); leave it 0"),
])
def test_a_sequence_that_cannot_run_is_refused_in_one_line(sweep_file, fields, expected):
    with pytest.raises(ConfigError) as e:
        load_checked(sweep_file(tiny_config(scheduler={"name": "sequential", **fields})))
    assert e.value.line().endswith(expected)


def test_a_sequential_schedule_trains(sweep_file, tmp_path):
    cfg = load_sweep(sweep_file(tiny_config(scheduler={"name": "sequential", "stages": ["cosine", "multistep"], "stage_starts": [1], "milestones": [1]}))).config
    session = LocalSession(tmp_path, device="cpu")
    Trainer(cfg, session).fit()
    assert [r["lr"] for r in session.results] == pytest.approx([0.1, 0.1])  # each stage starts from the base lr
