"""Search efficiency on long-tailed digits: exhaustive grid, random search, Optuna TPE and
TPE + ASHA, each with the same budget of trial-epochs, over several seeds.

    python bench/search_efficiency.py              # 3 seeds, ~6 min on 2 cores
    python bench/search_efficiency.py --tiny       # the smoke test
    python bench/search_efficiency.py --seeds 5 --epochs 12

Data: `digits_lt`, imbalance ratio 100 (322 training images, 133 down to 1 per class;
balanced validation of 450). Model `tiny_cnn`, SGD with momentum, cosine schedule,
`--epochs` epochs per full trial. The space: learning rate, weight decay, batch size
and loss (CE; focal with its gamma; LDAM-DRW with its C, DRW for the last third):

- grid: 3 lr {0.03, 0.1, 0.3} x 2 weight decay {1e-4, 1e-3} x 2 batch {16, 32} x
  (CE, focal gamma {1, 2}, LDAM C {0.5, 1}) = 60 cells, each trained in full;
- random, TPE, TPE + ASHA: the same ranges as distributions (lr and weight decay
  log-uniform over the grid's span, gamma uniform [1, 2], C uniform [0.5, 1], batch
  size and loss chosen), trials drawn until the grid's budget of trial-epochs is spent.

The searcher is raysweep's own: `searcher_for(sweep)` of the sweep file (the
`SweepSearcher` over an Optuna study that `raysweep run` gives Tune), asked for trials
and told their per-epoch results and completion as Tune tells it. ASHA is raysweep's
scheduler (`build_trial_scheduler`: Optuna's `SuccessiveHalvingPruner` on the searcher's study, grace period 1,
reduction factor 3), whose per-epoch CONTINUE/STOP decisions are obeyed. Trials run
one at a time, in a process of their own per (method, seed) (two at once on 2 cores),
each a `Trainer` in a session that only records its reports: no Ray cluster, and no
concurrency, so the asynchronous halving sees every earlier trial's rungs. The
training seed is the search seed, so each seed's grid is trained afresh.

Figures, per method: the best validation macro F1 reached (best epoch of the best trial,
as `raysweep report` ranks), and the trial-epochs spent until the running best came
within 0.01 of that seed's grid best.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import harness
from harness import Spread, key_line, print_table

METHODS = ("grid", "random", "tpe", "tpe+asha")
TOLERANCE = 0.01
GRID = {
    "optimizer.lr": [0.03, 0.1, 0.3],
    "optimizer.weight_decay": [1.0e-4, 1.0e-3],
    "train.batch_size": [16, 32],
    "loss.name": ["ce", "focal", "ldam"],
    "loss.gamma": [1.0, 2.0],
    "loss.C": [0.5, 1.0],
}


class Stop(Exception):
    """Ends a trial: the scheduler said STOP, or the budget is spent."""


def domains(method: str, tiny: bool) -> dict[str, dict]:
    grid = {k: v[:1] if tiny and k != "loss.name" else v for k, v in GRID.items()}
    if method == "grid":
        return {k: {"grid": v} for k, v in grid.items()}
    return {
        "optimizer.lr": {"loguniform": [min(GRID["optimizer.lr"]), max(GRID["optimizer.lr"])]},
        "optimizer.weight_decay": {"loguniform": [min(GRID["optimizer.weight_decay"]), max(GRID["optimizer.weight_decay"])]},
        "train.batch_size": {"choice": grid["train.batch_size"]},
        "loss.name": {"choice": grid["loss.name"]},
        "loss.gamma": {"uniform": [min(GRID["loss.gamma"]), max(GRID["loss.gamma"])]},
        "loss.C": {"uniform": [min(GRID["loss.C"]), max(GRID["loss.C"])]},
    }


def sweep_raw(method: str, seed: int, epochs: int, tiny: bool, grace: int = 1, reduction: int = 3) -> dict:
    raw = {
        "name": f"search_{method.replace('+', '_')}",
        "data": {"kind": "digits_lt", "imbalance_ratio": 100, "loader_workers": 0},
        "model": {"name": "tiny_cnn", "kwargs": {"widths": [16, 32]}, "input_size": 16},
        "augment": {"preset": "none"},
        "loss": {"name": "ce", "drw_start_epoch": max(1, round(epochs * 2 / 3)), "C": 1.0},
        "optimizer": {"name": "sgd", "momentum": 0.9},
        "scheduler": {"name": "cosine"},
        "train": {"epochs": epochs, "seed": seed},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {
            "algorithm": {"grid": "grid", "random": "random"}.get(method, "optuna"),
            "num_samples": None if method == "grid" else 10_000,
            "seed": seed, "metric": "val/macro_f1", "mode": "max",
            "scheduler": "asha" if method == "tpe+asha" else "none",
            "grace_period": grace, "reduction_factor": reduction,
        },
        "tracking": {"enabled": False},
    }
    for path, dom in domains(method, tiny).items():
        section, key = path.split(".")
        raw[section][key] = dom
    return raw


def run_method(job: tuple) -> dict:
    """One search (method, seed, budget): its trials, one after another, in this process."""
    method, seed, epochs, budget, tiny, grace, reduction = job
    import torch
    import yaml
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import Searcher

    from raysweep.commands import load_checked
    from raysweep.search.schedulers import build_trial_scheduler
    from raysweep.sweep.experiment import searcher_for
    from trainables.session import Session
    from trainables.trainer import Trainer

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(yaml.safe_dump(sweep_raw(method, seed, epochs, tiny, grace, reduction)))
        sweep = load_checked(path)
    searcher, _, _ = searcher_for(sweep)
    search = sweep.config.search
    scheduler = build_trial_scheduler(search, sweep.config.train.epochs, searcher) if search.scheduler == "asha" else None
    if scheduler is not None:
        scheduler.set_search_properties(search.primary_metric, search.primary_mode)

    spent, best, curve, trials = 0, float("-inf"), [], 0

    class Recorder(Session):
        def __init__(self, trial):
            self.trial = trial
            self.last = None

        def report(self, metrics, checkpoint_dir):
            nonlocal spent, best
            spent += 1
            self.last = metrics
            best = max(best, metrics["val/macro_f1"])
            curve.append((spent, best))
            searcher.on_trial_result(self.trial.trial_id, metrics)
            if scheduler is not None and scheduler.on_trial_result(None, self.trial, metrics) == TrialScheduler.STOP:
                raise Stop("asha")
            if spent >= budget:
                raise Stop("budget")

    while spent < budget:
        trial = SimpleNamespace(trial_id=f"{method}_{seed}_{trials:04d}")
        params = searcher.suggest(trial.trial_id)
        if params is None or params == Searcher.FINISHED:
            break
        trials += 1
        if scheduler is not None:
            scheduler.on_trial_add(None, trial)
        session = Recorder(trial)
        try:
            Trainer(sweep.resolve(params), session).fit()
        except Stop:
            pass
        searcher.on_trial_complete(trial.trial_id, session.last)
        if scheduler is not None and session.last is not None:
            scheduler.on_trial_complete(None, trial, session.last)
    return {"method": method, "seed": seed, "curve": curve, "trials": trials, "spent": spent, "best": best}


def epochs_to(curve: list[tuple[int, float]], target: float) -> float:
    return next((spent for spent, best in curve if best >= target - 1e-12), float("inf"))


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=3)
    p.add_argument("--seeds", type=int, default=None, help="search (and training) seeds; same as --repeats")
    p.add_argument("--epochs", type=int, default=8, help="epochs of a full trial (default 8)")
    p.add_argument("--grace-period", type=int, default=1, help="ASHA's grace period in epochs (default 1)")
    p.add_argument("--reduction-factor", type=int, default=3, help="ASHA's reduction factor (default 3)")
    p.add_argument("--methods", default=None, help="comma-separated subset of grid,random,tpe,tpe+asha (the grid is needed for the targets)")
    p.add_argument("--processes", type=int, default=2, help="searches run at once (default 2)")
    args = p.parse_args(argv)
    seeds = args.seeds or args.repeats
    if args.tiny:
        seeds, args.epochs = 1, 2
    begun = time.perf_counter()

    cells = 3 if args.tiny else 60  # ce + focal x 2 gammas + ldam x 2 Cs, times 12 (lr x wd x batch)
    budget = cells * args.epochs
    methods = args.methods.split(",") if args.methods else METHODS
    jobs = [(m, s, args.epochs, budget, args.tiny, args.grace_period, args.reduction_factor) for s in range(seeds) for m in methods]
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no torch threads or Ray state inherited
    with ctx.Pool(max(1, args.processes)) as pool:
        runs = pool.map(run_method, jobs, chunksize=1)
    by = {(r["method"], r["seed"]): r for r in runs}
    if by[("grid", 0)]["trials"] != cells:
        raise RuntimeError(f"the grid ran {by[('grid', 0)]['trials']} trials, expected {cells}")

    rows, key = [], {}
    for method in [m for m in METHODS if m in methods]:
        results = [by[(method, s)] for s in range(seeds)]
        targets = [by[("grid", s)]["best"] - TOLERANCE for s in range(seeds)]
        needed = [epochs_to(r["curve"], t) for r, t in zip(results, targets)]
        reached = [n for n in needed if n != float("inf")]
        share = [n / budget for n in needed]
        rows.append([
            method, Spread.of(r["best"] for r in results).show(3), Spread.of(r["trials"] for r in results).show(0),
            f"{len(reached)}/{seeds}", Spread.of(needed).show(0) if reached else "never", Spread.of(share).show(3) if reached else "-",
        ])
        key[f"{method}_best_f1"] = Spread.of(r["best"] for r in results).median
        if method != "grid":
            key[f"{method}_epochs_share"] = Spread.of(share).median
    print(f"digits_lt (imbalance 100), tiny_cnn, {args.epochs} epochs per full trial; budget {budget} trial-epochs per method "
          f"(the {cells}-cell grid trained in full); ASHA grace period {args.grace_period}, reduction factor {args.reduction_factor}; "
          f"{seeds} seed(s); median [min, max] over seeds")
    print_table(f"best validation macro F1 and trial-epochs to within {TOLERANCE} of the grid's best",
                ["method", "best macro F1", "trials run", "reached", "trial-epochs needed", "share of grid budget"], rows)
    print(harness.elapsed(begun))
    key_line("search_efficiency", key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
