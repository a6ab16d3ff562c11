"""Ray Data job: k-space shards with one actor per GPU (or CPU actors), skipping finished shards."""

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
        import ray
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
        self.node_id = ray.get_runtime_context().get_node_id()  # which node made a shard (multi-node runs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shards, seconds, nodes = [], [], []
        for prepared in batch["input"]:
            shard = self.out_dir / f"{Path(str(prepared)).stem}.h5"
            start = time.perf_counter()
            if not shard.exists():  # idempotent: a rerun or a retried task skips finished shards
                attrs = {"phaselab_device": self.device, "phaselab_node_id": self.node_id}
                synthesize_volume(self.source, str(prepared), shard, self.seed, extra_attrs=attrs)
            shards.append(str(shard))
            seconds.append(time.perf_counter() - start)
            nodes.append(self.node_id)
        return {"shard": np.array(shards), "seconds": np.array(seconds), "node_id": np.array(nodes)}


def run_synthesis(
    plan: SynthesisPlan,
    *,
    use_gpu: bool = False,
    num_actors: int = 1,
    cpus_per_actor: float = 0.5,
    resources: dict[str, float] | None = None,
    log_fn: Callable[[str], None] = print,
) -> list[Path]:
    """Run (or finish) a synthesis plan through Ray Data; returns the shard paths in input order.

    ``num_actors`` actors (one per GPU with ``use_gpu``) each need ``cpus_per_actor`` CPUs plus the
    custom Ray ``resources`` (e.g. ``{"fake_gpu": 1}``, or a node-type label to pin the job).
    """
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
        actors = max(1, min(num_actors, len(pending)))
        if actors > 1:  # start the whole pool before dispatching, so volumes spread over all actors
            context.wait_for_min_actors_s = 900  # an autoscaling cluster may need minutes for GPU nodes
        # One block per volume: each volume is its own task, handed to the least busy actor.
        items = ray.data.from_items([{"input": p} for p in pending], override_num_blocks=len(pending))
        dataset = items.map_batches(
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
            resources=resources or None,
            compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
        )
        nodes = set()
        for done, row in enumerate(dataset.iter_rows(), 1):
            nodes.add(str(row["node_id"]))
            if done % 10 == 0 or done == len(pending):
                log_fn(f"synthesis {plan.source_name}: {done}/{len(pending)} volumes")
        log_fn(f"synthesis {plan.source_name}: {len(pending)} volumes on {len(nodes)} node(s)")
    plan.write_manifest({"seconds": round(time.perf_counter() - start, 2)})
    log_fn(f"synthesis {plan.source_name}: {len(plan.inputs)} shards in {plan.out_dir}")
    return plan.shards()
