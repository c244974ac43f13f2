"""Concurrency: trials per hour of a fixed tiny trial at 1, 2, ... trials at once on this
machine, through `run_sweep`, against the ideal (cores / cores per trial); and, as in
Ray's release test of Tune over Train, the wall time of K one-core trials run in
parallel over one such trial alone (K = the cores here).

    python bench/concurrency.py                 # levels 1..cores, both trial kinds, ~4 min on 2 cores
    python bench/concurrency.py --tiny          # the smoke test
    python bench/concurrency.py --trials 6 --repeats 3

The trial: `digits`, `tiny_cnn`, 3 epochs, batch 32, one worker of 1 CPU; as a Ray
Train worker trial and inline (`resources.inline: true`). Each level runs `--trials`
trials with `resources.max_concurrent` = the level, on a Ray instance of `cores` CPUs.
Trials per hour = trials / (first trial start to last completion), from a driver-side
Tune callback (as in `bench/startup.py`). Efficiency = trials/hour at level c over c x
trials/hour at level 1 (1.0 is the ideal). Parallel over alone = median trial duration
(start to completion) at level K over the median at level 1.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import harness
from harness import Spread, key_line, print_table

KINDS = {"Train worker": False, "inline": True}


def sweep_raw(name: str, trials: int, at_once: int, inline: bool, epochs: int) -> dict:
    return harness.tiny_trial_sweep(name, trials, inline=inline, epochs=epochs, at_once=at_once)


def measure(workdir: Path, name: str, trials: int, at_once: int, inline: bool, epochs: int) -> dict:
    clock = workdir / f"{name}.trials.jsonl"
    harness.timed_sweep(sweep_raw(name, trials, at_once, inline, epochs), workdir, name, clock)
    times = harness.trial_times(clock)
    if times["errors"] or len(times["ends"]) != trials:
        raise RuntimeError(f"{name}: {len(times['ends'])} of {trials} trials completed")
    span = max(times["ends"]) - min(times["starts"])
    return {"per_hour": trials * 3600 / span, "duration": Spread.of(times["spans"]).median}


def main(argv=None) -> int:
    p = harness.parser(__doc__, repeats=2)
    p.add_argument("--trials", type=int, default=4, help="trials per level (default 4)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--cores", type=int, default=os.cpu_count(), help="CPUs of the Ray instance (default: this machine's)")
    args = p.parse_args(argv)
    kinds = dict(KINDS)
    if args.tiny:
        args.repeats, args.trials, args.epochs = 1, 2, 1
        kinds = {"inline": True}
    levels = list(range(1, args.cores + 1))
    begun = time.perf_counter()
    harness.start_ray(num_cpus=args.cores)
    workdir = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    got = {(k, c): [] for k in kinds for c in levels}
    try:
        for rep in range(args.repeats):
            for kind, inline in kinds.items():
                for c in levels if rep % 2 == 0 else reversed(levels):
                    name = f"{'inline' if inline else 'worker'}_c{c}_{rep}"
                    got[(kind, c)].append(measure(workdir, name, args.trials, c, inline, args.epochs))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows, key = [], {}
    k = args.cores
    for kind in kinds:
        alone = got[(kind, 1)]
        for c in levels:
            runs = got[(kind, c)]
            eff = [r["per_hour"] / (c * a["per_hour"]) for r, a in zip(runs, alone)]
            rows.append([kind, c, Spread.of(r["per_hour"] for r in runs).show(0), Spread.of(c * a["per_hour"] for a in alone).show(0),
                         Spread.of(eff).show(2), Spread.of(r["duration"] for r in runs).show(1, " s")])
        ratio = [r["duration"] / a["duration"] for r, a in zip(got[(kind, k)], alone)]
        key[f"parallel_over_alone_{kind.split()[0].lower()}"] = Spread.of(ratio).median
        key[f"efficiency_{kind.split()[0].lower()}_c{k}"] = Spread.of(
            r["per_hour"] / (k * a["per_hour"]) for r, a in zip(got[(kind, k)], alone)).median
    print(f"digits, tiny_cnn, {args.epochs} epochs, 1 CPU per trial, Ray instance of {args.cores} CPUs; {args.trials} trials per level, "
          f"{args.repeats} repetition(s); median [min, max]")
    print_table("trials per hour by trials at once (ideal: c x the rate alone, as cores / cores per trial allow)",
                ["trial", "at once", "trials/hour", "ideal", "efficiency", "trial duration"], rows)
    print_table(f"{k} one-core trials in parallel over one alone (trial duration; target <= 1.1)", ["trial", "ratio"],
                [[kind, Spread.of(r["duration"] / a["duration"] for r, a in zip(got[(kind, k)], got[(kind, 1)])).show(2)] for kind in kinds])
    print(harness.elapsed(begun))
    key_line("concurrency", key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
