"""Concurrency and scaling, with raysweep's defaults (tracking on, one-worker trials trained
in their Tune trial actor): K one-core trials at once against one alone, and whether the
per-trial cost and the driver's memory stay flat from 4 to 64 trials.

    python bench/concurrency.py                 # ~12 min on 2 cores
    python bench/concurrency.py --tiny          # the smoke test
    python bench/concurrency.py --sizes 4,16 --repeats 1

The trial: `digits`, `tiny_cnn`, one worker of 1 CPU, batch 32, on a Ray instance of
`cores` CPUs (this machine's).

- Parallel over alone (as Ray's release test of Tune over Train): the median trial duration
  (start to completion, from a driver-side Tune callback) of K trials at once over one trial
  at a time, K = the cores, 3 epochs, `--trials` trials per level (the first trial on each
  reused actor, which also waits for the actor to start, is left out).
- Scaling: sweeps of N one-epoch trials, 2 at once, N in `--sizes`, each against a bare Tune
  function trainable's sweep of the same N (the trainable of `bench/startup.py`) right
  before it. Per trial = (sweep wall time - bare's) / N; the driver's resident memory at its
  peak during the sweep (sampled), and Tune's experiment state file at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import harness
import startup
from harness import Spread, key_line, print_table


def measure_level(workdir: Path, name: str, trials: int, at_once: int, epochs: int) -> dict:
    clock = workdir / f"{name}.trials.jsonl"
    raw = harness.tiny_trial_sweep(name, trials, epochs=epochs, at_once=at_once, tracking=f"sqlite:///{workdir / 'mlflow.db'}")
    harness.timed_sweep(raw, workdir, name, clock)
    times = harness.trial_times(clock)
    if times["errors"] or len(times["ends"]) != trials:
        raise RuntimeError(f"{name}: {len(times['ends'])} of {trials} trials completed")
    # the first trial on each of the `at_once` reused actors also waits for its actor to start
    # (imports, data): a cost paid once per actor, not per trial, so it is left out of the median
    return {"duration": Spread.of(times["spans"][at_once:]).median}


class DriverPeak(harness.MemoryPeak):
    """The driver process's own resident memory at its peak."""

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, harness.rss_bytes(os.getpid()))


def measure_size(workdir: Path, n: int, rep: int) -> dict:
    out = {}
    for arm in ("bare", "default"):
        name = f"scale_{arm}_{n}_{rep}"
        raw = harness.tiny_trial_sweep(name, n, epochs=1, at_once=2,
                                       tracking="off" if arm == "bare" else f"sqlite:///{workdir / 'mlflow.db'}")
        with DriverPeak() as mem:
            t0 = time.perf_counter()
            if arm == "bare":
                startup.run_bare(raw, workdir, name, cpus=1)
            else:
                harness.timed_sweep(raw, workdir, name, workdir / f"{name}.trials.jsonl")
            wall = time.perf_counter() - t0
        states = sorted((workdir / name).glob("experiment_state-*.json"))
        out[arm] = {"wall": wall, "driver": mem.peak, "state": states[-1].stat().st_size if states else 0}
    return out


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=2)
    p.add_argument("--trials", type=int, default=8, help="trials per concurrency level (default 8; the first on each actor is left out)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--sizes", default="4,16,64", help="sweep sizes of the scaling test (default 4,16,64)")
    p.add_argument("--cores", type=int, default=os.cpu_count(), help="CPUs of the Ray instance (default: this machine's)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.tiny:
        args.repeats, args.trials, args.epochs, sizes = 1, 3, 1, [2]
    begun = time.perf_counter()
    harness.start_ray(num_cpus=args.cores)
    k = args.cores
    workdir = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    cwd = os.getcwd()
    os.chdir(workdir)  # MLflow's default artifact root, ./mlartifacts, lands here
    levels = {1: [], k: []}
    scaling = {n: [] for n in sizes}
    try:
        harness.create_store(f"sqlite:///{workdir / 'mlflow.db'}")
        for rep in range(args.repeats):
            for c in (1, k) if rep % 2 == 0 else (k, 1):
                levels[c].append(measure_level(workdir, f"c{c}_{rep}", args.trials, c, args.epochs))
        for n in sizes:
            scaling[n].append(measure_size(workdir, n, 0))
    finally:
        os.chdir(cwd)
        shutil.rmtree(workdir, ignore_errors=True)

    ratio = Spread.of(b["duration"] / a["duration"] for a, b in zip(levels[1], levels[k]))
    print(f"digits, tiny_cnn, 1 CPU per trial, Ray instance of {k} CPUs, raysweep's defaults (tracking on); median [min, max] n")
    print_table(f"{k} one-core trials at once over one alone ({args.trials} trials of {args.epochs} epochs per level; target <= 1.1)",
                ["", "trial duration", "ratio"], [
                    ["1 at once", Spread.of(r["duration"] for r in levels[1]).show(1, " s"), "-"],
                    [f"{k} at once", Spread.of(r["duration"] for r in levels[k]).show(1, " s"), ratio.show(2)],
                ])
    rows = []
    for n in sizes:
        runs = scaling[n]
        rows.append([n, Spread.of(r["bare"]["wall"] for r in runs).show(1, " s"), Spread.of(r["default"]["wall"] for r in runs).show(1, " s"),
                     Spread.of((r["default"]["wall"] - r["bare"]["wall"]) / n for r in runs).show(2, " s"),
                     Spread.of(r["bare"]["driver"] / 2**20 for r in runs).show(0, " MiB"), Spread.of(r["default"]["driver"] / 2**20 for r in runs).show(0, " MiB"),
                     Spread.of(r["bare"]["state"] / 2**10 for r in runs).show(0, " KiB"), Spread.of(r["default"]["state"] / 2**10 for r in runs).show(0, " KiB")])
    print_table("scaling: N one-epoch trials, 2 at once (per trial = (wall - bare wall) / N)",
                ["N", "bare Tune", "raysweep", "per trial above bare", "driver peak, bare", "driver peak, raysweep", "Tune state, bare", "Tune state, raysweep"], rows)
    print(harness.elapsed(begun))
    key = {"parallel_over_alone": ratio.median}
    for n in sizes:
        key[f"per_trial_s_n{n}"] = Spread.of((r["default"]["wall"] - r["bare"]["wall"]) / n for r in scaling[n]).median
    key_line("concurrency", key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
