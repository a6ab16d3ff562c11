"""Learned generators in the MLflow model registry: an MLflow model (pyfunc) with a signature around the
saved phase source (state dict + config, loaded with ``weights_only=True``), and the ``champion`` alias
that a search sets on its best version and that the grid takes when no version is named."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from phaselab.tracking import Tracker, with_retries

CHAMPION = "champion"
CHECKPOINT = "checkpoint"  # the pyfunc artifact that holds the saved phase source


# Importing mlflow.pyfunc infers schemas of MLflow's own response types, and defining a PythonModel
# advises type hints on predict: warnings about MLflow's code, and the signature here is explicit.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
    warnings.filterwarnings(
        "ignore", message=".*Add type hints to the `predict` method", category=UserWarning
    )
    import mlflow.pyfunc

    class PhaseSourceModel(mlflow.pyfunc.PythonModel):
        """pyfunc: magnitudes (N, H, W) float32 -> phase (N, H, W) float32 in (-pi, pi]; slice i is drawn
        with seed i (pass ``params={"seed": s}`` to shift them)."""

        def load_context(self, context: Any) -> None:
            from phaselab.generators import load_phase_source

            self.source = load_phase_source(context.artifacts[CHECKPOINT])  # weights_only=True

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            import torch

            if isinstance(model_input, dict):  # the named tensor of the signature
                model_input = model_input["magnitude"]
            magnitude = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
            seed = int((params or {}).get("seed", 0))
            with torch.no_grad():
                phase = self.source.sample(magnitude, seed=list(range(seed, seed + magnitude.shape[0])))
            return phase.numpy().astype(np.float32)


def _signature(size: int | None) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

    shape = (-1, size or -1, size or -1)
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), shape, "magnitude")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), shape, "phase")]),
        params=ParamSchema([ParamSpec("seed", "long", 0)]),
    )


def register_generator(
    tracker: Tracker, run_id: str, checkpoint: str | Path, model_name: str, tags: dict[str, str] | None = None
) -> str:
    """Log the saved phase source as an MLflow model of ``run_id`` (artifact ``generator/``) and register
    it; returns the version."""
    from phaselab.generators import load_phase_source

    source = load_phase_source(checkpoint)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # no input example on purpose: MLflow would validate it by sampling (a diffusion model's full
        # sampler); the signature is explicit
        warnings.filterwarnings("ignore", message=".*An input example was not provided", category=UserWarning)
        folder = Path(tmp) / "generator"
        mlflow.pyfunc.save_model(
            str(folder),
            python_model=PhaseSourceModel(),
            artifacts={CHECKPOINT: str(checkpoint)},
            signature=_signature(getattr(source, "trained_size", None)),
            pip_requirements=["phaselab"],  # no dependency inference (it would import and sample)
            metadata={"phase_source": source.name, "config": source.config},
        )
        tracker.log_artifacts(run_id, folder, "generator")
    client = tracker.client
    try:
        with_retries(lambda: client.create_registered_model(model_name))
    except Exception as err:  # already registered
        if "RESOURCE_ALREADY_EXISTS" not in str(err) and "already exists" not in str(err):
            raise
    uri = f"{client.get_run(run_id).info.artifact_uri}/generator"
    version = with_retries(lambda: client.create_model_version(model_name, uri, run_id=run_id, tags=tags))
    return str(version.version)


def set_champion(tracker: Tracker, model_name: str, version: str) -> None:
    """The version the grid takes for ``generators.<name>.registered: <model>`` (no version given)."""
    with_retries(lambda: tracker.client.set_registered_model_alias(model_name, CHAMPION, version))


def download_registered_generator(
    tracker: Tracker, model_name: str, version: str | None = None, dst: str | Path | None = None
) -> Path:
    """The saved phase source of a registered version: the one named, else the ``champion``, else the
    newest."""
    client = tracker.client
    if version is None:
        try:
            version = str(client.get_model_version_by_alias(model_name, CHAMPION).version)
        except mlflow.exceptions.MlflowException:
            versions = client.search_model_versions(f"name = '{model_name}'")
            if not versions:
                raise ValueError(f"no registered versions of generator model {model_name!r}") from None
            version = str(max(int(v.version) for v in versions))
    model_version = client.get_model_version(model_name, version)
    dst = Path(dst or tempfile.mkdtemp(prefix="phaselab-generator-"))
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=model_version.source, dst_path=str(dst), tracking_uri=tracker.uri
    )
    files = sorted(Path(local).rglob("*.pt"))
    if not files:
        raise ValueError(f"registered generator {model_name} v{version} holds no .pt checkpoint")
    return files[0]
