"""Print a sweep's trials, best first: id, status, searched parameters, best
metric and its epoch, epochs done, checkpoint and MLflow run, and where the data
has a held-out test split, the best trial's figures on it. With several
objectives (`search.metric: [a, b]`) the trials on the Pareto front are marked
(`front` column; each trial's `pareto` and `objectives` in --json). Works on a sweep
that is still running or was killed. Writes the leaderboard CSV into the
sweep's directory; with --json the last line is one JSON object
{"trials": [...], "best": {...}, "test": {...} or null, "pareto_front": [ids] (several objectives)}."""

from __future__ import annotations

import argparse
import json
import statistics

HELP = "show a sweep's trials, best first"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep id under --storage, or the sweep's directory / URI")
    p.add_argument("--storage", default="raysweep_results", help="results root (default: ./raysweep_results)")
    p.add_argument("--json", action="store_true", help="end with one JSON object of all trials")


def fold_groups(rows) -> list[dict]:
    """Under fold_as_trial: trials grouped by configuration, with the folds' mean and spread."""
    groups: dict[str, dict] = {}
    for r in rows:
        params = {k: v for k, v in r.params.items() if k != "data.fold"}
        key = json.dumps(params, sort_keys=True, default=str)
        g = groups.setdefault(key, {"params": params, "folds": [], "metrics": []})
        g["folds"].append(r.params.get("data.fold"))
        if r.metric is not None:
            g["metrics"].append(r.metric)
    out = []
    for g in groups.values():
        m = g.pop("metrics")
        g["mean"] = statistics.fmean(m) if m else None
        g["std"] = statistics.pstdev(m) if len(m) > 1 else (0.0 if m else None)
        g["folds_done"] = len(m)
        out.append(g)
    return sorted(out, key=lambda g: -(g["mean"] or float("-inf")))


RUN_ID_CHARS = 8  # the table shows the MLflow run id's start; the CSV and --json hold it whole


def _table(rows, metric: str) -> str:
    """The trials within 100 columns: parameters by their short names, only those that differ
    between trials; the MLflow run id shortened. Too wide, the run id goes first, then the epochs
    trained (the status says them for a finished or stopped trial), the best epoch, then
    parameters from the right."""
    from raysweep.sweep.progress import metric_header, param_cell, varying
    from raysweep.tables import WIDTH, clip, fit_table, fmt, short_names

    dims = varying(list(dict.fromkeys(k for r in rows for k in r.params)), [r.params for r in rows])  # the sweep file's order
    names = short_names(dims)
    header = ["trial", "status", *(names[d] for d in dims), metric_header(metric), "best at", "epochs", "mlflow run"]
    body = [
        [r.trial_id, r.outcome or r.status, *(param_cell(r.params.get(d)) for d in dims), fmt(r.metric),
         fmt(r.best_epoch), fmt(r.epochs_done), (r.mlflow_run_id or "-")[:RUN_ID_CHARS]]
        for r in rows
    ]
    if any(r.pareto is not None for r in rows):  # several objectives: mark the Pareto front
        at = 3 + len(dims)  # after the metric: the columns dropped for width stay the last three
        header.insert(at, "front")
        for r, line in zip(rows, body):
            line.insert(at, "*" if r.pareto else "")
    params = range(2, 2 + len(dims))
    text, dropped = fit_table(header, body, WIDTH, shrinkable=params, drop=[len(header) - 1, len(header) - 2, len(header) - 3, *params[::-1]])
    if not dropped:
        return text
    lost = [header[i] for i in dropped if i not in params]
    if len(dropped) > len(lost):
        lost.append(f"{len(dropped) - len(lost)} parameter(s)")
    return text + "\n" + clip(f"(left out for width: {', '.join(lost)}; the leaderboard has every column)", WIDTH)


def _pareto_line(rows) -> str:
    """The Pareto front's trials, each with its objectives at its last epoch."""
    from raysweep.tables import WIDTH, clip, fmt

    front = [r for r in rows if r.pareto]
    if not front:
        return "pareto front: no trial has finished yet"
    shown = "; ".join(f"{r.trial_id} (" + ", ".join(f"{m} {fmt(v)}" for m, v in r.objectives.items()) + ")" for r in front)
    return clip(f"pareto front (* in the table, finished trials only): {shown}", WIDTH * 3)


def _fold_line(g: dict, metric: str) -> str:
    from raysweep.tables import WIDTH, clip, fmt, short_names

    names = short_names(list(g["params"]))
    params = ", ".join(f"{names[k]}={fmt(v, digits=3)}" for k, v in g["params"].items())
    if g["mean"] is None:
        return clip(f"  {params}: no results yet", WIDTH)
    return clip(f"  {params}: {metric} {g['mean']:.4f} ± {g['std']:.4f} over {g['folds_done']} fold(s)", WIDTH)


def _test_line(test: dict, metric: str) -> str:
    """The held-out test split's figures for the best trial (selected on `metric`)."""
    from raysweep.sweep.results import test_metric_name
    from raysweep.tables import WIDTH, clip

    if "error" in test:
        return clip(f"test split: not evaluated: {test['error']}", WIDTH)
    shown = [k for k in dict.fromkeys([test_metric_name(metric), "accuracy", "macro_f1", "loss"]) if k in test["metrics"]]
    figures = ", ".join(f"{k} {test['metrics'][k]:.4f}" for k in shown)
    return clip(f"test split ({test['split']}, {test['samples']} samples, never used for selection): best trial {test['trial_id']} (by {metric}): {figures}", WIDTH * 2)


def report(layout, *, as_json: bool = False, footer: bool = True) -> int:
    from raysweep.sweep.results import LEADERBOARD_FILE, leaderboard_csv, read_test_result, read_trials
    from raysweep.terminal import shown_path

    rows, metric, mode = read_trials(layout)
    layout.write_text(LEADERBOARD_FILE, leaderboard_csv(rows))
    print(f"sweep {layout.sweep_id} ({shown_path(layout.uri)}): {len(rows)} trial(s), best {metric} ({mode}) first")
    print(_table(rows, metric))
    test = read_test_result(layout)
    if test is not None:
        print(_test_line(test, metric))
    payload = {"trials": [r.as_dict() for r in rows], "best": rows[0].as_dict() if rows and rows[0].metric is not None else None, "test": test}
    if any(r.pareto is not None for r in rows):
        payload["pareto_front"] = [r.trial_id for r in rows if r.pareto]
        print(_pareto_line(rows))
    if any("data.fold" in r.params for r in rows):
        payload["folds"] = fold_groups(rows)
        for g in payload["folds"]:
            print(_fold_line(g, metric))
    if footer:
        print(f"leaderboard: {shown_path(layout.path(LEADERBOARD_FILE))}")
    if as_json:
        print(json.dumps(payload, default=str))
    return 0


def next_steps(layout) -> list[str]:
    """Where to look after a run: the MLflow UI, the leaderboard, the logs."""
    from raysweep.sweep.results import LEADERBOARD_FILE
    from raysweep.terminal import shown_path

    uri = layout.manifest().get("mlflow_uri")
    pairs = [_ui_hint(uri)] if uri else []
    pairs += [
        (shown_path(layout.path(LEADERBOARD_FILE)), "every trial, as CSV"),
        (shown_path(layout.log_dir) + "/", "what Ray, Tune and the trials printed"),
    ]
    width = max(len(what) for what, _ in pairs)
    return ["next:", *(f"  {what.ljust(width)}   {why}".rstrip() for what, why in pairs)]


def _ui_hint(uri: str) -> tuple[str, str]:
    """The command that opens the sweep's MLflow store (a server's UI is at its own address)."""
    from raysweep.config.schema import SweepConfig
    from raysweep.terminal import shown_uri
    from raysweep.tracking.store import redact_uri, tracking_uri

    if uri.startswith(("http://", "https://")):
        return redact_uri(uri), "the MLflow runs"
    if uri == tracking_uri(SweepConfig(name="ui")):  # what `raysweep ui` opens from here
        return "raysweep ui", "the MLflow runs, on http://127.0.0.1:5000"
    return f"MLFLOW_TRACKING_URI={shown_uri(redact_uri(uri))} raysweep ui", "the MLflow runs"


def print_summary(layout) -> int:
    """The leaderboard and where to look next: what `raysweep run` and `resume` end with."""
    code = report(layout, footer=False)
    print("\n" + "\n".join(next_steps(layout)))
    return code


def main(args: argparse.Namespace) -> int:
    from raysweep.commands import find_sweep

    return report(find_sweep(args.sweep, args.storage), as_json=args.json)
