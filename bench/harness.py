"""What every benchmark in `bench/` shares: the command line (`--tiny`, `--repeats`),
medians with their spread, the tables, the closing line of key ratios, and an epoch
clock that times a trainer from inside a Ray Train worker.

Every figure is a comparison measured side by side in one run (interleaved where it
can be), as a median over repetitions with the spread [min, max]: the machine is
shared, so absolute times drift between runs and only ratios travel.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing

from raysweep.tables import table  # noqa: E402

KEY_PREFIX = "key ratios"  # the last line of every benchmark: `key ratios (name): a=1.02 b=0.3`


def parser(doc: str, repeats: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    p.add_argument("--tiny", action="store_true", help="the smallest run that exercises every path (the smoke test)")
    p.add_argument("--repeats", type=int, default=repeats, help=f"repetitions per measurement (default {repeats})")
    return p


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> "Spread":
        v = [float(x) for x in values]
        if not v:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(statistics.median(v), min(v), max(v), len(v))

    def show(self, digits: int = 3, unit: str = "") -> str:
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.median)}{unit} [{f.format(self.low)}, {f.format(self.high)}] n={self.n}"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(f"\n## {title}\n{table(header, rows)}", flush=True)


def key_line(bench: str, ratios: dict[str, float | str]) -> str:
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in ratios.items())
    line = f"{KEY_PREFIX} ({bench}): {shown}"
    print(line, flush=True)
    return line


def validate_config(raw: dict, source: str):
    from raysweep.config.load import validate

    return validate(raw, source)


def start_ray(num_cpus: Optional[int] = None, **kwargs) -> Optional[Path]:
    """A local Ray instance for the benchmark, as the tests start theirs (no dashboard); returns
    its session folder (where Ray and Ray Train write their logs), None if one was running."""
    import ray

    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if ray.is_initialized():
        return None
    context = ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False, **kwargs)
    # the epoch clock travels to Ray workers by value: `bench` is no installed package
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return Path(context.address_info["session_dir"])


class EpochClock:
    """A `Trainer` listener that writes, per epoch, the wall clock and how long the epoch's
    parts took (JSON lines in `path`), wherever the trainer runs (a Ray Train worker too).

    At `start` it wraps the parts of the trainer's per-epoch work in timers, on this one
    trainer instance: training, validation pass, metrics, checkpoint writing and the
    session's report (for Ray Train: persisting the checkpoint and handing the result
    over). The wrappers cost two `perf_counter` calls each."""

    PARTS = ("train", "predict", "metrics", "checkpoint", "report")

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._spent: dict[str, float] = {}

    def _timed(self, part: str, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._spent[part] = self._spent.get(part, 0.0) + time.perf_counter() - t

        return wrapper

    def _write(self, record: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def start(self, trainer, first_epoch: int) -> None:
        self._spent = {}
        for fold in trainer.folds:
            fold.train_epoch = self._timed("train", fold.train_epoch)
            fold.predict = self._timed("predict", fold.predict)
        trainer._epoch_metrics = self._timed("metrics", trainer._epoch_metrics)
        trainer._write_checkpoint = self._timed("checkpoint", trainer._write_checkpoint)
        trainer.session.report = self._timed("report", trainer.session.report)
        self._write({"event": "start", "t": time.time(), "epoch": first_epoch})

    def epoch(self, metrics: dict) -> None:
        self._write({"event": "epoch", "t": time.time(), "epoch": metrics["epoch"], "epoch_time_s": metrics["epoch_time_s"],
                     "images_per_s": metrics.get("images_per_s"), **self._spent})
        self._spent = {}

    def finish(self, metrics: dict, error: Optional[str]) -> None:
        self._write({"event": "finish", "t": time.time(), "error": error})

    @staticmethod
    def read(path: str | Path) -> list[dict]:
        p = Path(path)
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def steady_epochs(records: list[dict]) -> list[dict]:
    """Per epoch after the first: its wall time (`wall`, report to report) and its parts."""
    events = [r for r in records if r["event"] in ("start", "epoch")]
    out = []
    for prev, cur in zip(events, events[1:]):
        if cur["event"] == "epoch" and prev["event"] == "epoch":
            out.append({**cur, "wall": cur["t"] - prev["t"]})
    return out


def trial_clock(path: str | Path, base: Optional[type] = None) -> type:
    """A Tune callback class that writes when each trial starts and ends (JSON lines in
    `path`). `base` may be raysweep's `ProgressTable`, which `run_sweep` builds itself: the
    subclass then stands in for it (patched in by the caller), silent. The file, not a list
    in memory, because Tune works on a pickled copy of its callbacks."""
    from ray.tune import Callback

    class TrialClock(base or Callback):
        clock_path = str(path)

        def _note(self, event: str, trial) -> None:
            with open(self.clock_path, "a") as fh:
                fh.write(json.dumps({"event": event, "trial": trial.trial_id, "t": time.time()}) + "\n")

        def on_trial_start(self, iteration, trials, trial, **info):
            self._note("start", trial)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._note("complete", trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._note("error", trial)

        def print_table(self, trials, force=False):  # ProgressTable's, silenced
            pass

        def on_experiment_end(self, trials, **info):
            pass

    return TrialClock


def trial_times(path: str | Path) -> dict[str, list[float]]:
    """From a `trial_clock` file: `gaps` between consecutive completions, each trial's `spans`
    (start to completion) in the order the trials started, the `starts` and `ends`, and the
    number of `errors`."""
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()] if Path(path).exists() else []
    starts = {r["trial"]: r["t"] for r in records if r["event"] == "start"}
    done = [(r["trial"], r["t"]) for r in records if r["event"] == "complete"]
    return {
        "gaps": [b - a for (_, a), (_, b) in zip(done, done[1:])],
        "spans": [t - starts[tid] for tid, t in sorted(done, key=lambda d: starts.get(d[0], d[1])) if tid in starts],
        "starts": sorted(starts.values()),
        "ends": [t for _, t in done],
        "errors": [r for r in records if r["event"] == "error"],
    }


def bare_training(cfg, epochs: int, each_epoch: Optional[Callable[[int, float], None]] = None):
    """The steps of a raysweep trial written plainly (data, model, a PyTorch loop): the bare
    baseline of the start-up benchmarks, as a Tune trainable and as a fresh interpreter's
    first epoch. Calls `each_epoch(epoch, val_accuracy)` after each epoch; returns the model."""
    import torch
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
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y, _ in train:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x).argmax(1) == y).sum()) for x, y, _ in val)
        if each_epoch is not None:
            each_epoch(epoch, correct / len(split.val))
    return model


def tiny_trial_sweep(name: str, trials: int, *, epochs: int, at_once: int = 1, inline: Optional[bool] = None,
                     tracking: Optional[str] = None, workers: int = 1) -> dict:
    """The fixed tiny trial that startup.py and concurrency.py time: digits, tiny_cnn, one
    worker of 1 CPU, `trials` of them, `at_once` at a time, with raysweep's defaults otherwise.
    `inline` None is the default (a one-worker trial trains in its Tune trial actor), False a
    Ray Train worker group; `tracking` an MLflow URI (the default: tracking on), or "off"."""
    resources = {"workers": workers, "cpus_per_worker": 1, "max_concurrent": at_once}
    if inline is not None:
        resources["inline"] = inline
    return {
        "name": name,
        "data": {"kind": "digits", "loader_workers": 0},
        "model": {"name": "tiny_cnn", "input_size": 16},
        "augment": {"preset": "none"},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": epochs, "batch_size": 32},
        "resources": resources,
        "search": {"algorithm": "grid", "num_samples": trials, "scheduler": "none"},
        "tracking": {"enabled": False} if tracking in (None, "off") else {"uri": tracking, "log_models": True},
    }


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and parentheses
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class MemoryPeak:
    """The peak resident memory of this process and all its descendants (the local Ray
    instance's processes: GCS, raylet, workers, trial actors), sampled every `every_s`
    on a thread while the `with` block runs; `peak` in bytes, `processes` at the peak."""

    def __init__(self, every_s: float = 0.2):
        self.every_s = every_s
        self.peak = 0
        self.processes = 0
        self._stop = None

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            tree = process_tree(os.getpid())
            total = sum(rss_bytes(pid) for pid in tree)
            if total > self.peak:
                self.peak, self.processes = total, len(tree)

    def __enter__(self) -> "MemoryPeak":
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def create_store(uri: str) -> None:
    """An MLflow store with its tables made (the first use of a new SQLite store spends seconds
    on its schema migrations, once in its life, which no sweep after it pays)."""
    from mlflow import MlflowClient

    MlflowClient(uri).search_experiments(max_results=1)


def timed_sweep(raw: dict, storage: Path, name: str, clock_file: Path):
    """`run_sweep` of the sweep `raw`, quietly, with a `trial_clock` writing to `clock_file` in
    place of raysweep's progress table (the only change to raysweep's own path)."""
    import yaml

    from raysweep.commands import load_checked
    from raysweep.sweep import experiment

    path = storage / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    original = experiment.ProgressTable
    experiment.ProgressTable = trial_clock(clock_file, base=original)
    try:
        with quiet():
            return experiment.run_sweep(load_checked(path), storage=str(storage), name=name)
    finally:
        experiment.ProgressTable = original


def machine() -> dict[str, str]:
    """CPU model, cores and memory (from /proc), and the versions that matter."""
    info = {"python": platform.python_version()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    info["cores"] = str(os.cpu_count())
    try:
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
        info["memory"] = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    for module in ("torch", "ray", "timm", "optuna", "mlflow", "albumentations"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = "-"
    return info


@contextlib.contextmanager
def quiet():
    """Keep what Ray Tune and raysweep print (experiment boxes, progress) out of the tables."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def elapsed(start: float) -> str:
    return f"({time.perf_counter() - start:.0f} s)"
