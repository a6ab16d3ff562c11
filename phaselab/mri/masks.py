"""Cartesian undersampling masks over k-space columns (the phase-encode direction), with their true acceleration."""

from typing import NamedTuple

import numpy as np
import torch


class Mask(NamedTuple):
    """Sampled k-space columns and what they amount to."""

    columns: torch.Tensor  # (W,) bool, True where a column is acquired
    num_acs: int  # fully sampled centre (autocalibration) columns
    acceleration: float  # nominal acceleration the mask was asked for
    effective_acceleration: float  # W / number of acquired columns


def acs_start(width: int, num_acs: int) -> int:
    """First centre column, using fastMRI's convention so that the DC column (W//2) is inside the block."""
    return (width - num_acs + 1) // 2


def _finish(columns: np.ndarray, num_acs: int, acceleration: float) -> Mask:
    columns_t = torch.from_numpy(np.asarray(columns, dtype=bool).copy())
    return Mask(columns_t, num_acs, float(acceleration), columns_t.numel() / int(columns_t.sum()))


def equispaced_mask(
    width: int, acceleration: int, num_acs: int, offset: int | None = None, seed: int | None = None
) -> Mask:
    """Exactly ``num_acs`` centre columns plus every ``acceleration``-th column from ``offset``.

    This is the studies' mask: the centre block is fixed in size, so the effective acceleration is
    below the nominal one; both are reported.
    """
    if acceleration < 1 or int(acceleration) != acceleration:
        raise ValueError(f"acceleration must be a positive integer, got {acceleration}")
    if not 0 <= num_acs <= width:
        raise ValueError(f"num_acs must be in [0, {width}], got {num_acs}")
    if offset is None:
        offset = int(np.random.default_rng(seed).integers(0, acceleration))
    if not 0 <= offset < acceleration:
        raise ValueError(f"offset must be in [0, {acceleration}), got {offset}")
    columns = np.zeros(width, dtype=bool)
    columns[offset::acceleration] = True
    start = acs_start(width, num_acs)
    columns[start : start + num_acs] = True
    return _finish(columns, num_acs, acceleration)
