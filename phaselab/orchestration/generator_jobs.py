"""Train learned phase generators with Ray Train (DDP, fault tolerant), log them to MLflow, register them.

The same worker loop (``generator_worker_loop``) runs on 1..N workers; it wraps the one shared loop of
``phaselab.generators.training``. A killed worker makes Ray Train restart the group, and the loop
resumes from the last checkpoint it reported (``FailureConfig``).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.train
import torch

from phaselab.content_key import config_hash
from phaselab.data.prepare import read_magnitude_and_phase
from phaselab.generators.training import GeneratorTrainConfig, PhasePairs

CHECKPOINT_FILE = "generator_state.pt"


def load_phase_pairs(files: list[str | Path]) -> PhasePairs:
    """Magnitude and acquired phase of every slice of prepared (working-size, single-coil) volumes."""
    mags, phases = zip(*(read_magnitude_and_phase(f) for f in files), strict=True)
    return PhasePairs(torch.cat(mags), torch.cat(phases))


@dataclass(frozen=True)
class GeneratorJob:
    """A generator training run as plain data (it travels to Ray workers)."""

    name: str  # registered phase source name: sbdm, gan, phasegen
    model_config: dict[str, Any]
    train_config: dict[str, Any]  # GeneratorTrainConfig fields
    train_files: list[str]
    val_files: list[str]
    output: str  # where the trained PhaseSource is saved (PhaseSource.save format)

    def key(self) -> str:
        return config_hash({k: v for k, v in dataclasses.asdict(self).items() if k != "output"})


def generator_worker_loop(config: dict[str, Any]) -> None:
    """Ray Train worker: train (or continue training) one generator; rank 0 writes the checkpoints."""
    from phaselab.generators import create_phase_source
    from phaselab.generators.training import train_generator

    job = GeneratorJob(**config["job"])
    source = create_phase_source(job.name, **job.model_config)
    cfg = GeneratorTrainConfig(**job.train_config)
    resume = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = torch.load(Path(folder) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    rank = ray.train.get_context().get_world_rank()

    def report(metrics: dict[str, float], state: dict[str, Any] | None) -> None:
        if state is None:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(state, Path(tmp) / CHECKPOINT_FILE)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    def progress(line: str) -> None:  # rank 0's stdout reaches the driver's terminal through Ray
        print(f"generator {job.name}: {line}", flush=True)

    result = train_generator(
        source,
        load_phase_pairs(job.train_files),
        load_phase_pairs(job.val_files) if job.val_files else None,
        cfg,
        report=report,
        resume=resume,
        log=progress if rank == 0 else None,
    )
    if rank == 0:
        source.load_state_dict(result.best_state)
        source.to("cpu").save(job.output)


class MlflowReportCallback(ray.train.UserCallback):
    """Ray Train V2 user callback: the controller logs every report to one MLflow run (single writer)."""

    def __init__(self, tracking_uri: str, experiment: str, run_id: str):
        self.tracking_uri, self.experiment, self.run_id = tracking_uri, experiment, run_id
        self._last_step = None

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        from phaselab.tracking import Tracker

        tracker = Tracker(self.tracking_uri, self.experiment)
        if self._last_step is None:
            self._last_step = tracker.last_logged_step(self.run_id)
        values = {k: float(v) for k, v in metrics[0].items() if isinstance(v, int | float) and k != "step"}
        step = int(metrics[0].get("step", 0))
        if step > self._last_step:  # a restarted worker group repeats no step in MLflow
            tracker.log_metrics(self.run_id, values, step)
            self._last_step = step

    def after_exception(self, run_context, worker_exceptions) -> None:
        pass


def train_generator_distributed(
    job: GeneratorJob,
    *,
    workers: int,
    use_gpu: bool,
    storage_path: str | Path,
    tracking: tuple[str, str, str] | None = None,
    max_failures: int = 3,
    cpus_per_worker: float = 1.0,
) -> Path:
    """Run ``job`` under a Ray Train ``TorchTrainer``; the same storage + name resumes a killed run."""
    from ray.train.torch import TorchConfig, TorchTrainer

    callbacks = [MlflowReportCallback(*tracking)] if tracking is not None else []
    trainer = TorchTrainer(
        generator_worker_loop,
        train_loop_config={"job": dataclasses.asdict(job)},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=f"generator-{job.name}-{job.key()}",
            storage_path=str(storage_path),
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),  # not every checkpoint
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
        ),
    )
    trainer.fit()
    return Path(job.output)


def train_generator_tracked(
    job: GeneratorJob,
    tracker,
    parent_id: str | None,
    *,
    workers: int = 1,
    use_gpu: bool = False,
    storage_path: str | Path,
    model_name: str | None = None,
    log_fn: Callable[[str], None] = print,
) -> tuple[Path, str]:
    """Train ``job`` (skipped when its output exists), log it as an MLflow run, register it."""
    from phaselab.tracking import ROLE, TRIAL_KEY

    key = job.key()
    existing = tracker.find_runs({TRIAL_KEY: key, ROLE: "generator"})
    finished = [r for r in existing if r.info.status == "FINISHED"]
    if finished and Path(job.output).exists():
        log_fn(f"generator {job.name}: reusing {job.output} (MLflow run {finished[0].info.run_id})")
        return Path(job.output), finished[0].info.run_id
    if existing:
        run_id = existing[0].info.run_id
    else:
        tags = {TRIAL_KEY: key, ROLE: "generator", "phaselab.generator": job.name}
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        run_id = tracker.client.create_run(
            tracker.experiment_id, tags=tags, run_name=f"generator-{job.name}"
        ).info.run_id
    tracker.log_params(
        run_id,
        {
            **{f"model.{k}": v for k, v in job.model_config.items()},
            **{f"train.{k}": v for k, v in job.train_config.items()},
            "workers": workers,
            "train_slices_files": len(job.train_files),
        },
    )
    start = time.perf_counter()
    log_fn(f"generator {job.name}: training on {workers} worker(s), {job.train_config.get('steps')} steps")
    train_generator_distributed(
        job,
        workers=workers,
        use_gpu=use_gpu,
        storage_path=storage_path,
        tracking=(tracker.uri, tracker.experiment_name, run_id),
    )
    tracker.log_metrics(run_id, {"train_seconds": time.perf_counter() - start}, 0)
    from phaselab.orchestration.generator_registry import register_generator

    version = register_generator(
        tracker, run_id, job.output, model_name or f"phaselab-{job.name}", tags={"phaselab.job_key": key}
    )
    tracker.set_tags(run_id, {"phaselab.registered_version": version})
    tracker.end_run(run_id, "FINISHED")
    log_fn(
        f"generator {job.name}: saved {job.output}, "
        f"registered as {model_name or 'phaselab-' + job.name} v{version}"
    )
    return Path(job.output), run_id
