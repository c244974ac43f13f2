"""The sweep's best model as an MLflow model: raw pixels in, class probabilities out.

`log_model` logs a trial checkpoint's `trainables.deploy.DeployedClassifier` (the
network with its preprocessing inside) on the trial's run with `mlflow.pytorch`,
as a pickled eager module, with a signature whose batch dimension is -1, a few raw
validation samples as its input example, pinned requirements and raysweep's own
code, so that it loads where raysweep is not installed:

    model = mlflow.pytorch.load_model(uri).eval()       # or mlflow.pyfunc.load_model(uri).predict(array)
    with torch.no_grad():
        probs = model(raw)                              # (N, C, H, W) float32 pixels as the data stores them
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

log = logging.getLogger("raysweep.tracking")

MODEL_ARTIFACTS = "model"
# What unpickling a logged model imports besides the code it carries (`code_paths`):
# torch and timm (torchvision with it), and the pydantic schema and YAML loading that
# `trainables.models` imports through `raysweep.config`.
MODEL_REQUIREMENTS = ("torch", "torchvision", "timm", "numpy", "pydantic", "PyYAML")


def model_requirements() -> list[str]:
    """`MODEL_REQUIREMENTS` pinned to the versions installed here (less local labels such as +cpu)."""
    from importlib.metadata import version

    return [f"{name}=={version(name).split('+')[0]}" for name in MODEL_REQUIREMENTS]


def model_code() -> list[str]:
    """raysweep's packages, copied into the model: its classes (the wrapper, the classifier,
    raysweep's own backbones) unpickle where raysweep is not installed, at the version trained."""
    import raysweep.registry
    import trainables.deploy

    # the packages' directories as imported (trainables is a namespace package: no __file__)
    return [str(Path(module.__file__).parent) for module in (raysweep.registry, trainables.deploy)]


def _example(checkpoint: Path, model) -> np.ndarray:
    """A few raw validation samples; zeros of the input's shape where the data cannot be read
    from this process (a driver away from the cluster's storage)."""
    from raysweep.errors import UserError
    from trainables.deploy import example_inputs

    try:
        return example_inputs(checkpoint)
    except (UserError, OSError) as e:
        log.warning("model input example: the data is not readable here (%s); logging zeros", e)
        return np.zeros((1, model.in_chans, *model.image_size), np.float32)


def _signature(model, example: np.ndarray, output: np.ndarray):
    """Tensors of any batch size (-1); of any height and width too where the model resizes."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import Schema, TensorSpec

    signature = infer_signature(example, output)
    if model.any_size:
        signature = ModelSignature(Schema([TensorSpec(np.dtype(np.float32), (-1, model.in_chans, -1, -1))]), signature.outputs)
    return signature


class _Without(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def log_model(client, run_id: str, checkpoint: Path, registered_name: Optional[str]) -> str:
    """Log the checkpoint's model on the trial's run `run_id` (and register it as
    `registered_name` when given); return its URI, `models:/<model id>`.

    The format is pickle on purpose. MLflow 3's default outside Databricks is "pt2":
    `torch.export` traces the model on the input example, and an example of one sample
    makes the batch size a constant of the graph (export specializes dimensions of size
    1), so what `load_model` gave back was a GraphModule that refused any other batch
    size, whatever the signature said, and refused `.eval()`."""
    import mlflow
    import torch

    from trainables.deploy import card, deployed_model

    model = deployed_model(checkpoint)
    example = _example(checkpoint, model)
    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    signature = _signature(model, example, output)
    status = client.get_run(run_id).info.status
    # the fluent API below logs to the global store; setting it also sets $MLFLOW_TRACKING_URI,
    # which every later process of this one inherits: put back exactly what was there (unset
    # when unset, or a later sweep here without `tracking.uri` would log to this store)
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(client.tracking_uri)
    # pickle is the format chosen here (see the docstring): MLflow's advice to prefer pt2 is noise
    quiet = _Without("Saving pytorch model by Pickle")
    logging.getLogger("mlflow.pytorch").addFilter(quiet)
    try:
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pytorch.log_model(
                model, name=MODEL_ARTIFACTS, serialization_format="pickle", signature=signature, input_example=example,
                code_paths=model_code(), pip_requirements=model_requirements(), metadata={"raysweep": card(model)},
                registered_model_name=registered_name,
            )
    finally:
        logging.getLogger("mlflow.pytorch").removeFilter(quiet)
        client.set_terminated(run_id, status)  # start_run re-opened the run; keep the trial's own status
        mlflow.set_tracking_uri(previous)
    return info.model_uri
