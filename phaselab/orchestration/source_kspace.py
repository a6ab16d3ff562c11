"""Training k-space for each phase source of a sweep: learned generators first, then Ray Data synthesis."""

from __future__ import annotations

from collections.abc import Callable

from phaselab.orchestration.generator_runs import generator_checkpoint, require_realistic
from phaselab.orchestration.sweep import SweepContext
from phaselab.orchestration.synthesis_job import run_synthesis
from phaselab.synthesis import SourceSpec, plan_synthesis

SYNTHESIS_SEED = 0


def synthesize_sources(
    ctx: SweepContext, sources: list[str], log_fn: Callable[[str], None]
) -> dict[str, dict[str, list[str]]]:
    """recTrain + recVal k-space for each phase source. The validation set is synthetic too, as it
    would be for a magnitude-only archive; only recTest keeps the real k-space."""
    config, prepared = ctx.config, ctx.prepared
    shards: dict[str, dict[str, list[str]]] = {}
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
        plan = plan_synthesis(spec, inputs, ctx.cache / "synthesis", SYNTHESIS_SEED, prepared.key)
        run_synthesis(
            plan,
            use_gpu=res.gpus_per_trial > 0,
            num_actors=res.synthesis_actors,
            cpus_per_actor=res.synthesis_cpus,
            resources=res.synthesis_custom,
            log_fn=log_fn,
        )
        shards[source] = {split: [str(plan.shard_path(p)) for p in files] for split, files in splits.items()}
    return shards
