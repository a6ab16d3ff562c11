"""Cartesian undersampling masks over k-space columns (phase-encode axis), with their true acceleration."""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

MASK_KINDS = ("equispaced", "random", "equispaced_fraction")

Seed = int | tuple[int, ...] | None


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
    sampled = int(columns_t.sum())
    effective = columns_t.numel() / sampled if sampled else float("inf")
    return Mask(columns_t, int(num_acs), float(acceleration), effective)


def _width_of(shape: int | Sequence[int]) -> int:
    """Number of columns of complex k-space of shape ``(..., H, W)`` (or a bare width)."""
    if isinstance(shape, int | np.integer):
        width = int(shape)
    else:
        if len(shape) == 0:
            raise ValueError("shape must have at least one dimension")
        width = int(shape[-1])
        # fastMRI's mask functions take the real view (..., H, W, 2) and read shape[-2]; passing that
        # here would silently mask the wrong axis, so refuse it.
        if width == 2 and len(shape) >= 3:
            raise ValueError(
                f"shape {tuple(shape)} ends in 2, which looks like fastMRI's real view (..., H, W, 2); "
                "pass the complex k-space shape (..., H, W)"
            )
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    return width


def _check_acceleration(acceleration: float) -> None:
    if not acceleration >= 1:
        raise ValueError(f"acceleration must be >= 1, got {acceleration}")


def _check_center_fraction(center_fraction: float) -> None:
    if not 0 <= center_fraction < 1:
        raise ValueError(f"center_fraction must be in [0, 1), got {center_fraction}")


def _center_columns(width: int, num_acs: int) -> np.ndarray:
    columns = np.zeros(width, dtype=bool)
    start = acs_start(width, num_acs)
    columns[start : start + num_acs] = True
    return columns


def _seeded_rng(seed: Seed) -> np.random.RandomState:
    """fastMRI seeds a legacy RandomState per call (``temp_seed``), so the same generator is used here."""
    return np.random.RandomState(seed)


def _draw_single_choice(rng: np.random.RandomState) -> None:
    # fastMRI's choose_acceleration picks one (center_fraction, acceleration) pair with
    # rng.randint(len(pairs)) before anything else. For one pair numpy consumes no state, but the call
    # is kept so that the draw sequence stays fastMRI's whatever numpy does.
    rng.randint(1)


def equispaced_mask(
    width: int, acceleration: int, num_acs: int, offset: int | None = None, seed: Seed = None
) -> Mask:
    """Exactly ``num_acs`` centre columns plus every ``acceleration``-th column from ``offset``.

    This is the studies' mask: the centre block is fixed in size, so the effective acceleration is
    below the nominal one; both are reported. ``offset`` is drawn from ``default_rng(seed)`` when None
    (``seed`` an int or a sequence of ints).
    """
    width = _width_of(width)
    if acceleration < 1 or int(acceleration) != acceleration:
        raise ValueError(f"acceleration must be a positive integer, got {acceleration}")
    acceleration = int(acceleration)
    if int(num_acs) != num_acs or not 0 <= num_acs <= width:
        raise ValueError(f"num_acs must be an integer in [0, {width}], got {num_acs}")
    num_acs = int(num_acs)
    if offset is None:
        offset = int(np.random.default_rng(seed).integers(0, acceleration))
    if not 0 <= offset < acceleration:
        raise ValueError(f"offset must be in [0, {acceleration}), got {offset}")
    columns = _center_columns(width, num_acs)
    columns[offset::acceleration] = True
    return _finish(columns, num_acs, acceleration)


def random_mask(shape: int | Sequence[int], center_fraction: float, acceleration: int, seed: Seed) -> Mask:
    """fastMRI's ``RandomMaskFunc([center_fraction], [acceleration])``, bit for bit.

    ``round(W * center_fraction)`` centre columns; every other column is kept with the probability
    that makes the expected count ``W / acceleration``. ``shape`` is the complex k-space shape
    ``(..., H, W)`` or the width. ``seed=None`` gives a different mask each call.
    """
    width = _width_of(shape)
    _check_center_fraction(center_fraction)
    _check_acceleration(acceleration)
    rng = _seeded_rng(seed)
    _draw_single_choice(rng)
    num_low = round(width * center_fraction)
    if num_low >= width:
        raise ValueError(f"center_fraction {center_fraction} leaves no outer columns of {width}")
    prob = (width / acceleration - num_low) / (width - num_low)
    columns = _center_columns(width, num_low) | (rng.uniform(size=width) < prob)
    return _finish(columns, num_low, acceleration)


def equispaced_fraction_mask(
    shape: int | Sequence[int],
    center_fraction: float,
    acceleration: int,
    seed: Seed,
    offset: int | None = None,
) -> Mask:
    """fastMRI's ``EquispacedMaskFractionFunc([center_fraction], [acceleration])``, bit for bit.

    The outer spacing is stretched so that the total count is about ``W / acceleration``; the rounded
    positions are not exactly equispaced (fastMRI issue #54), which is kept to match the public
    multi-coil data. ``offset`` is drawn from the seeded generator when None.
    """
    width = _width_of(shape)
    _check_center_fraction(center_fraction)
    _check_acceleration(acceleration)
    rng = _seeded_rng(seed)
    _draw_single_choice(rng)
    num_low = round(width * center_fraction)
    if num_low * acceleration >= width:
        raise ValueError(
            f"center_fraction * acceleration must be < 1 (got {num_low} centre columns of {width} "
            f"at acceleration {acceleration}): no columns would be left for the outer spacing"
        )
    # same expression and operation order as fastMRI, so the float spacing matches to the last bit
    adjusted_accel = (acceleration * (num_low - width)) / (num_low * acceleration - width)
    if offset is None:
        offset = rng.randint(0, high=round(adjusted_accel))
    elif not 0 <= offset < width:
        raise ValueError(f"offset must be in [0, {width}), got {offset}")
    outer = np.zeros(width, dtype=bool)
    outer[np.around(np.arange(offset, width - 1, adjusted_accel)).astype(np.uint)] = True
    return _finish(_center_columns(width, num_low) | outer, num_low, acceleration)


def mask_from_name(
    kind: str,
    shape: int | Sequence[int],
    acceleration: int,
    *,
    num_acs: int | None = None,
    center_fraction: float | None = None,
    seed: Seed = None,
    offset: int | None = None,
) -> Mask:
    """Build a mask by name, as sweeps configure it.

    ``equispaced`` takes ``num_acs`` (and an int or None seed); ``random`` and
    ``equispaced_fraction`` take ``center_fraction``.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")
    if kind == "equispaced":
        if num_acs is None or center_fraction is not None:
            raise ValueError("mask 'equispaced' needs num_acs (and no center_fraction)")
        return equispaced_mask(_width_of(shape), acceleration, num_acs, offset=offset, seed=seed)
    if center_fraction is None or num_acs is not None:
        raise ValueError(f"mask {kind!r} needs center_fraction (and no num_acs)")
    if kind == "random":
        if offset is not None:
            raise ValueError("mask 'random' takes no offset")
        return random_mask(shape, center_fraction, acceleration, seed)
    return equispaced_fraction_mask(shape, center_fraction, acceleration, seed, offset=offset)


def volume_seed(volume_name: str) -> tuple[int, ...]:
    """fastMRI's fixed validation mask seed of a volume: the code points of its file name."""
    return tuple(map(ord, volume_name))


def volume_mask(
    kind: str,
    width: int,
    acceleration: int,
    volume_name: str,
    *,
    num_acs: int | None = None,
    center_fraction: float | None = None,
) -> Mask:
    """The fixed test mask of one volume, seeded by its file name as fastMRI's validation does: every
    model is tested on the same sampling of a volume, and the volumes do not all share one offset."""
    return mask_from_name(
        kind,
        width,
        acceleration,
        num_acs=num_acs,
        center_fraction=center_fraction,
        seed=volume_seed(volume_name),
    )


def apply_mask(kspace: torch.Tensor, mask: Mask | torch.Tensor) -> torch.Tensor:
    """Zero the unsampled columns of ``kspace`` (..., H, W); returns a new tensor of the same dtype."""
    columns = mask.columns if isinstance(mask, Mask) else mask
    if columns.ndim != 1 or columns.shape[0] != kspace.shape[-1]:
        raise ValueError(
            f"mask has {tuple(columns.shape)} columns but k-space has width {kspace.shape[-1]} "
            f"(shape {tuple(kspace.shape)})"
        )
    # where() rather than a product so that non-finite values in skipped columns are also dropped
    keep = columns.to(device=kspace.device, dtype=torch.bool)
    return torch.where(keep, kspace, torch.zeros((), dtype=kspace.dtype, device=kspace.device))
