"""Start-up and scheduling: how long `raysweep run` takes to its first metric, what a
raysweep trial costs above a bare Ray Tune function trainable doing the same work, and
where the start-up goes (imports, `ray.init`, worker group, first epoch).

    python bench/startup.py                    # ~6 min on 2 cores
    python bench/startup.py --tiny             # the smoke test
    python bench/startup.py --repeats 3 --trials 5

Per-trial overhead: N trials run one after another (`max_concurrent_trials 1`) of
three kinds, same data (`digits`), model (`tiny_cnn`), epochs (2), batch size and one
CPU per trial:

- bare: a Tune function trainable written here (load the data, build the model, train
  and validate each epoch with a plain loop, `tune.report` per epoch);
- raysweep: `run_sweep` of a sweep file, each trial a one-worker Ray Train run;
- raysweep inline: the same sweep with `resources.inline: true` (the trainer runs in
  the Tune trial actor, `trainables/tune_session.py`).

A trial's cost is the time between the completions of consecutive trials (so Tune's
scheduling between trials counts; the first trial, which carries the experiment's
start, is left out), recorded by a driver-side Tune callback; for the raysweep kinds
the callback replaces raysweep's progress table (the one patch this script makes).
Overhead = median raysweep trial - median bare trial, per repetition.

Start-up split, each in a fresh interpreter: the imports (torch, then timm, ray with
train and tune, mlflow, then raysweep's own modules, cumulative in that order),
`raysweep.connect.connect()` (what `raysweep run` calls: `ray.init` of a local
instance with the dashboard), and through Ray Train, from `TorchTrainer.fit()` to the
trainer built in the worker (worker group start: its processes, their imports, data
and model) and to the first epoch's report. `raysweep run` itself is timed as a
subprocess from launch to the first line of the trial's `result.json`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import EpochClock, Spread, key_line, print_table

EPOCHS = 2


def sweep_raw(name: str, trials: int, inline: bool, epochs: int = EPOCHS) -> dict:
    return harness.tiny_trial_sweep(name, trials, inline=inline, epochs=epochs)


# -- the bare Tune function trainable ----------------------------------------------
def bare_trial(config: dict, cfg=None) -> None:
    """The same steps as a raysweep trial, written plainly: data, model, a loop, reports."""
    import torch
    from ray import tune
    from torch.utils.data import DataLoader

    from trainables.data.dataset import SampleDataset
    from trainables.data.sources import load_samples
    from trainables.data.splits import make_split
    from trainables.models import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    samples = load_samples(cfg.data)
    split = make_split(cfg.data, samples, None)
    train = DataLoader(SampleDataset(samples, split.train), batch_size=cfg.train.batch_size, shuffle=True)
    val = DataLoader(SampleDataset(samples, split.val), batch_size=cfg.train.batch_size * 2)
    model = build_model(cfg.model, samples.num_classes, samples.in_chans)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr, momentum=0.9)
    for epoch in range(cfg.train.epochs):
        model.train()
        for x, y, _ in train:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x).argmax(1) == y).sum()) for x, y, _ in val)
        tune.report({"epoch": epoch + 1, "val/accuracy": correct / len(split.val)})


def per_trial_seconds(clock_file: Path) -> tuple[float, float]:
    """(median time between consecutive completions, median start-to-completion)."""
    times = harness.trial_times(clock_file)
    if times["errors"]:
        raise RuntimeError(f"{len(times['errors'])} trial(s) failed")
    return Spread.of(times["gaps"]).median, Spread.of(times["spans"]).median


def run_bare(trials: int, storage: Path, name: str, clock_file: Path) -> None:
    from ray import tune

    cfg = harness.validate_config(sweep_raw(name, trials, False), "bench/startup.py")
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(bare_trial, cfg=cfg), {"CPU": 1}),
        tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=1),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), callbacks=[harness.trial_clock(clock_file)()], verbose=0),
    )
    with harness.quiet():
        tuner.fit()


# -- start-up, piece by piece ---------------------------------------------------------
IMPORTS = """
import json, time
out, t = {}, time.perf_counter()
def mark(k):
    global t
    now = time.perf_counter(); out[k] = now - t; t = now
import torch; mark("torch")
import timm; mark("timm")
import ray, ray.train, ray.tune; mark("ray (train, tune)")
import mlflow; mark("mlflow")
import raysweep.sweep.experiment, raysweep.tracking.sweep, trainables.trainer, trainables.launch; mark("raysweep modules")
print(json.dumps(out))
"""

CONNECT = """
import json, time
import ray
from raysweep.connect import connect
t = time.perf_counter(); connect(None); init = time.perf_counter() - t
print(json.dumps({"connect (ray.init)": init}))
ray.shutdown()
"""


def fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=harness.REPO, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def worker_group_start(workdir: Path, tag: str) -> dict:
    """Through Ray Train, from fit() to the trainer built in the worker, and to its first report."""
    from trainables.launch import build_trainer

    cfg = harness.validate_config(sweep_raw("startup", 1, False), "bench/startup.py")
    clock_file = workdir / f"{tag}.jsonl"
    t0 = time.time()
    build_trainer(cfg, name=tag, storage_path=str(workdir / "storage"), workers=1, listeners=[EpochClock(clock_file)]).fit()
    t_end = time.time()
    records = EpochClock.read(clock_file)
    start = next(r["t"] for r in records if r["event"] == "start")
    epochs = [r for r in records if r["event"] == "epoch"]
    return {
        "worker group up, trainer built": start - t0,
        "first epoch (to its report)": epochs[0]["t"] - start,
        "later epoch": epochs[1]["t"] - epochs[0]["t"] if len(epochs) > 1 else float("nan"),
        "fit() returns after last report": t_end - epochs[-1]["t"],
    }


def cli_first_metric(workdir: Path, tag: str, inline: bool) -> dict:
    """`raysweep run` as a user runs it: launch to the first line of result.json, and to exit."""
    import yaml

    sweep = workdir / f"{tag}.yaml"
    sweep.write_text(yaml.safe_dump(sweep_raw(tag, 1, inline)))
    storage = workdir / f"cli-{tag}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "raysweep", "run", str(sweep), "--storage", str(storage), "--name", tag],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir, env=env,
    )
    first = None
    while proc.poll() is None:
        if first is None and any(p.stat().st_size > 0 for p in storage.glob(f"{tag}/*/result.json")):
            first = time.monotonic() - t0
        time.sleep(0.05)
    total = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"raysweep run exited {proc.returncode}")
    if first is None:  # finished between two polls
        first = total
    return {"first metric": first, "exit": total}


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=2)
    p.add_argument("--trials", type=int, default=4, help="sequential trials per kind and repetition (default 4)")
    args = p.parse_args(argv)
    if args.tiny:
        args.repeats, args.trials = 1, 2
    begun = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    split_rows, cli, per_trial = [], {False: [], True: []}, {k: [] for k in ("bare", "raysweep", "raysweep inline")}
    spans = {k: [] for k in per_trial}
    try:
        # fresh interpreters first, while no Ray instance of ours runs
        imports = [fresh(IMPORTS) for _ in range(args.repeats)]
        connects = [fresh(CONNECT) for _ in range(args.repeats)]
        cli_kinds = (True,) if args.tiny else (False, True)  # the smoke test launches one
        for rep in range(args.repeats):
            for inline in cli_kinds if rep % 2 == 0 else cli_kinds[::-1]:
                cli[inline].append(cli_first_metric(workdir, f"cli{rep}{'i' if inline else ''}", inline))

        harness.start_ray(num_cpus=2)
        groups = [worker_group_start(workdir, f"wg{rep}") for rep in range(args.repeats)]
        kinds = list(per_trial)
        for rep in range(args.repeats):
            for kind in kinds[rep % 3:] + kinds[: rep % 3]:  # rotate the order between repetitions
                name = f"{kind.replace(' ', '_')}_{rep}"
                clock_file = workdir / f"{name}.trials.jsonl"
                if kind == "bare":
                    run_bare(args.trials, workdir, name, clock_file)
                else:
                    harness.timed_sweep(sweep_raw(name, args.trials, kind.endswith("inline")), workdir, name, clock_file)
                gap, span = per_trial_seconds(clock_file)
                per_trial[kind].append(gap)
                spans[kind].append(span)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    for k in imports[0]:
        split_rows.append(["import " + k, Spread.of(i[k] for i in imports).show(2, " s")])
    split_rows.append(["imports, total", Spread.of(sum(i.values()) for i in imports).show(2, " s")])
    split_rows.append(["connect() = ray.init, local, dashboard", Spread.of(c["connect (ray.init)"] for c in connects).show(2, " s")])
    for k in groups[0]:
        split_rows.append(["Ray Train: " + k, Spread.of(g[k] for g in groups).show(2, " s")])

    print(f"digits, tiny_cnn, {EPOCHS} epochs, batch 32, 1 CPU per trial; {args.repeats} repetition(s), "
          f"{args.trials} sequential trials per kind each; median [min, max]")
    print_table("start-up, piece by piece", ["piece", "seconds"], split_rows)
    print_table("`raysweep run` of one trial, from launch", ["trial", "to the first metric", "to exit"], [
        [("inline" if inline else "Train worker"), Spread.of(c["first metric"] for c in cli[inline]).show(1, " s"), Spread.of(c["exit"] for c in cli[inline]).show(1, " s")]
        for inline in (False, True) if cli[inline]
    ])
    rows = []
    for kind in per_trial:
        over = [r - b for r, b in zip(per_trial[kind], per_trial["bare"])]
        rows.append([kind, Spread.of(per_trial[kind]).show(2, " s"), Spread.of(spans[kind]).show(2, " s"), Spread.of(over).show(2, " s") if kind != "bare" else "-"])
    print_table("per trial, sequential (time between completions; start to completion inside Tune)",
                ["trial kind", "per trial", "start to completion", "overhead over bare"], rows)
    print(harness.elapsed(begun))
    key_line("startup", {
        "overhead_train_worker_s": Spread.of(r - b for r, b in zip(per_trial["raysweep"], per_trial["bare"])).median,
        "overhead_inline_s": Spread.of(r - b for r, b in zip(per_trial["raysweep inline"], per_trial["bare"])).median,
        "cli_first_metric_s": Spread.of(c["first metric"] for c in cli[False]).median,
        "cli_first_metric_inline_s": Spread.of(c["first metric"] for c in cli[True]).median,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
