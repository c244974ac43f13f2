"""A sweep on a real multi-node Ray cluster on loopback: trials spread over the worker
nodes, and a lost node's trial moves to the other one and resumes from its checkpoint."""

import json
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_config
from tests.fixtures.cli import RaysweepProcess, wait_for
from tests.fixtures.ray_nodes import ray_nodes  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

EPOCHS = 10


def progress(storage: Path, sweep: str) -> dict[str, dict]:
    """Per trial id, the meta of its latest Train checkpoint (epoch, node, history)."""
    out = {}
    for trial in (storage / sweep / "train").glob("*"):
        metas = [json.loads(m.read_text()) for m in trial.glob("checkpoint_*/meta.json")]
        if metas:
            out[trial.name] = max(metas, key=lambda m: m["epoch"])
    return out


def results(storage: Path, sweep: str) -> dict[str, list[dict]]:
    """Per trial id, the results Tune has written (complete once the sweep is done)."""
    out = {}
    for f in (storage / sweep).glob("run_trial_*/result.json"):
        trial = f.parent.name.split("_")[2]
        out[trial] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def test_sweep_spreads_over_nodes_and_survives_losing_one(ray_nodes, tmp_path):
    cluster = ray_nodes(workers=2, worker_cpus=1)
    nodes = cluster.wait_for_nodes(alive=3)
    node_of = {n["node_id"]: name for n in nodes for name in ("node_1", "node_2") if name in n["resources"]}
    assert len(node_of) == 2

    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(tiny_config(
        name="multinode",
        data={"num_samples": 400},
        optimizer={"lr": {"grid": [0.03, 0.06, 0.1, 0.2]}},
        train={"epochs": EPOCHS, "batch_size": 16},
        resources={"workers": 1, "cpus_per_worker": 1, "max_failures": 3},
        search={"algorithm": "grid"},
    )))
    storage = tmp_path / "results"
    run = RaysweepProcess(["run", str(sweep_file), "--address", cluster.address, "--storage", str(storage)], cwd=tmp_path, env=cluster.driver_env)
    try:
        # wait until each worker node runs a trial that is part-way through
        def both_busy():
            now = progress(storage, "multinode")
            busy = {node_of.get(m["node"]): t for t, m in now.items() if 2 <= m["epoch"] < EPOCHS - 3}
            return busy if {"node_1", "node_2"} <= set(busy) else None

        busy = wait_for(both_busy, 300, "a trial part-way on each worker node")
        victim = busy["node_1"]
        cluster.kill_raylet(cluster.workers[0])  # node_1 is lost
        killed_at = time.time()
        assert run.wait(900) == 0, run.output()[-3000:]
    finally:
        if run.proc.poll() is None:
            run.kill()

    final = results(storage, "multinode")
    assert len(final) == 4
    placed = {node_of.get(line.get("_node")) for lines in final.values() for line in lines}
    assert {"node_1", "node_2"} <= placed  # trials ran on both worker nodes
    for trial, lines in final.items():
        assert lines[-1]["epoch"] == EPOCHS, (trial, [l["epoch"] for l in lines])
    moved = final[victim]
    after = [l for l in moved if l["timestamp"] >= killed_at and node_of.get(l.get("_node")) == "node_2"]
    before = [l["epoch"] for l in moved if node_of.get(l.get("_node")) == "node_1"]
    assert after, "the lost node's trial never ran on the other node"
    assert after[0]["epoch"] > 1 and after[0]["epoch"] <= max(before) + 1  # resumed from its checkpoint
    report = RaysweepProcess(["report", "multinode", "--storage", str(storage), "--json"], cwd=tmp_path, env=cluster.driver_env)
    assert report.wait(120) == 0
    trials = json.loads(report.output().strip().splitlines()[-1])["trials"]
    assert sorted(t["trial_id"] for t in trials) == sorted(final)  # each trial exactly once
    assert all(t["status"] == "TERMINATED" for t in trials)
