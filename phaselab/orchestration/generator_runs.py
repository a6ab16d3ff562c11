"""The learned generators a sweep uses: trained here (Ray Train, tracked, registered) or taken from the
MLflow model registry; and ``phaselab train-generator``, which trains one for its own parent run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from phaselab.config import GeneratorConfig, SweepConfig
from phaselab.generators import phase_source_class
from phaselab.orchestration.generator_jobs import (
    GeneratorJob,
    download_registered_generator,
    train_generator_tracked,
)
from phaselab.orchestration.progress import say
from phaselab.orchestration.sweep import SweepContext, open_sweep


def generator_job(ctx: SweepContext, source: str) -> GeneratorJob:
    """The training job of a learned source on this sweep's genTrain/genVal, saved under the cache."""
    gen = ctx.config.generators.get(source) or GeneratorConfig()
    job = GeneratorJob(
        source,
        gen.model,
        {"device": "auto", **gen.train},
        [str(p) for p in ctx.prepared.files("genTrain")],
        [str(p) for p in ctx.prepared.files("genVal")],
        "",
    )
    return dataclasses.replace(job, output=str(ctx.cache / "generators" / f"{source}-{job.key()}.pt"))


def generator_checkpoint(ctx: SweepContext, source: str, log_fn: Callable[[str], None]) -> str | None:
    """Learned sources: the registered model if configured, else train one on genTrain/genVal
    (content-keyed, so a rerun reuses it). None for sources that learn nothing."""
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
    path, _ = train_generator_tracked(
        generator_job(ctx, source),
        ctx.tracker,
        ctx.parent_id,
        workers=gen.workers,
        use_gpu=config.resources.gpus_per_trial > 0,
        storage_path=ctx.storage,
        log_fn=log_fn,
    )
    return str(path)


@dataclass
class GeneratorRunResult:
    checkpoint: str
    model_name: str
    tracking_uri: str
    parent_run_id: str


def train_generator_for_sweep(
    config: SweepConfig, name: str, log_fn: Callable[[str], None] = say
) -> GeneratorRunResult:
    """Train (or resume, or reuse) generator ``name`` under its own parent run, and close that run."""
    if not phase_source_class(name).requires_training:
        raise ValueError(f"phase source {name!r} learns nothing: choose sbdm, gan or phasegen")
    ctx = open_sweep(config, log_fn, kind=f"train-{name}", key_extra={"generator": name})
    with ctx.tracker.closed_on_error(ctx.parent_id):  # an error or Ctrl-C: FAILED/KILLED, not RUNNING
        checkpoint = generator_checkpoint(ctx, name, log_fn)
    ctx.tracker.end_run(ctx.parent_id, "FINISHED")
    return GeneratorRunResult(str(checkpoint), f"phaselab-{name}", ctx.tracking_uri, ctx.parent_id)
