"""Ray Data: synthesis tasks on actors (one per GPU, or CPU actors), for the grid and for archives alike.

Each actor builds its phase source once (a network, for trained generators); each task is one volume,
handed to the least busy actor. A task whose output exists is skipped, so a rerun or a retried task
finishes only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from phaselab.synthesis import SourceSpec, SynthesisPlan, SynthesisSettings, VolumeTask, run_task
from phaselab.synthesis.archive import synthesis_device


class SynthesisActor:
    """Callable class for ``map_batches``: holds the phase source; rows are JSON-encoded tasks."""

    def __init__(self, spec: dict[str, Any], settings: dict[str, Any]):
        import ray

        self.source = SourceSpec(**spec).build()
        self.device = synthesis_device(self.source)
        if self.device != "cpu":
            self.source.to(self.device)
        self.settings = SynthesisSettings.from_dict(settings)
        self.node_id = ray.get_runtime_context().get_node_id()  # which node made a file (multi-node runs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs, seconds, nodes = [], [], []
        for encoded in batch["task"]:
            task = VolumeTask.from_dict(json.loads(str(encoded)))
            start = time.perf_counter()
            if not Path(task.output).exists():  # idempotent: a rerun or a retried task skips it
                attrs = {"node_id": self.node_id}
                run_task(self.source, task, self.settings, self.device, extra_attrs=attrs)
            outputs.append(task.output)
            seconds.append(time.perf_counter() - start)
            nodes.append(self.node_id)
        return {"output": np.array(outputs), "seconds": np.array(seconds), "node_id": np.array(nodes)}


def run_tasks_on_ray(
    spec: SourceSpec,
    tasks: list[VolumeTask],
    settings: SynthesisSettings,
    log_fn: Callable[[str], None] = print,
    *,
    use_gpu: bool | None = None,
    num_actors: int | str = 1,
    cpus_per_actor: float = 0.5,
    resources: dict[str, float] | None = None,
) -> list[Path]:
    """Write every task's output through Ray Data; returns the outputs in task order.

    ``use_gpu=None`` takes one GPU per actor when the cluster has GPUs (and at least as many actors as
    GPUs). Actors need ``cpus_per_actor`` CPUs plus the custom Ray ``resources`` (e.g. a node-type label).
    Joins a running Ray, else starts a local one.
    """
    import ray

    from phaselab.orchestration.ray_runtime import init_ray

    if not tasks:
        return []
    init_ray(None, log_fn=log_fn)
    if use_gpu is None:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        use_gpu, num_actors = gpus > 0, max(num_actors, gpus)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Grow the pool as soon as every actor is busy (Ray's default, 175%, is unreachable with one volume
    # in flight per actor, and Ray Data warns about it on every synthesis)
    context.autoscaling_config.actor_pool_util_upscaling_threshold = 1.0
    actors = max(1, min(num_actors, len(tasks)))
    # Ask for every actor at once but start on the first one up: in a pipelined grid, trials may hold
    # some GPUs for hours, so the pool takes what is free and grows as trials finish (a fixed-size pool
    # would wait for all of them). One volume in flight per actor spreads volumes over the actors.
    pool = ray.data.ActorPoolStrategy(
        min_size=1, max_size=actors, initial_size=actors, max_tasks_in_flight_per_actor=1
    )
    rows = [{"task": json.dumps(t.as_dict())} for t in tasks]
    # One block per volume: each volume is its own task, handed to the least busy actor.
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        SynthesisActor,
        fn_constructor_kwargs={"spec": spec.as_dict(), "settings": dataclasses.asdict(settings)},
        batch_size=1,
        num_gpus=1 if use_gpu else 0,
        num_cpus=cpus_per_actor,
        resources=resources or None,
        compute=pool,
    )
    done, nodes = [], set()
    for row in dataset.iter_rows():
        done.append(str(row["output"]))
        nodes.add(str(row["node_id"]))
        if len(done) % 10 == 0 or len(done) == len(tasks):
            log_fn(f"synthesis: {len(done)}/{len(tasks)} volumes ({float(row['seconds']):.2f} s the last)")
    log_fn(f"synthesis: {len(tasks)} volumes on {len(nodes)} node(s)")
    return [Path(t.output) for t in tasks]


def actors_for(num_actors: int | str, volumes: int, use_gpu: bool, resources: dict[str, float] | None) -> int:
    """How many synthesis actors: a number as given; ``"auto"``: every GPU of the cluster (or every unit
    of the custom resources an actor asks for) when synthesis runs on GPUs or custom resources, else 1.
    Never more than the volumes to write. Ray must be initialized."""
    if num_actors != "auto":
        return int(num_actors)
    import ray

    total = ray.cluster_resources()
    fits = [int(total.get(name, 0) // amount) for name, amount in (resources or {}).items() if amount > 0]
    if use_gpu:
        fits.append(int(total.get("GPU", 0)))
    return max(1, min([*fits, volumes]) if fits else 1)


def run_synthesis(
    plan: SynthesisPlan,
    *,
    use_gpu: bool = False,
    num_actors: int = 1,
    cpus_per_actor: float = 0.5,
    resources: dict[str, float] | None = None,
    log_fn: Callable[[str], None] = print,
) -> list[Path]:
    """Run (or finish) a grid synthesis plan through Ray Data; returns the shard paths in input order.
    ``num_actors="auto"``: see ``actors_for``."""
    if plan.is_complete():
        log_fn(f"synthesis {plan.source_name}: cached in {plan.out_dir}")
        return plan.shards()
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pending = plan.pending()
    if pending:
        log_fn(f"synthesis {plan.source_name}: {len(pending)} of {len(plan.tasks)} volumes to write")
    run_tasks_on_ray(
        plan.spec,
        pending,
        plan.settings,
        log_fn,
        use_gpu=use_gpu,
        num_actors=actors_for(num_actors, len(pending), use_gpu, resources),
        cpus_per_actor=cpus_per_actor,
        resources=resources,
    )
    plan.write_manifest(time.perf_counter() - start)
    log_fn(f"synthesis {plan.source_name}: {len(plan.tasks)} shards in {plan.out_dir}")
    return plan.shards()
