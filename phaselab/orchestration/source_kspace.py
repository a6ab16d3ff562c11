"""Training k-space for each phase source of a sweep: its generator (trained, found or none), the realism
check, then Ray Data synthesis of each draw the VarNet seeds need."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

from phaselab.orchestration.generator_runs import GeneratorChoice, generator_checkpoint, require_realistic
from phaselab.orchestration.sweep import SweepContext, synthesis_draw
from phaselab.orchestration.synthesis_job import actors_for, run_synthesis
from phaselab.orchestration.timeline import Timeline
from phaselab.synthesis import SourceSpec, plan_synthesis

Shards = dict[int, dict[str, list[str]]]  # synthesis draw -> split -> shard paths


def _no_turn(actors: int) -> AbstractContextManager:
    return contextlib.nullcontext()


def checked_generator(
    ctx: SweepContext, source: str, log_fn: Callable[[str], None], timeline: Timeline
) -> GeneratorChoice | None:
    """The source's generator, refused (UnrealisticGenerator) when its samples fail the realism check;
    None for a baseline."""
    with timeline.stage("generator", source):  # trained, found in MLflow, or none (a baseline)
        choice = generator_checkpoint(ctx, source, log_fn)
    if choice is not None:
        with timeline.stage("realism", source):
            require_realistic(ctx, choice, log_fn)
    return choice


def synthesize_source(
    ctx: SweepContext,
    source: str,
    choice: GeneratorChoice | None,
    seeds: list[int],
    log_fn: Callable[[str], None],
    timeline: Timeline,
    turn: Callable[[int], AbstractContextManager] | None = None,
) -> Shards:
    """recTrain + recVal k-space of one source, one draw per VarNet seed that needs its own (each draw
    is cached once). The validation set is synthetic too, as it would be for a magnitude-only archive;
    only recTest keeps the real k-space. ``turn(actors)`` is entered around each synthesis with the
    number of actors it asks for (the pipelined grid runs one at a time and keeps that many trial slots
    free: two Ray Data pools asking for the same GPUs would each wait on the other)."""
    config, prepared = ctx.config, ctx.prepared
    splits = {split: [str(p) for p in prepared.files(split)] for split in ("recTrain", "recVal")}
    inputs = [p for files in splits.values() for p in files]
    res = config.resources
    model_config = config.generators[source].model if source in config.generators else {}
    spec = SourceSpec(checkpoint=choice.checkpoint) if choice else SourceSpec(source, model_config)
    shards: Shards = {}
    for draw in sorted({synthesis_draw(source, seed) for seed in seeds}):
        plan = plan_synthesis(spec, inputs, ctx.cache / "synthesis", draw, prepared.key)
        use_gpu = res.gpus_per_trial > 0
        actors = (
            0
            if plan.is_complete()
            else actors_for(res.synthesis_actors, len(inputs), use_gpu, res.synthesis_custom)
        )
        with (turn or _no_turn)(actors), timeline.stage("synthesis", f"{source} draw {draw}"):
            run_synthesis(
                plan,
                use_gpu=use_gpu,
                num_actors=res.synthesis_actors,
                cpus_per_actor=res.synthesis_cpus,
                resources=res.synthesis_custom,
                log_fn=log_fn,
            )
        shards[draw] = {split: [str(plan.shard_path(p)) for p in files] for split, files in splits.items()}
    return shards


def synthesize_sources(
    ctx: SweepContext,
    sources: list[str],
    log_fn: Callable[[str], None],
    seeds: list[int] | None = None,
    timeline: Timeline | None = None,
) -> dict[str, Shards]:
    """Every source's k-space, one after another (searches and ``evaluate-phase``; the grid pipelines
    its sources, see ``pipeline``). Every generator is checked before any k-space is synthesized."""
    seeds = list(ctx.config.grid.seeds if seeds is None else seeds)
    timeline = timeline or Timeline()
    choices = {source: checked_generator(ctx, source, log_fn, timeline) for source in sources}
    return {
        source: synthesize_source(ctx, source, choice, seeds, log_fn, timeline)
        for source, choice in choices.items()
    }
