"""A sweep on a real multi-node Ray cluster on loopback: trials spread over the worker
nodes, and a lost node's trial moves to the other one and resumes from its checkpoint."""

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_config
from tests.fixtures.cli import RaysweepProcess, wait_for
from tests.fixtures.ray_nodes import ray_nodes  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

# Epochs take ~0.3 s here: 40 leave both nodes a trial part-way at once (worker-group starts
# are seconds apart), and leave the victim 10 epochs to go when its node is lost.
EPOCHS = 40


def progress(storage: Path, sweep: str) -> dict[str, dict]:
    """Per trial id, the meta of its latest Train checkpoint (epoch, node, history)."""
    out = {}
    for trial in (storage / sweep / "train").glob("*"):
        metas = [json.loads(m.read_text()) for m in trial.glob("checkpoint_*/meta.json")]
        if metas:
            out[trial.name] = max(metas, key=lambda m: m["epoch"])
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
            busy = {node_of.get(m["node"]): t for t, m in now.items() if 2 <= m["epoch"] <= EPOCHS - 10}
            return busy if {"node_1", "node_2"} <= set(busy) else None

        try:
            busy = wait_for(run.while_running(both_busy), 300, "a trial part-way on each worker node", every_s=0.2)
        except AssertionError as e:
            seen = {t: (m["epoch"], node_of.get(m["node"], m["node"])) for t, m in progress(storage, "multinode").items()}
            raise AssertionError(f"{e}; checkpoints (epoch, node): {seen}; output:\n{run.output()[-3000:]}") from None
        victim = busy["node_1"]
        cluster.kill_raylet(cluster.workers[0])  # node_1 is lost
        assert run.wait(900) == 0, run.output()[-3000:]
    finally:
        if run.proc.poll() is None:
            run.kill()

    final = progress(storage, "multinode")
    assert len(final) == 4 and all(m["epoch"] == EPOCHS for m in final.values()), {t: m["epoch"] for t, m in final.items()}
    # where each epoch was trained, carried from checkpoint to checkpoint (Tune's result.json is no
    # such record: Tune re-downloads it from storage when a trial restarts, dropping unsynced lines)
    trained = {t: [(e["epoch"], node_of.get(e["node"])) for e in m["trained"]] for t, m in final.items()}
    assert {"node_1", "node_2"} <= {node for record in trained.values() for _, node in record}  # trials ran on both
    moved = trained[victim]
    assert [e for e, _ in moved] == list(range(1, EPOCHS + 1)), moved  # each epoch once
    nodes = [node for _, node in moved]
    switch = nodes.index("node_2") if "node_2" in nodes else None
    # resumed from its checkpoint: the first epochs on the lost node, the rest on the other one
    assert switch is not None and switch >= 2, moved
    assert set(nodes[:switch]) == {"node_1"} and set(nodes[switch:]) == {"node_2"}, moved
    report = RaysweepProcess(["report", "multinode", "--storage", str(storage), "--json"], cwd=tmp_path, env=cluster.driver_env)
    assert report.wait(120) == 0
    trials = json.loads(report.output().strip().splitlines()[-1])["trials"]
    assert sorted(t["trial_id"] for t in trials) == sorted(final)  # each trial exactly once
    assert all(t["status"] == "TERMINATED" for t in trials)
