"""The best model as MLflow logs it: a plain PyTorch module that takes raw pixels.

A tiny CNN is trained on the digits in this process and its checkpoint logged
with `log_model` to a SQLite store; a fresh Python, where raysweep is not
importable, loads it with `mlflow.pytorch` and with `mlflow.pyfunc` and scores
the whole validation split, from scikit-learn's raw 0..16 pixels in one batch:
the macro F1 is the one the trainer recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, tiny_config
from tests.tracking.trained import train_here

NAME = "digits-best"

# Runs in a fresh interpreter: argv = tracking URI, model URI, registered model URI, splits.npz.
LOAD = textwrap.dedent(
    """
    import importlib.util, json, sys
    # raysweep is installed here in editable mode; hide it so the model must bring its own code
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    sys.path[:] = [p for p in sys.path if not p.startswith("__editable__")]
    sys.path_importer_cache.clear()
    assert importlib.util.find_spec("raysweep") is None and importlib.util.find_spec("trainables") is None

    import mlflow, numpy as np, torch
    from sklearn.datasets import load_digits
    from sklearn.metrics import f1_score

    tracking, model_uri, registered_uri, splits = sys.argv[1:]
    mlflow.set_tracking_uri(tracking)
    digits = load_digits()
    val = np.flatnonzero(np.load(splits)["assignment"][0] == 1)
    raw = digits.images[val][:, None].astype(np.float32)  # (N, 1, 8, 8), pixels 0..16 as stored
    truth = digits.target[val]

    model = mlflow.pytorch.load_model(model_uri)
    assert model.eval() is model
    with torch.no_grad():
        probs = model(torch.from_numpy(raw)).numpy()
        one = model(torch.from_numpy(raw[:1])).numpy()
    pyfunc = mlflow.pyfunc.load_model(model_uri).predict(raw)
    registered = mlflow.pyfunc.load_model(registered_uri).predict(raw[:5])
    print(json.dumps({
        "type": type(model).__name__,
        "code": sys.modules["trainables.deploy"].__file__,
        "n": len(val),
        "f1_pytorch": f1_score(truth, probs.argmax(1), average="macro"),
        "f1_pyfunc": f1_score(truth, pyfunc.argmax(1), average="macro"),
        "row_sums": [float(probs.sum(1).min()), float(probs.sum(1).max())],
        "batch_of_one": float(np.abs(one - probs[:1]).max()),
        "pyfunc_vs_pytorch": float(np.abs(pyfunc - probs).max()),
        "registered_vs_pytorch": float(np.abs(registered - probs[:5]).max()),
    }))
    """
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The best epoch's checkpoint of a tiny CNN trained on the digits."""
    sweep = tiny_config(data={"kind": "digits"}, model={"kwargs": {"widths": [16, 32]}}, train={"epochs": 5, "batch_size": 32})
    session = train_here(sweep, tmp_path_factory.mktemp("digits"))
    return max(session.checkpoints, key=lambda d: json.loads((d / "meta.json").read_text())["metrics"]["val/macro_f1"])


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A SQLite store; no global one is set (the test sets it after logging, to read back)."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    yield f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(None)


def test_the_logged_model_scores_raw_pixels_as_the_trainer_did_in_a_fresh_process(checkpoint, tracking, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from raysweep.tracking.artifacts import log_model

    recorded = json.loads((checkpoint / "meta.json").read_text())["metrics"]["val/macro_f1"]
    assert recorded > 0.8  # a model worth checking: chance is 0.1
    client = MlflowClient(tracking)
    experiment = client.create_experiment("digits", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment).info.run_id
    client.set_terminated(run, "KILLED")  # a trial Tune stopped keeps its status

    model_uri = log_model(client, run, checkpoint, NAME)
    # logging used MLflow's global store, and leaves it as it was: unset, in this process and in
    # what it starts next (a later sweep here would otherwise log to this store)
    assert not mlflow.is_tracking_uri_set() and "MLFLOW_TRACKING_URI" not in os.environ
    mlflow.set_tracking_uri(tracking)  # the fluent readers below resolve models:/ URIs with it

    assert model_uri.startswith("models:/")
    assert client.get_run(run).info.status == "KILLED"
    logged = client.get_logged_model(model_uri.removeprefix("models:/"))
    assert logged.source_run_id == run
    [version] = client.search_model_versions(f"name = '{NAME}'")
    assert (version.source, version.run_id) == (model_uri, run)
    info = mlflow.models.get_model_info(model_uri)
    [spec] = info.signature.inputs.inputs
    assert spec.shape == (-1, 1, 8, 8) and str(spec.type) == "float32"
    assert info.signature.outputs.inputs[0].shape == (-1, 10)
    assert info.metadata["raysweep"]["pixel_max"] == 16.0
    assert info.flavors["pytorch"]["code"] == "code"
    requirements = Path(mlflow.pyfunc.get_model_dependencies(model_uri)).read_text()
    assert {"torch==", "timm==", "pydantic=="} <= {line.split("==")[0] + "==" for line in requirements.split()}
    local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "model")))
    example = mlflow.models.Model.load(str(local)).load_input_example(str(local))
    assert example.shape[1:] == (1, 8, 8) and example.max() == 16  # raw pixels, as the digits store them
    assert (local / "code" / "raysweep" / "registry.py").exists() and (local / "code" / "trainables" / "deploy.py").exists()

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    args = [tracking, model_uri, f"models:/{NAME}/{version.version}", str(checkpoint / "splits.npz")]
    done = subprocess.run([sys.executable, "-c", LOAD, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["type"] == "DeployedClassifier"  # the eager module, not a torch.export graph
    assert out["code"].endswith("/code/trainables/deploy.py") and not out["code"].startswith(str(REPO))  # the code it carries
    assert out["n"] > 300  # the whole validation split, in one batch
    assert out["f1_pytorch"] == pytest.approx(recorded, abs=1e-6)
    assert out["f1_pyfunc"] == pytest.approx(recorded, abs=1e-6)
    assert out["row_sums"] == pytest.approx([1.0, 1.0], abs=1e-5)  # probabilities
    assert out["batch_of_one"] < 1e-5
    assert out["pyfunc_vs_pytorch"] == 0.0 and out["registered_vs_pytorch"] == 0.0
