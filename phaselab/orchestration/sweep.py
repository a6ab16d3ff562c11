"""What every sweep script sets up before its trials: the MLflow parent run, Ray, the prepared data, the
learned generators and the synthesized k-space of each phase source.

A sweep's key is a hash of what determines its results, so the same command finds the same parent run,
the same cache folders and the same trial folders again: that is how a killed sweep resumes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phaselab.config import GeneratorConfig, SweepConfig, config_hash, dump_yaml, to_dict
from phaselab.data.prepare import PreparedDataset, prepare_dataset
from phaselab.orchestration.ray_runtime import init_ray
from phaselab.orchestration.synthesis_job import run_synthesis
from phaselab.orchestration.trial import TrialSpec
from phaselab.synthesis import plan_synthesis
from phaselab.tracking import Tracker, default_tracking_uri

SYNTHESIS_SEED = 0


def sweep_key(config: SweepConfig) -> str:
    """What determines the results: data, models, training and grid (not resources or addresses)."""
    keep = ("data", "varnet", "train", "grid", "scheduler")
    content = {k: v for k, v in to_dict(config).items() if k in keep}
    content["generators"] = {k: v for k, v in to_dict(config)["generators"].items() if k in config.grid.sources}
    return config_hash(content)


@dataclass
class SweepContext:
    config: SweepConfig
    key: str
    sweep_dir: Path
    tracker: Tracker
    tracking_uri: str
    parent_id: str
    resolved: str  # the resolved config as YAML
    prepared: PreparedDataset
    shards: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # source -> split -> shards

    @property
    def cache(self) -> Path:
        return Path(self.config.output_dir).resolve() / "cache"

    @property
    def storage(self) -> Path | str:
        """Ray results: the configured shared storage, else the sweep folder."""
        return self.config.storage_path or self.sweep_dir / "ray_results"


def open_sweep(
    config: SweepConfig,
    log_fn: Callable[[str], None],
    *,
    kind: str = "grid",
    sources: list[str] | None = None,
    key_extra: dict | None = None,
    synthesize: bool = True,
) -> SweepContext:
    """Find or create the parent run, start Ray, prepare and split the data, synthesize per source."""
    out = Path(config.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    key = sweep_key(config) if key_extra is None else config_hash({"sweep": sweep_key(config), **key_extra})
    uri = config.tracking.uri or default_tracking_uri(out)
    tracker = Tracker(uri, config.tracking.experiment, artifact_root=out / "mlartifacts")
    tags = {"phaselab.preset": config.name, "phaselab.kind": kind}
    parent_id, resumed = tracker.parent_run(key, f"{config.name}-{kind}", tags=tags)
    log_fn(f"{'resuming' if resumed else 'starting'} {kind} {config.name} ({key}); MLflow run {parent_id}")
    with tracker.closed_on_error(parent_id):  # bad data, Ctrl-C...: the parent run is not left RUNNING
        resolved = dump_yaml(config)
        tracker.log_text(parent_id, resolved, "config.yaml")
        flat = {
            f"{section}.{k}": v
            for section, values in to_dict(config).items()
            if isinstance(values, dict)
            for k, v in values.items()
        }
        tracker.log_params(parent_id, {**flat, **{f"search.{k}": v for k, v in (key_extra or {}).items()}})

        prepared = prepare_dataset(config.data, out / "cache", log_fn=log_fn)  # bad input fails before Ray
        log_fn(f"dataset {prepared.key}: " + ", ".join(f"{s} {len(f)}" for s, f in prepared.splits.items()))
        init_ray(config, log_fn)
        ctx = SweepContext(config, key, out / "sweeps" / key, tracker, uri, parent_id, resolved, prepared)
        if synthesize:
            ctx.shards = synthesize_sources(ctx, sources or config.grid.sources, log_fn)
    return ctx


def generator_checkpoint(ctx: SweepContext, source: str, log_fn: Callable[[str], None]) -> str | None:
    """Learned sources: the registered model if configured, else train one on genTrain/genVal
    (content-keyed, so a rerun reuses it). None for sources that learn nothing."""
    from phaselab.generators.base import phase_source_class
    from phaselab.orchestration.generator_jobs import (
        GeneratorJob,
        download_registered_generator,
        train_generator_tracked,
    )

    if not phase_source_class(source).requires_training:
        return None
    config = ctx.config
    gen = config.generators.get(source) or GeneratorConfig()
    folder = ctx.cache / "generators"
    if gen.registered:
        name, _, version = gen.registered.partition("/")
        log_fn(f"generator {source}: using registered model {name} v{version or 'latest'}")
        return str(
            download_registered_generator(ctx.tracker, name, version or None, dst=folder / "registered")
        )
    job = GeneratorJob(
        source,
        gen.model,
        {"device": "auto", **gen.train},
        [str(p) for p in ctx.prepared.files("genTrain")],
        [str(p) for p in ctx.prepared.files("genVal")],
        "",
    )
    job = dataclasses.replace(job, output=str(folder / f"{source}-{job.key()}.pt"))
    path, _ = train_generator_tracked(
        job,
        ctx.tracker,
        ctx.parent_id,
        workers=gen.workers,
        use_gpu=config.resources.gpus_per_trial > 0,
        storage_path=ctx.storage,
        log_fn=log_fn,
    )
    return str(path)


def synthesize_sources(ctx: SweepContext, sources: list[str], log_fn) -> dict[str, dict[str, list[str]]]:
    """recTrain + recVal k-space for each phase source. The validation set is synthetic too, as it
    would be for a magnitude-only archive; only recTest keeps the real k-space."""
    config, prepared = ctx.config, ctx.prepared
    shards: dict[str, dict[str, list[str]]] = {}
    use_gpu = config.resources.gpus_per_trial > 0
    splits = {split: [str(p) for p in prepared.files(split)] for split in ("recTrain", "recVal")}
    inputs = [p for files in splits.values() for p in files]
    for source in sources:
        checkpoint = generator_checkpoint(ctx, source, log_fn)
        model_config = config.generators[source].model if source in config.generators else {}
        plan = plan_synthesis(
            source,
            {} if checkpoint else model_config,
            checkpoint,
            inputs,
            ctx.cache / "synthesis",
            SYNTHESIS_SEED,
            prepared.key,
        )
        res = config.resources
        run_synthesis(
            plan,
            use_gpu=use_gpu,
            num_actors=res.synthesis_actors,
            cpus_per_actor=res.synthesis_cpus,
            resources=res.synthesis_custom,
            log_fn=log_fn,
        )
        shards[source] = {split: [str(plan.shard_path(p)) for p in files] for split, files in splits.items()}
    return shards


def trial_spec(
    ctx: SweepContext, cell: dict[str, Any], trial_dir: Path, *, with_test: bool = True
) -> TrialSpec:
    """The plain-data description of one VarNet trial of this sweep."""
    config = ctx.config
    return TrialSpec(
        cell=cell,
        trial_key=config_hash({"sweep": ctx.key, "cell": cell}),
        trial_dir=str(trial_dir),
        train_shards=ctx.shards[cell["source"]]["recTrain"],
        val_shards=ctx.shards[cell["source"]]["recVal"],
        test_files=[str(p) for p in ctx.prepared.files("recTest")] if with_test else [],
        varnet=dataclasses.asdict(config.varnet),
        train=dataclasses.asdict(config.train),
        tracking_uri=ctx.tracking_uri,
        experiment=config.tracking.experiment,
        parent_run_id=ctx.parent_id,
        resolved_config=ctx.resolved,
        torch_threads=config.resources.torch_threads,
    )
