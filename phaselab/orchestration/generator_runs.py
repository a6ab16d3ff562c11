"""The learned generators a sweep uses: trained here (Ray Train, tracked, registered), taken from the MLflow
model registry or from a file; each checked for realism on this sweep's genVal before any grid uses it.
And ``phaselab train-generator``, which trains one for its own parent run."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import ray

from phaselab.config import GeneratorConfig, SweepConfig, generator_settings
from phaselab.content_key import config_hash, file_digest
from phaselab.generators import phase_source_class
from phaselab.generators.base import check_checkpoint_data, resolve_checkpoint
from phaselab.generators.realism import RealismReport, UnrealisticGenerator
from phaselab.orchestration.generator_jobs import GeneratorJob, train_generator_tracked
from phaselab.orchestration.progress import say
from phaselab.orchestration.sweep import SweepContext, open_sweep

REALISM_VERSION = 1


@dataclass(frozen=True)
class GeneratorChoice:
    """The checkpoint a sweep uses for a learned source, where it came from, and its realism check."""

    name: str
    checkpoint: str
    origin: str  # "trained here", "registered <model>/<version>", "file <path>"
    realism: RealismReport
    run_id: str | None = None  # the generator's own MLflow run, when trained here


def generator_job(ctx: SweepContext, source: str) -> GeneratorJob:
    """The training job of a learned source on this sweep's genTrain/genVal, saved under the cache."""
    model, train = generator_settings(source, ctx.config.generators.get(source) or GeneratorConfig())
    job = GeneratorJob(
        source,
        model,
        {"device": "auto", **train},
        [str(p) for p in ctx.prepared.files("genTrain")],
        [str(p) for p in ctx.prepared.files("genVal")],
        "",
    )
    return dataclasses.replace(job, output=str(ctx.cache / "generators" / f"{source}-{job.key()}.pt"))


@ray.remote(num_cpus=1)
def _realism_task(checkpoint: str, val_files: list[str], max_slices: int) -> dict:
    """In a Ray worker (a GPU one when asked): sample genVal with the generator and with smooth."""
    import torch

    from phaselab.generators import load_phase_source
    from phaselab.generators.realism import check_realism
    from phaselab.orchestration.generator_jobs import load_phase_pairs

    source = load_phase_source(checkpoint)
    if torch.cuda.is_available() and hasattr(source, "to"):
        source.to("cuda")
    pairs = load_phase_pairs(val_files)
    return check_realism(source, pairs.magnitude, pairs.phase, max_slices=max_slices).as_dict()


def realism_of(ctx: SweepContext, name: str, checkpoint: str, log_fn: Callable[[str], None]) -> RealismReport:
    """The realism check of a saved generator on this sweep's genVal; cached by checkpoint content."""
    slices = ctx.config.evaluation.realism_slices
    key = config_hash(
        {
            "checkpoint": file_digest(checkpoint),
            "data": ctx.prepared.key,
            "slices": slices,
            "v": REALISM_VERSION,
        }
    )
    cache = ctx.cache / "realism" / f"{name}-{key}.json"
    if cache.exists():
        return RealismReport.from_dict(json.loads(cache.read_text()))
    log_fn(f"generator {name}: checking its samples against the acquired phase on genVal ({slices} slices)")
    gpus = 1 if ctx.config.resources.gpus_per_trial > 0 else 0
    val_files = [str(p) for p in ctx.prepared.files("genVal")]
    report = RealismReport.from_dict(
        ray.get(_realism_task.options(num_gpus=gpus).remote(checkpoint, val_files, slices))
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(report.as_dict(), indent=1))
    os.replace(tmp, cache)
    return report


def _log_realism(ctx: SweepContext, choice: GeneratorChoice, log_fn: Callable[[str], None]) -> None:
    report, tracker = choice.realism, ctx.tracker
    verdict = "pass" if report.realistic else "UNREALISTIC"
    for run_id in filter(None, (choice.run_id, ctx.parent_id)):
        prefix = "realism_" if run_id == choice.run_id else f"realism_{choice.name}_"
        tracker.log_summary(run_id, report.as_metrics(prefix))
        tracker.set_tags(run_id, {f"phaselab.realism.{choice.name}": verdict})
    tracker.log_dict(ctx.parent_id, report.as_dict(), f"realism/{choice.name}.json")
    if report.realistic:
        log_fn(f"generator {report.summary()}")
    else:
        log_fn(f"WARNING !!! generator {report.summary()}")


def generator_checkpoint(
    ctx: SweepContext, source: str, log_fn: Callable[[str], None]
) -> GeneratorChoice | None:
    """Learned sources: a configured file or registered model, else one trained on genTrain/genVal
    (content-keyed, so a rerun reuses it); its realism is checked and logged. None for baselines."""
    if not phase_source_class(source).requires_training:
        return None
    config = ctx.config
    gen = config.generators.get(source) or GeneratorConfig()
    folder = ctx.cache / "generators"
    run_id = None
    if gen.checkpoint:
        path, origin = resolve_checkpoint(gen.checkpoint), f"file {gen.checkpoint}"
        check_checkpoint_data(path, ctx.prepared.key)  # DataError naming the file on other data
        log_fn(f"generator {source}: using {path}")
    elif gen.registered:
        name, _, version = gen.registered.partition("/")
        log_fn(f"generator {source}: using registered model {name} v{version or 'champion'}")
        from phaselab.orchestration.generator_registry import download_registered_generator  # mlflow.pyfunc

        path = download_registered_generator(ctx.tracker, name, version or None, dst=folder / "registered")
        origin = f"registered {gen.registered}"
    else:
        path, run_id = train_generator_tracked(
            generator_job(ctx, source),
            ctx.tracker,
            ctx.parent_id,
            workers=gen.workers,
            use_gpu=config.resources.gpus_per_trial > 0,
            storage_path=ctx.storage,
            log_fn=log_fn,
        )
        origin = "trained here"
    choice = GeneratorChoice(source, str(path), origin, realism_of(ctx, source, str(path), log_fn), run_id)
    _log_realism(ctx, choice, log_fn)
    return choice


def require_realistic(ctx: SweepContext, choice: GeneratorChoice, log_fn: Callable[[str], None]) -> None:
    """The grid uses a generator only if its samples passed, or the user insists."""
    if choice.realism.realistic:
        return
    gen = ctx.config.generators.get(choice.name) or GeneratorConfig()
    if not gen.allow_unrealistic:
        raise UnrealisticGenerator(choice.name, choice.realism)
    log_fn(f"WARNING !!! using generator {choice.name} although it is unrealistic (allow_unrealistic)")


@dataclass
class GeneratorRunResult:
    checkpoint: str
    model_name: str
    tracking_uri: str
    parent_run_id: str
    realism: RealismReport


def train_generator_for_sweep(
    config: SweepConfig, name: str, log_fn: Callable[[str], None] = say
) -> GeneratorRunResult:
    """Train (or resume, or reuse) generator ``name`` under its own parent run, check its samples, and
    close that run."""
    if not phase_source_class(name).requires_training:
        raise ValueError(f"phase source {name!r} learns nothing: choose sbdm, gan or phasegen")
    ctx = open_sweep(config, log_fn, kind=f"train-{name}", key_extra={"generator": name})
    with ctx.tracker.closed_on_error(ctx.parent_id):  # an error or Ctrl-C: FAILED/KILLED, not RUNNING
        choice = generator_checkpoint(ctx, name, log_fn)
    ctx.tracker.end_run(ctx.parent_id, "FINISHED")
    return GeneratorRunResult(
        choice.checkpoint, f"phaselab-{name}", ctx.tracking_uri, ctx.parent_id, choice.realism
    )
