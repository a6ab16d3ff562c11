"""How much of the cluster a trial may use: a fractional GPU's share of CUDA memory, and how many
multi-worker trials the grid starts at once."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import torch


def memory_fraction(gpus: float) -> float | None:
    """The share of its GPU's memory a trial holding ``gpus`` may allocate: the fraction itself for
    0 < gpus < 1 (Ray packs 1/gpus trials on the GPU but does not limit their memory); None otherwise."""
    return float(gpus) if 0 < gpus < 1 else None


def cap_cuda_memory(gpus: float) -> float | None:
    """Cap this process's CUDA caching allocator to its fractional GPU's share (only where CUDA is
    available); returns the fraction set, or None when nothing was capped."""
    fraction = memory_fraction(gpus)
    if fraction is None or not torch.cuda.is_available():
        return None
    torch.cuda.set_per_process_memory_fraction(fraction, torch.cuda.current_device())
    return fraction


def assigned_gpus() -> float:
    """GPUs Ray assigned to the calling task or actor (0 outside Ray, e.g. an in-process trial)."""
    ray = sys.modules.get("ray")  # imported in Ray workers; never imported here for an in-process trial
    if ray is None or not ray.is_initialized():
        return 0.0
    try:
        assigned = ray.get_runtime_context().get_assigned_resources()
    except AssertionError:  # the driver (an in-process trial in a process that started Ray): no task
        return 0.0
    return float(assigned.get("GPU", 0.0))


def default_max_concurrent(res: Any, cluster: Mapping[str, float]) -> int | None:
    """``resources.max_concurrent_trials`` when unset: for multi-worker trials, as many as the cluster's
    GPUs (CPUs without GPUs) hold at once, at least one, so that the grid does not start a Ray Train run
    per trial that would wait for workers; single-worker trials are placed by Tune itself (None)."""
    if res.max_concurrent_trials is not None:
        return res.max_concurrent_trials
    if res.workers_per_trial <= 1:
        return None
    if res.gpus_per_trial > 0:
        available, per_trial = cluster.get("GPU", 0.0), res.gpus_per_trial * res.workers_per_trial
    else:
        available, per_trial = cluster.get("CPU", 0.0), res.cpus_per_trial * res.workers_per_trial
    return max(1, math.floor(available / per_trial + 1e-9))
