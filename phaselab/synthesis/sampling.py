"""The one way a phase is drawn for a volume: per-slice seeds, batched calls, checked output."""

from __future__ import annotations

import hashlib

import torch

from phaselab.generators.base import PhaseSource


def slice_seed(seed: int, volume_name: str, slice_index: int) -> int:
    """A per-slice seed that does not depend on batching or on which worker handles the slice."""
    digest = hashlib.sha256(f"{seed}:{volume_name}:{slice_index}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def sample_phase(
    source: PhaseSource,
    magnitude: torch.Tensor,
    seeds: list[int],
    *,
    true_phase: torch.Tensor | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Phase (S, H, W) float32 on the CPU for magnitudes (S, H, W), slice i drawn with ``seeds[i]``.

    Slices go to ``source`` in batches of ``batch_size`` on ``device``; by the phase-source contract the
    result does not depend on the batching. ``true_phase`` is passed through (only ``gt`` reads it).
    """
    if len(seeds) != magnitude.shape[0]:
        raise ValueError(f"got {len(seeds)} seeds for {magnitude.shape[0]} slices")
    phases = []
    for start in range(0, magnitude.shape[0], batch_size):
        stop = start + batch_size
        truth = None if true_phase is None else true_phase[start:stop].to(device)
        with torch.no_grad():
            phase = source.sample(magnitude[start:stop].to(device), seed=seeds[start:stop], true_phase=truth)
        phases.append(phase.float().cpu())
    phase = torch.cat(phases)
    if phase.shape != magnitude.shape or not torch.isfinite(phase).all():
        raise RuntimeError(f"phase source {source.name!r} returned a bad phase {tuple(phase.shape)}")
    return phase
