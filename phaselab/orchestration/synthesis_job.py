"""Ray Data job: synthesize k-space shards with one actor per GPU (or CPU actors), skipping finished shards."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from phaselab.synthesis import SynthesisPlan, synthesize_volume

log = logging.getLogger(__name__)


class ShardSynthesizer:
    """Callable class for ``map_batches``: holds the phase source (a model, for trained generators)."""

    def __init__(
        self, source_name: str, source_config: dict, checkpoint: str | None, out_dir: str, seed: int
    ):
        import torch

        from phaselab.generators import create_phase_source, load_phase_source

        if checkpoint:
            self.source = load_phase_source(checkpoint)
        else:
            self.source = create_phase_source(source_name, **source_config)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if hasattr(self.source, "to"):
            self.source.to(self.device)
        self.out_dir = Path(out_dir)
        self.seed = seed

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shards, seconds = [], []
        for prepared in batch["input"]:
            shard = self.out_dir / f"{Path(str(prepared)).stem}.h5"
            start = time.perf_counter()
            if not shard.exists():  # idempotent: a rerun or a retried task skips finished shards
                synthesize_volume(
                    self.source, str(prepared), shard, self.seed, extra_attrs={"phaselab_device": self.device}
                )
            shards.append(str(shard))
            seconds.append(time.perf_counter() - start)
        return {"shard": np.array(shards), "seconds": np.array(seconds)}


def run_synthesis(
    plan: SynthesisPlan,
    *,
    use_gpu: bool = False,
    num_actors: int = 1,
    cpus_per_actor: float = 0.5,
    log_fn: Callable[[str], None] = print,
) -> list[Path]:
    """Run (or finish) a synthesis plan through Ray Data; returns the shard paths in input order."""
    import ray

    if plan.is_complete():
        log_fn(f"synthesis {plan.source_name}: cached in {plan.out_dir}")
        return plan.shards()
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    pending = plan.pending()
    start = time.perf_counter()
    if pending:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        dataset = ray.data.from_items([{"input": p} for p in pending]).map_batches(
            ShardSynthesizer,
            fn_constructor_kwargs={
                "source_name": plan.source_name,
                "source_config": plan.source_config,
                "checkpoint": plan.checkpoint,
                "out_dir": str(plan.out_dir),
                "seed": plan.seed,
            },
            batch_size=1,
            num_gpus=1 if use_gpu else 0,
            num_cpus=cpus_per_actor,
            compute=ray.data.ActorPoolStrategy(size=max(1, min(num_actors, len(pending)))),
        )
        done = 0
        for _row in dataset.iter_rows():
            done += 1
            if done % 10 == 0 or done == len(pending):
                log_fn(f"synthesis {plan.source_name}: {done}/{len(pending)} volumes")
    plan.write_manifest({"seconds": round(time.perf_counter() - start, 2)})
    log_fn(f"synthesis {plan.source_name}: {len(plan.inputs)} shards in {plan.out_dir}")
    return plan.shards()
