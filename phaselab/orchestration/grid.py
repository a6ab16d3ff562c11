"""The recon grid driver: data -> splits -> synthesis per source -> Tune grid of VarNet trials -> metric grid.

Resuming is by content: the sweep's key is a hash of what determines its results, every cell's state
lives in ``<output>/sweeps/<key>/trials/<cell>``, and the MLflow parent run is found again by its tag.
Rerunning the same command therefore skips finished trials, continues killed ones from their last
checkpoint and reuses every cached dataset.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phaselab.config import GeneratorConfig, SweepConfig, config_hash, dump_yaml, to_dict
from phaselab.data.prepare import PreparedDataset, prepare_dataset
from phaselab.orchestration.ray_runtime import init_ray
from phaselab.orchestration.synthesis_job import run_synthesis
from phaselab.orchestration.trial import TrialSpec, cell_name, read_result, save_spec
from phaselab.synthesis import plan_synthesis
from phaselab.tracking import Tracker, default_tracking_uri

SYNTHESIS_SEED = 0


@dataclass
class GridResult:
    rows: list[dict[str, Any]]  # one per finished trial
    parent_run_id: str
    tracking_uri: str
    experiment_id: str
    output_dir: Path
    sweep_key: str
    seconds: float
    trial_seconds: float  # sum of the trials' own training time


def sweep_key(config: SweepConfig) -> str:
    """What determines the results: data, model, training and grid (not resources or addresses)."""
    keep = {k: v for k, v in to_dict(config).items() if k in ("data", "varnet", "train", "grid", "scheduler")}
    return config_hash(keep)


def grid_cells(config: SweepConfig) -> list[dict[str, Any]]:
    g = config.grid
    return [
        {"source": s, "acceleration": r, "num_acs": n, "seed": seed}
        for s, r, n, seed in itertools.product(g.sources, g.accelerations, g.num_acs, g.seeds)
    ]


def _generator_checkpoint(ctx_parts: dict, source: str, log_fn) -> str | None:
    """Trained sources: take the registered model, or train one on genTrain/genVal (cached by key)."""
    from phaselab.generators.base import phase_source_class
    from phaselab.orchestration.generator_jobs import (
        GeneratorJob,
        download_registered_generator,
        train_generator_tracked,
    )

    if not phase_source_class(source).requires_training:
        return None
    config, prepared, tracker = ctx_parts["config"], ctx_parts["prepared"], ctx_parts["tracker"]
    gen = config.generators.get(source) or GeneratorConfig()
    folder = Path(config.output_dir).resolve() / "cache" / "generators"
    if gen.registered:
        name, _, version = gen.registered.partition("/")
        log_fn(f"generator {source}: using registered model {name} v{version or 'latest'}")
        return str(download_registered_generator(tracker, name, version or None, dst=folder / "registered"))
    job = GeneratorJob(
        source, gen.model, {"device": "auto", **gen.train},
        [str(p) for p in prepared.files("genTrain")], [str(p) for p in prepared.files("genVal")], "",
    )
    job = dataclasses.replace(job, output=str(folder / f"{source}-{job.key()}.pt"))
    path, _ = train_generator_tracked(
        job, tracker, ctx_parts["parent_id"], workers=gen.workers,
        use_gpu=config.resources.gpus_per_trial > 0, storage_path=ctx_parts["storage"], log_fn=log_fn,
    )
    return str(path)


def _synthesize_all(ctx_parts: dict, sources: list[str], log_fn) -> dict[str, dict]:
    """recTrain + recVal k-space for each phase source (the validation set is synthetic too, as it
    would be for a magnitude-only archive)."""
    config, prepared = ctx_parts["config"], ctx_parts["prepared"]
    cache = Path(config.output_dir).resolve() / "cache"
    shards: dict[str, dict[str, list[str]]] = {}
    use_gpu = config.resources.gpus_per_trial > 0
    splits = {split: [str(p) for p in prepared.files(split)] for split in ("recTrain", "recVal")}
    inputs = [p for files in splits.values() for p in files]
    for source in sources:
        checkpoint = _generator_checkpoint(ctx_parts, source, log_fn)
        model_config = config.generators[source].model if source in config.generators else {}
        plan = plan_synthesis(source, model_config if not checkpoint else {}, checkpoint, inputs,
                              cache / "synthesis", SYNTHESIS_SEED, prepared.key)
        run_synthesis(plan, use_gpu=use_gpu, cpus_per_actor=config.resources.synthesis_cpus, log_fn=log_fn)
        shards[source] = {split: [str(plan.shard_path(p)) for p in files] for split, files in splits.items()}
    return shards


def _finish_stale_runs(tracker: Tracker, parent_id: str, trial_dirs: dict[str, Path]) -> None:
    """A driver killed after a trial wrote result.json but before MLflow heard of it: close the run."""
    for key, run in tracker.child_runs(parent_id).items():
        if key in trial_dirs and run.info.status == "RUNNING" and read_result(trial_dirs[key]) is not None:
            tracker.end_run(run.info.run_id, "FINISHED")


def _run_tune(config: SweepConfig, pending: list[dict[str, Any]], storage: Path | str, name: str, log_fn) -> None:
    from ray import tune

    from phaselab.orchestration.progress import GridProgress
    from phaselab.orchestration.trial import tune_trial, tune_trial_distributed

    res = config.resources
    if res.workers_per_trial > 1:
        per_worker = {"cpus_per_worker": res.cpus_per_trial, "gpus_per_worker": res.gpus_per_trial,
                      "workers": res.workers_per_trial, "storage_path": str(storage)}
        pending = [{**cell, **per_worker} for cell in pending]
        trainable = tune.with_resources(tune_trial_distributed, {"cpu": 0.1})
    else:
        resources = {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}
        trainable = tune.with_resources(tune_trial, resources)
    scheduler = None
    if config.scheduler.asha:
        scheduler = tune.schedulers.ASHAScheduler(
            time_attr="training_iteration", metric="val_ssim", mode="max",
            grace_period=config.scheduler.grace_period, reduction_factor=config.scheduler.reduction_factor,
        )
    tuner = tune.Tuner(
        trainable,
        param_space={"cell": tune.grid_search(pending)},
        tune_config=tune.TuneConfig(
            reuse_actors=True, max_concurrent_trials=res.max_concurrent_trials, scheduler=scheduler,
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), verbose=0,
            callbacks=[GridProgress(len(pending), log_fn)],
            failure_config=tune.FailureConfig(max_failures=2),
        ),
    )
    tuner.fit()


@dataclass
class SweepContext:
    """What every sweep script sets up before its trials: tracking, Ray, data, synthesized k-space."""

    config: SweepConfig
    key: str
    sweep_dir: Path
    tracker: Tracker
    tracking_uri: str
    parent_id: str
    resolved: str  # the resolved config as YAML
    prepared: PreparedDataset
    shards: dict[str, dict[str, list[str]]]  # source -> recTrain/recVal -> shard paths


def open_sweep(config: SweepConfig, log_fn: Callable[[str], None], *, kind: str = "grid",
               sources: list[str] | None = None, key_extra: dict | None = None) -> SweepContext:
    """Find or create the parent run, start Ray, prepare and split the data, synthesize per source."""
    out = Path(config.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    key = sweep_key(config) if key_extra is None else config_hash({"sweep": sweep_key(config), **key_extra})
    uri = config.tracking.uri or default_tracking_uri(out)
    tracker = Tracker(uri, config.tracking.experiment, artifact_root=out / "mlartifacts")
    parent_id, resumed = tracker.parent_run(key, f"{config.name}-{kind}", tags={"phaselab.preset": config.name,
                                                                               "phaselab.kind": kind})
    log_fn(f"{'resuming' if resumed else 'starting'} {kind} {config.name} ({key}); MLflow run {parent_id}")
    resolved = dump_yaml(config)
    tracker.log_text(parent_id, resolved, "config.yaml")
    flat = {f"{section}.{k}": v for section, values in to_dict(config).items() if isinstance(values, dict)
            for k, v in values.items()}
    tracker.log_params(parent_id, {**flat, **{f"search.{k}": v for k, v in (key_extra or {}).items()}})

    init_ray(config, log_fn)
    prepared = prepare_dataset(config.data, out / "cache", log_fn=log_fn)
    log_fn(f"dataset {prepared.key}: " + ", ".join(f"{s} {len(f)}" for s, f in prepared.splits.items()))
    sweep_dir = out / "sweeps" / key
    parts = {"config": config, "prepared": prepared, "tracker": tracker, "parent_id": parent_id,
             "storage": config.storage_path or sweep_dir / "ray_results"}
    shards = _synthesize_all(parts, sources or config.grid.sources, log_fn)
    return SweepContext(config, key, out / "sweeps" / key, tracker, uri, parent_id, resolved, prepared, shards)


def trial_spec(ctx: SweepContext, cell: dict[str, Any], trial_dir: Path, *, with_test: bool = True,
               varnet: dict | None = None, train: dict | None = None) -> TrialSpec:
    config = ctx.config
    return TrialSpec(
        cell=cell, trial_key=config_hash({"sweep": ctx.key, "cell": cell}), trial_dir=str(trial_dir),
        train_shards=ctx.shards[cell["source"]]["recTrain"], val_shards=ctx.shards[cell["source"]]["recVal"],
        test_files=[str(p) for p in ctx.prepared.files("recTest")] if with_test else [],
        varnet=varnet or dataclasses.asdict(config.varnet), train=train or dataclasses.asdict(config.train),
        tracking_uri=ctx.tracking_uri, experiment=config.tracking.experiment, parent_run_id=ctx.parent_id,
        resolved_config=ctx.resolved, torch_threads=config.resources.torch_threads,
    )


def ray_storage(ctx: SweepContext) -> Path | str:
    return ctx.config.storage_path or ctx.sweep_dir / "ray_results"


def run_recon_grid(config: SweepConfig, log_fn: Callable[[str], None] | None = None) -> GridResult:
    """Run (or resume) the recon grid of ``config``; returns the finished trials' rows.

    ``log_fn`` receives progress lines (default: print); it must be picklable (Tune ships it).
    """
    from phaselab.orchestration.progress import say
    from phaselab.orchestration.report import log_grid_to_parent

    start = time.perf_counter()
    progress_fn, log_fn = log_fn, log_fn or say
    ctx = open_sweep(config, log_fn)
    specs = {}
    for cell in grid_cells(config):
        spec = trial_spec(ctx, cell, ctx.sweep_dir / "trials" / cell_name(cell))
        specs[spec.trial_key] = spec
    _finish_stale_runs(ctx.tracker, ctx.parent_id, {k: Path(s.trial_dir) for k, s in specs.items()})
    pending = [
        {**s.cell, "trial_key": k, "spec_path": str(save_spec(s))}
        for k, s in specs.items() if read_result(s.trial_dir) is None
    ]
    log_fn(f"grid: {len(specs)} trials, {len(specs) - len(pending)} already finished, {len(pending)} to run")
    if pending:
        storage = ray_storage(ctx)
        attempt = len(list(Path(storage).glob("grid-*"))) if Path(storage).exists() else 0
        _run_tune(config, pending, storage, f"grid-{attempt:03d}", progress_fn)

    rows = [r for s in specs.values() if (r := read_result(s.trial_dir)) is not None]
    missing = len(specs) - len(rows)
    seconds = time.perf_counter() - start
    trial_seconds = sum(float(r.get("train_seconds", 0.0)) for r in rows)
    tracker = ctx.tracker
    log_grid_to_parent(tracker, ctx.parent_id, rows, config)
    tracker.log_metrics(ctx.parent_id, {"trials_finished": len(rows), "trials_failed": missing,
                                        "sweep_seconds": seconds, "trial_seconds": trial_seconds}, step=0)
    tracker.end_run(ctx.parent_id, "FINISHED" if missing == 0 else "FAILED")
    if missing:
        log_fn(f"{missing} trial(s) did not finish; rerun the same command to retry them")
    return GridResult(rows, ctx.parent_id, ctx.tracking_uri, tracker.experiment_id, Path(config.output_dir).resolve(),
                      ctx.key, seconds, trial_seconds)
