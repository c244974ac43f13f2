"""Print a sweep's trials, best first: id, status, searched parameters, best
metric and its epoch, epochs done, checkpoint and MLflow run. Works on a sweep
that is still running or was killed. Writes the leaderboard CSV into the
sweep's directory; with --json the last line is one JSON object
{"trials": [...], "best": {...}}."""

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


def _table(rows, metric: str) -> str:
    from raysweep.tables import table

    dims = sorted({k for r in rows for k in r.params})
    body = [[r.trial_id, r.status, *(r.params.get(d) for d in dims), r.metric, r.best_epoch, r.epochs_done, r.mlflow_run_id] for r in rows]
    return table(["trial", "status", *dims, metric, "best epoch", "epochs", "mlflow run"], body)


def report(layout, *, as_json: bool = False) -> int:
    from raysweep.sweep.results import LEADERBOARD_FILE, leaderboard_csv, read_trials

    rows, metric, mode = read_trials(layout)
    layout.write_text(LEADERBOARD_FILE, leaderboard_csv(rows))
    print(f"sweep {layout.sweep_id} ({layout.uri}): {len(rows)} trial(s), best {metric} ({mode}) first")
    print(_table(rows, metric))
    payload = {"trials": [r.as_dict() for r in rows], "best": rows[0].as_dict() if rows and rows[0].metric is not None else None}
    if any("data.fold" in r.params for r in rows):
        payload["folds"] = fold_groups(rows)
        for g in payload["folds"]:
            print(f"  {g['params']}: {metric} {g['mean']:.4f} ± {g['std']:.4f} over {g['folds_done']} fold(s)" if g["mean"] is not None else f"  {g['params']}: no results yet")
    print(f"leaderboard: {layout.path(LEADERBOARD_FILE)}")
    if as_json:
        print(json.dumps(payload, default=str))
    return 0


def print_summary(layout) -> int:
    return report(layout)


def main(args: argparse.Namespace) -> int:
    from raysweep.commands import find_sweep

    return report(find_sweep(args.sweep, args.storage), as_json=args.json)
