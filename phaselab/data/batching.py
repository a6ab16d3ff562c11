"""Deterministic data order: the batch of a training step is a pure function of (seed, step)."""

import numpy as np
import torch


def batch_indices(num_items: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of the global batch for ``step``: a pure function of (seed, step).

    Samples are drawn without replacement from one permutation per epoch (keyed by (seed, epoch)); a
    batch may straddle two epochs. A resumed run therefore sees exactly the uninterrupted run's batches.
    """
    if num_items < 1 or batch_size < 1:
        raise ValueError(f"need num_items >= 1 and batch_size >= 1, got {num_items}, {batch_size}")
    positions = np.arange(step * batch_size, (step + 1) * batch_size)
    epochs = positions // num_items
    perms = {int(e): np.random.default_rng([seed, int(e)]).permutation(num_items) for e in np.unique(epochs)}
    return torch.tensor([perms[int(e)][p % num_items] for e, p in zip(epochs, positions, strict=True)])


def steps_per_epoch(num_items: int, batch_size: int) -> int:
    """Optimizer steps that see each item once (at least one)."""
    return max(1, -(-num_items // batch_size))


def epochs_to_steps(epochs: float, num_items: int, batch_size: int) -> int:
    """Training length in steps for ``epochs`` passes over ``num_items`` items: a preset written in
    epochs means the same at demo scale (48 slices) and at paper scale (25,000)."""
    if epochs <= 0:
        raise ValueError(f"epochs must be > 0, got {epochs}")
    return max(1, round(epochs * steps_per_epoch(num_items, batch_size)))
