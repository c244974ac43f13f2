"""What a trial's and a sweep's MLflow runs hold besides metrics.

Trial: its best checkpoint (state, resolved config, predictions, split), a
confusion-matrix PNG, a per-class report CSV and learning curves, all made
from the checkpoint Ray Train stored (so a trial that Tune stopped early gets
them too). Sweep: the leaderboard, the search's plots (optimization history,
parameter importances, parallel coordinates; PNG and interactive HTML). The
best trial's model is `raysweep.tracking.model`'s.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from raysweep.sweep.checkpoints import best_checkpoint, download, trial_checkpoints  # noqa: F401  (re-exported)
from raysweep.tracking.model import log_model  # noqa: F401  (re-exported: the sweep callback logs the best model through here)

log = logging.getLogger("raysweep.tracking")

CHECKPOINT_ARTIFACTS = "checkpoint"


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # no display on cluster nodes
    import matplotlib.pyplot as plt

    return plt


# The per-trial figures are drawn on the sweep driver as each trial ends, hundreds of times a
# sweep: a bare `Figure` (no pyplot figure manager to close), margins sized from the labels
# instead of `tight_layout` (a quarter of the drawing time), and light PNG compression (these
# are small flat-colour images: the default level costs more than it saves).
PNG = {"dpi": 100, "pil_kwargs": {"compress_level": 1}}
CHAR_IN = 0.075  # inches per character of a 10-pt tick label, for the margins


def _save(fig, path: Path) -> None:
    fig.savefig(path, **PNG)  # a bare Figure draws with Agg: no display needed on cluster nodes


def confusion_png(matrix: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    n = len(classes)
    longest = max((len(c) for c in classes), default=1)
    rotate = n > 10
    left = 0.45 + CHAR_IN * longest  # the y tick labels, then "true"
    bottom = 0.45 + (CHAR_IN * longest if rotate else 0.2)
    side = max(2.5, 0.5 * n)
    width, height = left + side + 0.3, bottom + side + 0.4
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((left / width, bottom / height, side / width, side / height))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=90 if rotate else 0)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 20:
        top = matrix.max() or 1
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if matrix[i, j] > top / 2 else "black", fontsize=8)
    _save(fig, path)


def curves_png(history: list[dict], metric: str, path: Path) -> None:
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 3.5))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.96, wspace=0.18)
    axes = fig.subplots(1, 2)
    for key in ("train/loss", "val/loss"):
        axes[0].plot(epochs, [h.get(key) for h in history], marker="o", label=key)
    for key in dict.fromkeys([metric, "val/accuracy", "val/macro_f1"]):
        if any(key in h for h in history):
            axes[1].plot(epochs, [h.get(key) for h in history], marker="o", label=key)
    for ax, corner in zip(axes, ("upper right", "lower right")):  # a fixed corner: "best" searches
        ax.set_xlabel("epoch")
        ax.legend(loc=corner)
    _save(fig, path)


def local_artifact_dir(artifact_uri: str) -> Optional[Path]:
    """The folder of a run's artifacts when MLflow keeps them on a local file system (a path or
    `file://` URI, as `Run.info.artifact_uri` gives it for a SQLite store's default root), else None."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(artifact_uri)
    if parts.scheme in ("", "file") and not parts.netloc:
        return Path(unquote(parts.path))
    return None


def log_checkpoint_files(client, run_id: str, checkpoint: Path) -> None:
    """The checkpoint's files as the run's `checkpoint/` artifacts, stored once: where the run's
    artifacts live on the checkpoint's file system, each file is hard-linked into MLflow's
    artifact folder (the layout of MLflow's `LocalArtifactRepository`, `<artifact_uri>/<path>`),
    not copied. Checkpoint files are never written again once a checkpoint is complete (a new
    epoch is a new folder; an old one is deleted whole), so the two names always hold the same
    bytes, and deleting the trial's checkpoints keeps the run's. Elsewhere (a tracking server's
    artifact store, another file system) MLflow uploads a copy."""
    import os

    root = local_artifact_dir(client.get_run(run_id).info.artifact_uri)
    if root is not None:
        dest = root / CHECKPOINT_ARTIFACTS
        try:
            for src in sorted(p for p in Path(checkpoint).rglob("*") if p.is_file()):
                target = dest / src.relative_to(checkpoint)
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    target.unlink()  # a retried call after a partial one
                os.link(src, target)
            return
        except OSError as e:  # another file system, or no hard links there
            log.debug("checkpoint artifacts copied, not linked: %s", e)
    client.log_artifacts(run_id, str(checkpoint), CHECKPOINT_ARTIFACTS)


def log_trial_artifacts(client, run_id: str, checkpoint: Optional[Path], metric: str, history: Optional[list[dict]] = None) -> None:
    """What a trial's (or `raysweep train`'s) run holds besides metrics: the checkpoint's files,
    its config as `config.yaml`, and the reports made from it, the learning curves from `history`
    when given. Without a checkpoint, the learning curves of `history` alone."""
    import json
    import tempfile

    import yaml

    from trainables.checkpoint_files import CONFIG_FILE

    with tempfile.TemporaryDirectory() as out:
        # laid out as the run holds them, then logged in one call (each call looks the run up)
        report = Path(out, "report")
        report.mkdir()
        if checkpoint is not None:
            log_checkpoint_files(client, run_id, checkpoint)
            config = json.loads((checkpoint / CONFIG_FILE).read_text())
            Path(out, "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            trial_report_files(checkpoint, metric, report, history=history or None)
        elif history:
            curves_png(history, metric, report / "learning_curves.png")
        else:
            return
        client.log_artifacts(run_id, out)


def trial_report_files(checkpoint: Path, metric: str, out: Path, history: Optional[list[dict]] = None) -> list[Path]:
    """Confusion matrices, per-class reports and learning curves from one checkpoint.

    The curves are drawn from `history` when given (the trial's whole judged history),
    else from the checkpoint's own, which ends at the checkpoint's epoch."""
    from trainables.checkpoint import load_state
    from trainables.checkpoint_files import PREDICTIONS_FILE
    from trainables.metrics import confusion, per_class_report

    files = []
    preds = np.load(checkpoint / PREDICTIONS_FILE)
    classes = [str(c) for c in preds["classes"]]
    task = str(preds["task"])
    folds = sorted(int(k.split("_")[1]) for k in preds.files if k.startswith("scores_"))
    for k in folds:
        suffix = f"_fold{k}" if len(folds) > 1 else ""
        targets, scores = preds[f"targets_{k}"], preds[f"scores_{k}"]
        rows = per_class_report(task, targets, scores, classes)
        csv_path = out / f"per_class_report{suffix}.csv"
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        csv_path.write_text(buf.getvalue())
        files.append(csv_path)
        matrix = confusion(task, targets, scores, len(classes))
        if task != "multilabel":
            png = out / f"confusion_matrix{suffix}.png"
            confusion_png(matrix, classes, png, f"validation confusion matrix{suffix.replace('_', ' ')}")
            files.append(png)
    if history is None:
        history = load_state(checkpoint).get("history")
    if history:
        png = out / "learning_curves.png"
        curves_png(history, metric, png)
        files.append(png)
    return files


def search_plots(study, out: Path) -> list[Path]:
    """Optuna's views of the search, as PNG (matplotlib) and interactive HTML (plotly). The
    intermediate values show every trial epoch by epoch, the ones stopped early included (the
    optimization history shows only the trials that trained every epoch). A study of several
    objectives gets its Pareto front plot instead."""
    import optuna

    plots = {
        "optimization_history": ("plot_optimization_history", 1),
        "intermediate_values": ("plot_intermediate_values", 1),
        "param_importances": ("plot_param_importances", 2),
        "parallel_coordinate": ("plot_parallel_coordinate", 1),
    }
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    judged = [t for t in study.trials if t.state in done]
    files = []
    if len(study.directions) > 1:
        # several objectives: the Pareto front (the per-objective views need a target each);
        # its COMPLETE trials' values are the last epoch's, as `raysweep report` marks the front
        plots = {"pareto_front": ("plot_pareto_front", 1)}
        judged = complete
    for name, (fn, needed) in plots.items():
        pool = complete if name == "param_importances" else judged
        # with no searched value that differs between trials, these plots have nothing to show
        if len(pool) < needed or (name in ("param_importances", "parallel_coordinate") and not _varied_params(pool)):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = getattr(optuna.visualization, fn)(study)
                html = out / f"{name}.html"
                fig.write_html(str(html), include_plotlyjs="cdn")
                files.append(html)
                ax = getattr(optuna.visualization.matplotlib, fn)(study)
                png = out / f"{name}.png"
                ax.figure.set_size_inches(9, 5)
                ax.figure.tight_layout()
                ax.figure.savefig(png, **PNG)
                _figure().close(ax.figure)
                files.append(png)
        except Exception as e:  # a plot the study cannot support (e.g. one distinct value) is skipped
            log.info("search plot %s skipped: %s", name, e)
    return files


def _varied_params(trials) -> bool:
    params = {}
    for t in trials:
        for k, v in t.params.items():
            params.setdefault(k, set()).add(repr(v))
    return any(len(v) > 1 for v in params.values())
