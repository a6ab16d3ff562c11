"""One cell of the recon grid: train a reconstruction model (``recon.model``: the VarNet or PhaseGen's complex
U-Net) on one phase source's k-space, test on real k-space, log it.

``run_trial`` knows nothing of Tune: it is called in-process by tests, by the Tune function trainable
(``tune_trial``) and, for multi-GPU trials, by every Ray Train worker (only rank 0 tracks and saves).
Its state lives in ``trial_dir``: ``checkpoint.pt`` (latest, with the MLflow run id) lets a killed trial
continue where it was, ``result.json`` marks it finished.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from phaselab.data.batching import epochs_to_steps
from phaselab.data.fastmri_io import read_volume
from phaselab.data.prepare import count_slices
from phaselab.mri.masks import Mask, volume_mask
from phaselab.orchestration.trial_mlflow import column_tags, describe_trial, log_reconstructions, short_name
from phaselab.recon.data import KspaceSlices
from phaselab.recon.evaluate import evaluate_reconstruction
from phaselab.recon.models import build_model_config
from phaselab.recon.train import TrainConfig, train_varnet


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """Everything a trial needs, as plain data (it travels to Ray workers)."""

    cell: dict[str, Any]  # source, acceleration, num_acs, seed
    trial_key: str
    trial_dir: str
    train_shards: list[str]
    val_shards: list[str]
    test_files: list[str]
    varnet: dict[str, Any]
    train: dict[str, Any]
    tracking_uri: str
    experiment: str
    parent_run_id: str
    resolved_config: str  # YAML of the sweep, logged as an artifact of every run
    torch_threads: int = 1
    run_name: str | None = None  # MLflow run name; default: the cell's name
    mask: str = "equispaced"  # grid.mask: equispaced (cell num_acs) or a fraction mask (center_fraction)
    length_shards: list[str] | None = None  # whose slices make an epoch (None: train_shards)
    model: str = "varnet"  # recon.model: the network trained, with the settings of its own section
    complex_unet: dict[str, Any] = dataclasses.field(default_factory=dict)


def model_settings(spec: TrialSpec) -> dict[str, Any]:
    """The keywords of the trial's model: its ``varnet`` or ``complex_unet`` section."""
    return spec.varnet if spec.model == "varnet" else spec.complex_unet


def cell_name(cell: dict[str, Any]) -> str:
    name = f"{cell['source']}-R{cell['acceleration']}-acs{cell['num_acs']}-s{cell['seed']}"
    if "real_fraction" in cell:
        kind = "realonly" if cell.get("real_only") else "real"
        name += f"-{kind}{cell['real_fraction']:g}"
    if "model" in cell:
        name += f"-{cell['model']}"
    return name


def fixed_test_mask(spec: TrialSpec, width: int, volume_name: str) -> Mask:
    """A test volume's fixed mask, seeded by its file name as fastMRI's validation does: the same for
    every source and seed, and not one offset for every volume."""
    cell = spec.cell
    if spec.mask == "equispaced":
        return volume_mask(spec.mask, width, cell["acceleration"], volume_name, num_acs=cell["num_acs"])
    fraction = cell["center_fraction"]
    return volume_mask(spec.mask, width, cell["acceleration"], volume_name, center_fraction=fraction)


@functools.lru_cache(maxsize=16)
def _load_slices(paths: tuple[str, ...]) -> KspaceSlices:
    """Stack the slices of fastMRI files; cached so reused Tune actors load each dataset once."""
    kspace, target, volume = [], [], []
    for index, path in enumerate(paths):
        vol = read_volume(path, load_target=True, load_extras=False)
        kspace.append(torch.from_numpy(vol.kspace))
        target.append(torch.from_numpy(vol.target).float())
        volume.append(torch.full((vol.kspace.shape[0],), index, dtype=torch.int64))
    return KspaceSlices(torch.cat(kspace), torch.cat(target), torch.cat(volume))


def _test_volumes(paths: list[str]) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    slices = _load_slices(tuple(paths))
    return [
        (Path(p).stem, slices.kspace[slices.volume == i], slices.target[slices.volume == i])
        for i, p in enumerate(paths)
    ]


def _atomic_save(payload: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _atomic_json(payload: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=float))
    os.replace(tmp, path)


def read_result(trial_dir: str | Path) -> dict[str, Any] | None:
    path = Path(trial_dir) / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def _is_rank_zero() -> bool:
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def _where() -> dict[str, str]:
    """The host (and Ray node) running this trial, recorded so a multi-node sweep shows where it ran."""
    where = {"hostname": socket.gethostname()}
    ray = sys.modules.get("ray")  # imported in Ray workers; an in-process trial has no node
    if ray is not None and ray.is_initialized():
        where["node_id"] = ray.get_runtime_context().get_node_id()
    return where


def run_trial(
    spec: TrialSpec, tune_report: Callable[[dict[str, float]], None] | None = None
) -> dict[str, Any]:
    """Train, test and log one grid cell; resumes from ``checkpoint.pt`` and skips a finished trial.

    A trial that raises leaves its MLflow run FAILED (KILLED on Ctrl-C) with the error as a tag; a
    retry resumes the same run from the checkpoint. Tune stopping it (SystemExit) leaves it to the caller.
    """
    opened: dict[str, Any] = {}
    try:
        return _run_trial(spec, tune_report, opened)
    except SystemExit:
        raise
    except BaseException as err:
        if opened:
            opened["tracker"].mark_failed(opened["run_id"], err)
        raise


def _run_trial(
    spec: TrialSpec, tune_report: Callable[[dict[str, float]], None] | None, opened: dict[str, Any]
) -> dict[str, Any]:
    from phaselab.tracking import Tracker

    trial_dir = Path(spec.trial_dir)
    finished = read_result(trial_dir)
    if finished is not None:
        return finished
    torch.set_num_threads(spec.torch_threads)
    rank_zero = _is_rank_zero()
    trial_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = trial_dir / "checkpoint.pt"
    saved = torch.load(ckpt_path, map_location="cpu", weights_only=True) if ckpt_path.exists() else None

    tracker = run_id = None
    last_step = -1
    where = _where()
    if rank_zero:
        tracker = Tracker(spec.tracking_uri, spec.experiment)
        if saved is not None:
            run_id = saved["run_id"]
            tracker.reopen_run(run_id)  # a retried trial's run was marked FAILED
            last_step = tracker.last_logged_step(run_id)
        else:  # a run left by an attempt that died before its first checkpoint holds nothing to keep
            stale = tracker.find_runs(
                {"mlflow.parentRunId": spec.parent_run_id, "phaselab.trial_key": spec.trial_key}
            )
            for run in stale:
                tracker.delete_run(run.info.run_id)
            tags = {**{f"phaselab.{k}": v for k, v in spec.cell.items()}, **column_tags(spec.cell)}
            name = spec.run_name or short_name(spec.cell)
            run_id = tracker.start_child(spec.parent_run_id, spec.trial_key, name, tags)
            describe_trial(tracker, run_id, spec)
        opened.update(tracker=tracker, run_id=run_id)
        tracker.set_tags(run_id, {f"phaselab.{k}": v for k, v in where.items()})
        tracker.log_params(
            run_id,
            {
                **{f"cell.{k}": v for k, v in spec.cell.items()},
                **column_tags(spec.cell),
                "recon.model": spec.model,
                **{f"{spec.model}.{k}": v for k, v in model_settings(spec).items()},
                **{f"train.{k}": v for k, v in spec.train.items()},
                "num_train_volumes": len(spec.train_shards),
                "num_test_volumes": len(spec.test_files),
            },
        )
        if saved is None:
            tracker.log_text(run_id, spec.resolved_config, "config.yaml")

    cell = spec.cell
    model_cfg = build_model_config(spec.model, model_settings(spec))
    train_data = _load_slices(tuple(spec.train_shards))
    val_data = _load_slices(tuple(spec.val_shards)) if spec.val_shards else None
    epoch_slices = count_slices(spec.length_shards) if spec.length_shards else train_data.num_slices
    train_cfg = TrainConfig(
        **training_lengths(spec.train, epoch_slices),
        acceleration=cell["acceleration"],
        num_acs=cell["num_acs"],
        seed=cell["seed"],
        mask=spec.mask,
        center_fraction=cell.get("center_fraction"),
    )

    def report(metrics: dict[str, float], checkpoint: dict[str, Any] | None) -> None:
        step = int(checkpoint["step"]) if checkpoint else int(metrics.get("step", 0))
        if rank_zero and checkpoint is not None:
            # Log before saving: a trial killed in between repeats this step from the older checkpoint
            # and skips logging it again; the other order would lose the step's metrics for good.
            if step > last_step:
                tracker.log_metrics(run_id, {k: v for k, v in metrics.items() if k != "step"}, step)
            _atomic_save({"run_id": run_id, "train": checkpoint}, ckpt_path)
        if tune_report is not None:
            tune_report({**metrics, "step": step})

    start = time.perf_counter()
    result = train_varnet(
        train_data, val_data, model_cfg, train_cfg, report=report, resume=saved["train"] if saved else None
    )
    train_seconds = time.perf_counter() - start
    if not rank_zero:
        return {}

    summary: dict[str, float] = {"train_seconds": train_seconds}
    if spec.test_files:  # hyperparameter searches select on recVal and never look at recTest
        model = result.model
        model.load_state_dict(result.best_state)
        width = train_data.kspace.shape[-1]
        volumes = _test_volumes(spec.test_files)
        masks = [fixed_test_mask(spec, width, Path(path).name) for path in spec.test_files]
        device = next(model.parameters()).device
        evaluation = evaluate_reconstruction(model, volumes, masks, device=device)
        summary.update({f"test_{k}": float(v) for k, v in evaluation.summary.items()})
        summary["effective_acceleration"] = evaluation.effective_acceleration
        tracker.log_table(run_id, evaluation.volumes, "test_per_volume.json")
        log_reconstructions(tracker, run_id, model, volumes, masks, device)
    tracker.log_summary(run_id, summary)  # step 0, one value per run: the UI charts them as bars
    best = trial_dir / "best_model.pt"
    weights = {"state_dict": result.best_state, "model": spec.model, spec.model: model_settings(spec)}
    _atomic_save({**weights, "cell": cell}, best)
    tracker.log_artifact(run_id, best, "checkpoints")

    record = {
        "cell": cell,
        "trial_key": spec.trial_key,
        "run_id": run_id,
        **where,
        **summary,
        "best_val_ssim": result.best_val_ssim,
    }
    _atomic_json(record, trial_dir / "result.json")
    tracker.end_run(run_id, "FINISHED")
    ckpt_path.unlink(missing_ok=True)
    return record


def training_lengths(train: dict[str, Any], num_slices: int) -> dict[str, Any]:
    """The sweep's train section with ``epochs`` / ``eval_every_epochs`` turned into steps of this trial's
    training set (the VarNet trains on recTrain: a preset in epochs means the same at any scale)."""
    train = dict(train)
    epochs, eval_epochs = train.pop("epochs", None), train.pop("eval_every_epochs", None)
    if epochs is not None:
        train["steps"] = epochs_to_steps(epochs, num_slices, train["batch_size"])
    if eval_epochs is not None:
        train["eval_every"] = epochs_to_steps(eval_epochs, num_slices, train["batch_size"])
    return train


def save_spec(spec: TrialSpec) -> Path:
    """Write the spec next to the trial's state; Tune's grid then carries only its path."""
    path = Path(spec.trial_dir) / "spec.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_json(dataclasses.asdict(spec), path)
    return path


def load_spec(path: str | Path) -> TrialSpec:
    return TrialSpec(**json.loads(Path(path).read_text()))


def _numeric(record: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if isinstance(v, float | int) and not isinstance(v, bool)}


def tune_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable for a single-device trial: ``config["cell"]["spec_path"]``."""
    from ray import tune

    record = run_trial(load_spec(config["cell"]["spec_path"]), tune_report=tune.report)
    tune.report({"trial_done": 1.0, **_numeric(record)})


def _train_worker_loop(config: dict[str, Any]) -> None:
    """Ray Train worker: every rank runs the same trial; ranks > 0 only train (DDP) and report."""
    import ray.train

    run_trial(load_spec(config["spec_path"]), tune_report=ray.train.report)


def tune_trial_distributed(config: dict[str, Any]) -> None:
    """Tune trainable for a multi-GPU trial: it launches a Ray Train TorchTrainer (DDP) and waits."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    cell = config["cell"]
    spec = load_spec(cell["spec_path"])
    use_gpu = bool(cell["gpus_per_worker"])
    trainer = TorchTrainer(
        _train_worker_loop,
        train_loop_config={"spec_path": cell["spec_path"]},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=cell["workers"],
            use_gpu=use_gpu,
            resources_per_worker={
                **cell.get("custom_per_worker", {}),
                "CPU": cell["cpus_per_worker"],
                **({"GPU": cell["gpus_per_worker"]} if use_gpu else {}),
            },
        ),
        run_config=ray.train.RunConfig(
            name=f"train-{spec.trial_key}",
            storage_path=cell["storage_path"],
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),  # not every checkpoint
            failure_config=ray.train.FailureConfig(max_failures=3),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()
