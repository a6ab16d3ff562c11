"""Training k-space for each phase source of a sweep: learned generators first, then Ray Data synthesis."""

from __future__ import annotations

from collections.abc import Callable

from phaselab.orchestration.generator_runs import generator_checkpoint, require_realistic
from phaselab.orchestration.sweep import SweepContext, synthesis_draw
from phaselab.orchestration.synthesis_job import run_synthesis
from phaselab.synthesis import SourceSpec, plan_synthesis


def synthesize_sources(
    ctx: SweepContext, sources: list[str], log_fn: Callable[[str], None], seeds: list[int] | None = None
) -> dict[str, dict[int, dict[str, list[str]]]]:
    """recTrain + recVal k-space of each phase source, one synthesis draw per VarNet seed (source -> draw
    -> split -> shards; each draw is cached once). The validation set is synthetic too, as it would be
    for a magnitude-only archive; only recTest keeps the real k-space."""
    config, prepared = ctx.config, ctx.prepared
    seeds = list(config.grid.seeds if seeds is None else seeds)
    shards: dict[str, dict[int, dict[str, list[str]]]] = {}
    splits = {split: [str(p) for p in prepared.files(split)] for split in ("recTrain", "recVal")}
    inputs = [p for files in splits.values() for p in files]
    res = config.resources
    choices = {source: generator_checkpoint(ctx, source, log_fn) for source in sources}
    for choice in filter(None, choices.values()):  # refuse before any k-space is synthesized
        require_realistic(ctx, choice, log_fn)
    for source in sources:
        choice = choices[source]
        model_config = config.generators[source].model if source in config.generators else {}
        spec = SourceSpec(checkpoint=choice.checkpoint) if choice else SourceSpec(source, model_config)
        shards[source] = {}
        for draw in sorted({synthesis_draw(source, seed) for seed in seeds}):
            plan = plan_synthesis(spec, inputs, ctx.cache / "synthesis", draw, prepared.key)
            run_synthesis(
                plan,
                use_gpu=res.gpus_per_trial > 0,
                num_actors=res.synthesis_actors,
                cpus_per_actor=res.synthesis_cpus,
                resources=res.synthesis_custom,
                log_fn=log_fn,
            )
            shards[source][draw] = {
                split: [str(plan.shard_path(p)) for p in files] for split, files in splits.items()
            }
    return shards
