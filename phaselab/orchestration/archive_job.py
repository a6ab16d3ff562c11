"""Ray Data job: synthesize a magnitude-only archive's volumes on actors (one per GPU, or CPU actors)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from phaselab.data.magnitude import MagnitudeInput
from phaselab.magnitude_synthesis import SourceSpec, synthesize_input


class ArchiveSynthesizer:
    """Callable class for ``map_batches``: builds the phase source once per actor (a model, if trained)."""

    def __init__(self, spec: dict[str, Any], out_dir: str, settings: dict[str, Any]):
        import torch

        self.source = SourceSpec(**spec).build()
        self.device = "cuda" if torch.cuda.is_available() and hasattr(self.source, "to") else "cpu"
        if self.device != "cpu":
            self.source.to(self.device)
        self.out_dir = Path(out_dir)
        self.settings = settings

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs, seconds = [], []
        for encoded in batch["item"]:
            item = json.loads(str(encoded))
            item = MagnitudeInput(item["name"], tuple(map(Path, item["files"])), item["format"])
            out = self.out_dir / f"{item.name}.h5"
            start = time.perf_counter()
            if not out.exists():  # a retried task skips what it already wrote
                synthesize_input(self.source, item, self.out_dir, self.settings, self.device)
            outputs.append(str(out))
            seconds.append(time.perf_counter() - start)
        return {"output": np.array(outputs), "seconds": np.array(seconds)}


def run_archive_synthesis(
    items: list[MagnitudeInput],
    spec: SourceSpec,
    out_dir: Path,
    settings: dict[str, Any],
    *,
    num_actors: int = 1,
    cpus_per_actor: float = 0.5,
    log_fn: Callable[[str], None] = print,
) -> list[Path]:
    """Write every item's output through Ray Data (joins Ray if it runs, else starts a local one)."""
    import ray

    from phaselab.orchestration.ray_runtime import init_ray

    if not ray.is_initialized():
        init_ray(type("RayConfig", (), {"ray_address": None})(), log_fn=log_fn)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if use_gpu:
        num_actors = max(num_actors, int(ray.cluster_resources()["GPU"]))
    rows = [
        {"item": json.dumps({"name": i.name, "files": [str(f) for f in i.files], "format": i.source_format})}
        for i in items
    ]
    # One block per volume, one task in flight per actor: volumes spread over all actors.
    blocks = ray.data.from_items(rows, override_num_blocks=len(rows))
    dataset = blocks.map_batches(
        ArchiveSynthesizer,
        fn_constructor_kwargs={
            "spec": {"name": spec.name, "config": spec.config, "checkpoint": spec.checkpoint},
            "out_dir": str(out_dir),
            "settings": settings,
        },
        batch_size=1,
        num_gpus=1 if use_gpu else 0,
        num_cpus=cpus_per_actor,
        compute=ray.data.ActorPoolStrategy(
            size=max(1, min(num_actors, len(items))), max_tasks_in_flight_per_actor=1
        ),
    )
    written = []
    for row in dataset.iter_rows():
        written.append(Path(row["output"]))
        log_fn(
            f"[{len(written)}/{len(items)}] {Path(row['output']).name} ({float(row['seconds']):.2f} s, ray)"
        )
    order = {f"{i.name}.h5": k for k, i in enumerate(items)}
    return sorted(written, key=lambda p: order[p.name])
