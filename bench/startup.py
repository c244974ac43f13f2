"""Per-trial cost: what a raysweep trial costs, with raysweep's defaults (MLflow tracking
on), above a bare Ray Tune function trainable doing the same training; where start-up goes.

    python bench/startup.py                    # ~15 min on 2 cores
    python bench/startup.py --tiny             # the smoke test
    python bench/startup.py --repeats 5 --arms bare,default

The sweep: `digits`, `tiny_cnn`, 2 epochs, batch 32, one worker of 1 CPU per trial, 6
trials, 2 at once, on a Ray instance of 2 CPUs. Each arm is a whole sweep started fresh
(its own storage and, with tracking, its own MLflow experiment in one SQLite store, created
before any timing as a user's is after their first sweep) in one Ray instance;
the arms' order rotates between repetitions:

- bare: a Tune function trainable written here (load the data, build the model, train
  and validate each epoch with a plain loop, `tune.report` per epoch), with Tune's defaults;
- bare reused: the same with `reuse_actors=True`, as raysweep's one-worker trials run (each
  actor trains trial after trial): what raysweep adds over the best a bare trainable can do;
- default: `run_sweep` with raysweep's defaults: tracking on, and a one-worker trial
  trained in its Tune trial actor (`resources.inline` unset);
- tracking off: the same with `tracking.enabled: false`;
- train worker: the same as default with `resources.inline: false` (a Ray Train run
  with its controller and one worker per trial);
- bare 2 CPUs / DDP 2 workers: 4 trials one at a time, the bare trainable with 2 CPUs
  against a raysweep trial of 2 DDP workers of 1 CPU each (Ray Train, gloo), tracking on.

Per trial = (sweep wall time - the bare sweep's in the same repetition) / trials; tracking
per trial = (default - tracking off) / trials. Memory: the peak resident memory of the
driver and every process under it (the local Ray instance's) during the arm, over the bare
arm's. The start-up of one trial, piece by piece, is timed in fresh interpreters: imports,
`ray.init`, and `raysweep train` (one trial, no Ray Tune) from launch to its first epoch's
checkpoint against a bare PyTorch loop's first epoch plus `ray.init`.
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
from harness import MemoryPeak, Spread, key_line, print_table
from train_phases import STEPS, session_runs

EPOCHS = 2
ARMS = ("bare", "bare reused", "default", "tracking off", "train worker", "bare 2 CPUs", "DDP 2 workers")


def sweep_raw(name: str, trials: int, *, at_once: int = 2, epochs: int = EPOCHS, **kw) -> dict:
    return harness.tiny_trial_sweep(name, trials, epochs=epochs, at_once=at_once, **kw)


# -- the bare Tune function trainable ----------------------------------------------
def bare_trial(config: dict, cfg=None) -> None:
    """The same steps as a raysweep trial, written plainly: data, model, a loop, reports."""
    from ray import tune

    harness.bare_training(cfg, cfg.train.epochs, lambda epoch, accuracy: tune.report({"epoch": epoch, "val/accuracy": accuracy}))


def run_bare(raw: dict, storage: Path, name: str, cpus: int, reuse: bool = False) -> None:
    from ray import tune

    cfg = harness.validate_config(raw, "bench/startup.py")
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(bare_trial, cfg=cfg), {"CPU": cpus}),
        tune_config=tune.TuneConfig(num_samples=cfg.search.num_samples, max_concurrent_trials=cfg.resources.max_concurrent, reuse_actors=reuse),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0),
    )
    with harness.quiet():
        results = tuner.fit()
    if results.num_errors:
        raise RuntimeError(f"{name}: {results.num_errors} bare trial(s) failed")


def run_arm(arm: str, workdir: Path, rep: int, trials: int, ddp_trials: int) -> dict:
    """One whole sweep of the arm: its wall time, memory peak and trial count."""
    name = f"{arm.replace(' ', '_')}_{rep}"
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    clock = workdir / f"{name}.trials.jsonl"
    if arm in ("bare", "bare reused"):
        raw, n = sweep_raw(name, trials), trials
    elif arm == "default":
        raw, n = sweep_raw(name, trials, tracking=store), trials
    elif arm == "tracking off":
        raw, n = sweep_raw(name, trials, tracking="off"), trials
    elif arm == "train worker":
        raw, n = sweep_raw(name, trials, tracking=store, inline=False), trials
    elif arm == "bare 2 CPUs":
        raw, n = sweep_raw(name, ddp_trials, at_once=1), ddp_trials
    else:  # DDP 2 workers
        raw, n = sweep_raw(name, ddp_trials, at_once=1, tracking=store, workers=2), ddp_trials
    cwd = os.getcwd()
    os.chdir(workdir)  # the default artifact root, ./mlartifacts, lands in the arm's folder
    try:
        with MemoryPeak() as mem:
            t0 = time.perf_counter()
            if arm.startswith("bare"):
                run_bare(raw, workdir, name, cpus=2 if arm == "bare 2 CPUs" else 1, reuse=arm == "bare reused")
            else:
                harness.timed_sweep(raw, workdir, name, clock)
            wall = time.perf_counter() - t0
    finally:
        os.chdir(cwd)
    if not arm.startswith("bare"):
        times = harness.trial_times(clock)
        if times["errors"] or len(times["ends"]) != n:
            raise RuntimeError(f"{name}: {len(times['ends'])} of {n} trials completed, {len(times['errors'])} failed")
    return {"wall": wall, "trials": n, "memory": mem.peak, "processes": mem.processes}


# -- start-up, piece by piece, in fresh interpreters -------------------------------------
IMPORTS = """
import json, time
out, t = {}, time.perf_counter()
def mark(k):
    global t
    now = time.perf_counter(); out[k] = now - t; t = now
import torch; mark("torch")
import timm; mark("timm")
import ray, ray.tune; mark("ray (tune)")
import mlflow; mark("mlflow")
import raysweep.sweep.experiment, raysweep.tracking.sweep, trainables.trainer, trainables.tune_session; mark("raysweep modules")
print(json.dumps(out))
"""

CONNECT = """
import json, time
import ray
from raysweep.connect import connect
t = time.perf_counter(); connect(None); init = time.perf_counter() - t
print(json.dumps({"ray.init": init}))
ray.shutdown()
"""

# a bare PyTorch loop's first epoch, from interpreter start, on the data and model `raysweep train` uses
BARE_FIRST_EPOCH = """
import json, sys, time
t0 = time.time()
sys.path.insert(0, "bench")
import torch, yaml
import harness
from raysweep.config.load import validate
cfg = validate(yaml.safe_load(open(sys.argv[1])), sys.argv[1])
model = harness.bare_training(cfg, 1)
torch.save(model.state_dict(), sys.argv[2])
print(json.dumps({"first epoch": time.time() - t0}))
"""


STEP_TIMEOUT_S = 180  # a piece that hangs fails the bench with its output, inside the smoke test's limit


def fresh(code: str, *args: str) -> dict:
    try:
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=harness.REPO, timeout=STEP_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"a fresh interpreter ran past {STEP_TIMEOUT_S} s: {code.strip().splitlines()[:3]}\n{(e.stderr or b'')[-2000:]!r}") from None
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_first_epoch(workdir: Path, tag: str) -> dict:
    """`raysweep train` as a user runs it: launch to its first checkpoint, and to exit."""
    import yaml

    sweep = workdir / f"{tag}.yaml"
    sweep.write_text(yaml.safe_dump(sweep_raw(tag, 1, epochs=3, tracking=f"sqlite:///{workdir / (tag + '.db')}")))
    storage = workdir / f"train-{tag}"
    t0 = time.monotonic()
    log = workdir / f"{tag}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "raysweep", "train", str(sweep), "--storage", str(storage)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    first = None
    while proc.poll() is None:
        if first is None and any(storage.rglob("checkpoint_*/meta.json")):
            first = time.monotonic() - t0
        if time.monotonic() - t0 > STEP_TIMEOUT_S:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"raysweep train ran past {STEP_TIMEOUT_S} s (first checkpoint after {first} s):\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    total = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"raysweep train exited {proc.returncode}:\n{log.read_text()[-3000:]}")
    bare = fresh(BARE_FIRST_EPOCH, str(sweep), str(workdir / f"{tag}.pt"))["first epoch"]
    return {"train": first if first is not None else total, "exit": total, "bare": bare}


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=3)
    p.add_argument("--trials", type=int, default=6, help="trials per sweep, 2 at once (default 6)")
    p.add_argument("--ddp-trials", type=int, default=4, help="trials of the DDP arms, one at a time (default 4)")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from: {', '.join(ARMS)}")
    p.add_argument("--no-pieces", action="store_true", help="skip the start-up split (imports, ray.init, raysweep train)")
    args = p.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if "bare" not in arms:
        arms.insert(0, "bare")
    if "DDP 2 workers" in arms and "bare 2 CPUs" not in arms:
        arms.append("bare 2 CPUs")
    if args.tiny:
        args.repeats, args.trials, args.ddp_trials = 1, 2, 1
    begun = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    got = {a: [] for a in arms}
    pieces: dict[str, list[dict]] = {"imports": [], "connect": [], "train": []}
    try:
        if not args.no_pieces:  # fresh interpreters first, while no Ray instance of ours runs
            for rep in range(1 if args.tiny else args.repeats):
                pieces["imports"].append(fresh(IMPORTS))
                pieces["connect"].append(fresh(CONNECT))
                pieces["train"].append(train_first_epoch(workdir, f"train{rep}"))
        harness.create_store(f"sqlite:///{workdir / 'mlflow.db'}")
        session = harness.start_ray(num_cpus=2)
        for rep in range(args.repeats):
            for arm in arms[rep % len(arms):] + arms[: rep % len(arms)]:  # rotate the order
                got[arm].append(run_arm(arm, workdir, rep, args.trials, args.ddp_trials))
        train_runs = session_runs(session) if session else []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def per_trial(arm: str, base: str) -> Spread:
        return Spread.of((r["wall"] - b["wall"]) / r["trials"] for r, b in zip(got[arm], got[base]))

    base_of = {a: ("bare 2 CPUs" if a == "DDP 2 workers" else "bare") for a in arms}
    rows = []
    for arm in arms:
        over = "-" if arm.startswith("bare") else per_trial(arm, base_of[arm]).show(2, " s")
        mem = Spread.of(r["memory"] / b["memory"] for r, b in zip(got[arm], got[base_of[arm]]))
        rows.append([arm, got[arm][0]["trials"], Spread.of(r["wall"] for r in got[arm]).show(1, " s"), over,
                     Spread.of(r["memory"] / 2**30 for r in got[arm]).show(2, " GiB"), mem.show(2), got[arm][0]["processes"]])
    print(f"digits, tiny_cnn, {EPOCHS} epochs, batch 32, 1 CPU per worker, Ray instance of 2 CPUs; {args.trials} trials 2 at once "
          f"({args.ddp_trials} one at a time for the 2-CPU arms); {args.repeats} repetition(s); median [min, max] n")
    print_table("per trial above the bare Tune trainable: (sweep wall time - bare's) / trials",
                ["arm", "trials", "sweep wall time", "per trial above bare", "memory peak (process tree)", "memory / bare's", "processes"], rows)
    key: dict[str, float] = {}
    if "default" in arms:
        key["default_per_trial_s"] = per_trial("default", "bare").median
        key["default_memory_ratio"] = Spread.of(r["memory"] / b["memory"] for r, b in zip(got["default"], got["bare"])).median
    if "default" in arms and "tracking off" in arms:
        tracking = Spread.of((d["wall"] - o["wall"]) / d["trials"] for d, o in zip(got["default"], got["tracking off"]))
        print_table("MLflow tracking per trial: (default - tracking off) / trials", ["", "seconds"], [["tracking", tracking.show(2, " s")]])
        key["tracking_per_trial_s"] = tracking.median
    if "bare reused" in arms and "default" in arms:
        key["default_over_bare_reused_s"] = per_trial("default", "bare reused").median
    if "train worker" in arms:
        key["train_worker_per_trial_s"] = per_trial("train worker", "bare").median
    if "DDP 2 workers" in arms:
        key["ddp2_per_trial_s"] = per_trial("DDP 2 workers", "bare 2 CPUs").median
    if train_runs:
        sizes = sorted({r["workers"] for r in train_runs})
        steps = [s for s in [*STEPS.values(), "worker group shutdown"] if any(s in r for r in train_runs)]
        print_table("each Ray Train run's start, from Train's own controller logs (seconds)", ["step", *(f"{n} worker(s)" for n in sizes)],
                    [[step, *(Spread.of(r[step] for r in train_runs if r["workers"] == n and step in r).show(2, " s") for n in sizes)] for step in steps])
    if pieces["imports"]:
        split = [["import " + k, Spread.of(i[k] for i in pieces["imports"]).show(2, " s")] for k in pieces["imports"][0]]
        split.append(["ray.init (raysweep.connect: local, dashboard)", Spread.of(c["ray.init"] for c in pieces["connect"]).show(2, " s")])
        print_table("start-up, piece by piece (fresh interpreters)", ["piece", "seconds"], split)
        t = pieces["train"]
        ratio = Spread.of(r["train"] / (r["bare"] + c["ray.init"]) for r, c in zip(t, pieces["connect"]))
        print_table("`raysweep train` (one trial, 3 epochs) to its first epoch's checkpoint, from launch", ["", "seconds"], [
            ["bare PyTorch loop, first epoch", Spread.of(r["bare"] for r in t).show(2, " s")],
            ["raysweep train, first checkpoint", Spread.of(r["train"] for r in t).show(2, " s")],
            ["raysweep train, to exit", Spread.of(r["exit"] for r in t).show(2, " s")],
            ["ratio over (bare + ray.init)", ratio.show(2)],
        ])
        key["train_first_epoch_ratio"] = ratio.median
    print(harness.elapsed(begun))
    key_line("startup", key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
