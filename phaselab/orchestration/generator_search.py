"""Generator hyperparameter search on genVal: Ray Tune + Optuna + ASHA, best model into the registry.

Trials are ranked by the quality of their samples, not by a loss: at every evaluation a trial samples
genVal and scores it against the acquired phase next to the ``smooth`` baseline
(``phaselab.generators.realism``; ``realism_score`` < 1 is closer than smooth), as the first study
selected "by the MSE score and visual inspection of the samples generated on genVal". A loss would
not do: the denoising loss at a fixed t falls as sigma_max grows whatever the samples look like. Each
trial's losses are still logged. Keys of a search space are ``model.<key>`` (constructor keywords of
the phase source) or ``train.<key>`` (GeneratorTrainConfig fields).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from phaselab.config import SweepConfig
from phaselab.content_key import config_hash
from phaselab.data.prepare import count_slices
from phaselab.generators.training import GeneratorTrainConfig, resolve_lengths
from phaselab.orchestration.generator_jobs import GeneratorJob, load_phase_pairs
from phaselab.orchestration.generator_registry import register_generator, set_champion
from phaselab.orchestration.generator_runs import generator_job
from phaselab.orchestration.search import (
    SearchSettings,
    best_result,
    close_stopped_runs,
    describe_space,
    search_tuner,
)
from phaselab.orchestration.sweep import open_sweep


def default_space(name: str) -> dict[str, Any]:
    """Per-generator search spaces around the published settings."""
    from ray import tune

    spaces = {
        "sbdm": {
            "train.lr": tune.loguniform(5e-5, 1e-3),
            "train.ema_decay": tune.choice([0.99, 0.999, 0.9999]),
            "model.sigma_max": tune.choice([10.0, 50.0, 378.0]),
            "model.nf": tune.choice([16, 32, 64, 128]),
        },
        "gan": {
            "train.lr": tune.loguniform(5e-5, 5e-4),
            "model.l1_weight": tune.choice([50.0, 100.0, 200.0]),
            "model.ngf": tune.choice([16, 32, 64]),
        },
        "phasegen": {"train.lr": tune.loguniform(5e-5, 1e-3), "model.dropout": tune.choice([0.0, 0.1, 0.2])},
    }
    if name not in spaces:
        raise ValueError(f"no default search space for {name!r}; learned generators: {sorted(spaces)}")
    return spaces[name]


def apply_params(job: GeneratorJob, params: dict[str, Any]) -> GeneratorJob:
    model, train = dict(job.model_config), dict(job.train_config)
    for key, value in params.items():
        section, _, name = key.partition(".")
        if section == "model":
            model[name] = value
        elif section == "train":
            train[name] = value
        else:
            raise ValueError(f"search key {key!r} must start with 'model.' or 'train.'")
    return dataclasses.replace(job, model_config=model, train_config=train)


def _short(params: dict[str, Any]) -> str:
    """``lr=0.0003,nf=32``: a run name that shows what the trial tried."""
    shown = [f"{k.partition('.')[2]}={v:.2g}" if isinstance(v, float) else f"{k.partition('.')[2]}={v}"
             for k, v in sorted(params.items())]  # fmt: skip
    return ",".join(shown)


def generator_trial(config: dict[str, Any]) -> None:
    """Tune trainable: one generator trained in this process; at every evaluation it samples genVal and
    reports ``realism_score`` (and its losses); the best-scoring state is saved as it improves."""
    from ray import tune

    from phaselab.generators import create_phase_source
    from phaselab.generators.realism import check_realism
    from phaselab.generators.training import GeneratorTrainConfig, train_generator
    from phaselab.tracking import Tracker

    base = json.loads(Path(config["base_job_path"]).read_text())
    params = {k: v for k, v in config.items() if k.startswith(("model.", "train."))}
    job = apply_params(GeneratorJob(**base["job"]), params)
    trial_dir = Path(base["trials_dir"]) / config_hash(params)
    trial_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(base["torch_threads"])
    tracker = Tracker(base["tracking_uri"], base["experiment"])
    tags = {"phaselab.role": "generator-trial", "phaselab.generator": job.name}
    run_id = tracker.start_child(base["parent_id"], config_hash(params), f"{job.name}-{_short(params)}", tags)
    with tracker.closed_on_error(run_id):  # a trial that raises leaves its run FAILED, not RUNNING
        tracker.log_params(run_id, params)
        source = create_phase_source(job.name, **job.model_config)
        val = load_phase_pairs(job.val_files)
        output = trial_dir / f"{job.name}.pt"
        best = {"score": float("inf")}

        def report(metrics: dict[str, float], checkpoint: dict[str, Any] | None) -> None:
            realism = check_realism(source, val.magnitude, val.phase, max_slices=base["realism_slices"])
            metrics = {**metrics, **realism.as_metrics()}
            tracker.log_metrics(
                run_id, {k: v for k, v in metrics.items() if k != "step"}, int(metrics["step"])
            )
            if checkpoint is not None and realism.score < best["score"]:
                # Saved as it improves: ASHA may stop this trial at any evaluation.
                best["score"] = realism.score
                payload = {"name": job.name, "config": source.config, "state_dict": checkpoint["state"]}
                tmp = output.with_suffix(".pt.tmp")
                torch.save(payload, tmp)
                tmp.replace(output)
            tune.report(metrics)

        train_generator(
            source,
            load_phase_pairs(job.train_files),
            val,
            GeneratorTrainConfig(**job.train_config),
            report=report,
        )
        tracker.set_tags(run_id, {"phaselab.checkpoint": str(output)})
    tracker.end_run(run_id, "FINISHED")


@dataclass
class GeneratorSearchResult:
    best_params: dict[str, Any]
    best_score: float  # realism_score of the best trial's samples on genVal (< 1: closer than smooth)
    checkpoint: Path
    registered_version: str
    parent_run_id: str


def run_generator_search(
    config: SweepConfig,
    name: str,
    *,
    num_samples: int = 8,
    space: dict[str, Any] | None = None,
    log_fn: Callable[[str], None] | None = None,
) -> GeneratorSearchResult:
    from ray import tune

    from phaselab.orchestration.progress import say

    log_fn = log_fn or say  # picklable, unlike builtins.print once Ray patched it (see run_varnet_search)
    space = space or default_space(name)
    key_extra = {"generator": name, "num_samples": num_samples, "space": describe_space(space)}
    ctx = open_sweep(config, log_fn, kind=f"tune-{name}", key_extra=key_extra)
    with ctx.tracker.closed_on_error(ctx.parent_id):  # an error or Ctrl-C: FAILED/KILLED, not RUNNING
        job = generator_job(ctx, name)
        base_path = ctx.sweep_dir / "base_job.json"
        base_path.parent.mkdir(parents=True, exist_ok=True)
        base_path.write_text(
            json.dumps(
                {
                    "job": dataclasses.asdict(job),
                    "trials_dir": str(ctx.sweep_dir / "trials"),
                    "tracking_uri": ctx.tracking_uri,
                    "experiment": config.tracking.experiment,
                    "parent_id": ctx.parent_id,
                    "torch_threads": config.resources.torch_threads,
                    "realism_slices": config.evaluation.realism_slices,
                }
            )
        )
        res = config.resources
        trainable = tune.with_resources(
            generator_trial, {**res.custom, "cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}
        )
        lengths = resolve_lengths(GeneratorTrainConfig(**job.train_config), count_slices(job.train_files))
        settings = SearchSettings(
            metric="realism_score",
            mode="min",
            num_samples=num_samples,
            # one more than its evaluations: ASHA stops a trial at max_t, which killed every trial that ran
            # to the end before it could end its run FINISHED (they were marked KILLED, stopped by asha)
            max_t=-(-lengths.steps // lengths.eval_every) + 1,
            grace_period=config.scheduler.grace_period,
            reduction_factor=config.scheduler.reduction_factor,
            max_concurrent=res.max_concurrent_trials or 2,
        )
        tuner = search_tuner(
            trainable,
            {**space, "base_job_path": str(base_path)},
            settings,
            storage=str(ctx.storage),
            name=f"search-{ctx.key}",
            log_fn=log_fn,
        )
        results = tuner.fit()
        best_config, best_score = best_result(results, settings)
        best_params = {k: v for k, v in best_config.items() if k.startswith(("model.", "train."))}
        tracker = ctx.tracker
        close_stopped_runs(tracker, ctx.parent_id)
        checkpoint = ctx.sweep_dir / "trials" / config_hash(best_params) / f"{name}.pt"
        if not checkpoint.exists():
            raise RuntimeError(
                f"best trial stopped before saving its model ({checkpoint}); rerun with more steps"
            )
        # a rerun of a finished search finds its version (it registered one more version per rerun)
        versions = tracker.client.search_model_versions(f"name = 'phaselab-{name}'")
        mine = [v.version for v in versions if v.tags.get("phaselab.search") == ctx.key]
        if mine:
            version = str(max(map(int, mine)))
        else:
            version = register_generator(
                tracker, ctx.parent_id, checkpoint, f"phaselab-{name}", tags={"phaselab.search": ctx.key}
            )
        set_champion(tracker, f"phaselab-{name}", version)  # what the grid takes without a version
        tracker.log_params(ctx.parent_id, {f"best.{k}": v for k, v in best_params.items()})
        tracker.log_summary(ctx.parent_id, {"best_realism_score": best_score, "trials": len(results)})
        tracker.end_run(ctx.parent_id, "FINISHED")
        return GeneratorSearchResult(best_params, best_score, checkpoint, version, ctx.parent_id)
