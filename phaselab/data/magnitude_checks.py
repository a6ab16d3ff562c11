"""Is it a magnitude image at all? Wrapped phase maps and noise pass every value check (finite, >= 0 once
rescaled, e.g. to 0..4095 or 8-bit), so they are told apart by how often neighbouring pixels jump.

An MR magnitude image is spatially smooth over a dark background: adjacent pixels rarely differ by more
than half its dynamic range, and only along sharp object edges. A wrapped phase map jumps by the whole
range at every 2-pi wrap, and its background (no signal, so a random phase) is noise; white noise jumps
everywhere (uniform noise: ~26% of neighbour pairs, Gaussian: ~10%).

Statistic (:func:`jump_fraction`): the fraction of horizontally and vertically adjacent pixel pairs, over
the whole volume, whose absolute difference exceeds 0.5 x (p99 - p1) of the volume. Measured with this
code (magnitude, then what must be rejected):

=============================================================  ==============
real magnitudes                                                 jump fraction
pydicom MR_small.dcm (64x64 int16)                              0.0031
nibabel example4d.nii.gz (EPI, 24 slices; worst slice 0.0055)   0.0042
gpuNUFFT img_brain_4ch.mat: root-sum-of-squares / coils 0..3    0.0025 / 0.0024-0.0030
ROMEO.jl small/Mag.nii, echoes 1..3 (in-brain crop, no
background: tissue texture and noise fill its narrow range)     0.0080 / 0.0121 / 0.0128
(not real: nibabel_0.dcm ramp pixels, a (256r + c) mod 4096
ramp with a jump every 16 rows, read as a plain DICOM)          0.029
gpuNUFFT RSS + complex noise, SNR (p99 / sigma) 5 / 3 / 2       0.005 / 0.020 / 0.059
-------------------------------------------------------------  --------------
phase maps and noise
gpuNUFFT coil phases 0..3, angle rescaled to 0..4095            0.128-0.157
ROMEO.jl small/Phase.nii, echoes 1..3 (in-brain crop, few
wraps: NOT separable by this statistic; refused as negative)    0.0015 / 0.012 / 0.015
uniform / Gaussian (128 +- 40) noise, 8-bit PNG                 0.26 / 0.098
|complex Gaussian| (Rayleigh) noise                             0.12
=============================================================  ==============

The limit, 5%, sits 4x above the worst real magnitude and above the (synthetic) ramp, and 2x below
Gaussian noise; a magnitude so noisy that it crosses it (SNR about 2) carries no usable anatomy. A phase
map without a noise background and with few wraps (ROMEO's in-brain crop) looks as smooth as a
magnitude and passes when rescaled to non-negative values: this check catches what is noise-like.

Phase map or noise? Noise jumps everywhere; a phase map has smooth regions (the object between wraps).
So a volume over the limit with at least 5% of its 8x8 blocks free of jumps is called a phase map
(gpuNUFFT coil phases: 23-39% of blocks; noise above: 0%).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from phaselab.data.errors import DataError

MAX_JUMP_FRACTION = 0.05  # above: not a magnitude image (see the measurements above)
MIN_SMOOTH_BLOCKS = 0.05  # over the limit and at least this share of smooth 8x8 blocks: a phase map
BLOCK = 8


def _jump_threshold(values: np.ndarray) -> float:
    low, high = np.percentile(values, [1, 99])
    spread = float(high - low)
    # a sparse image (>= 99% of one value, e.g. background) has p1 == p99: use its full range instead
    return 0.5 * (spread if spread > 0 else float(values.max() - values.min()))


def _jumps(image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent pairs of one (H, W) image differing by more than ``threshold``: across, down."""
    return np.abs(np.diff(image, axis=1)) > threshold, np.abs(np.diff(image, axis=0)) > threshold


def jump_fraction(values: np.ndarray) -> float:
    """Fraction of adjacent pixel pairs of a (S, H, W) volume differing by more than half its p1..p99."""
    threshold = _jump_threshold(values)
    jumps = pairs = 0
    for image in values:  # slice by slice: no volume-sized temporaries
        across, down = _jumps(image, threshold)
        jumps += int(across.sum()) + int(down.sum())
        pairs += across.size + down.size
    return jumps / max(pairs, 1)


def smooth_block_share(values: np.ndarray) -> float:
    """Share of the 8x8 blocks of a (S, H, W) volume without a jump (see :func:`jump_fraction`)."""
    threshold = _jump_threshold(values)
    smooth = blocks = 0
    for image in values:
        across, down = _jumps(image, threshold)
        touched = np.zeros(image.shape, bool)  # pixels at either end of a jump
        touched[:, :-1] |= across
        touched[:, 1:] |= across
        touched[:-1] |= down
        touched[1:] |= down
        rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
        tiles = touched[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK).any(axis=(1, 3))
        smooth += int((~tiles).sum())
        blocks += tiles.size
    return smooth / max(blocks, 1)


def check_looks_like_magnitude(values: np.ndarray, path: str | Path) -> None:
    """DataError naming ``path`` if the (S, H, W) values look like a phase map or noise, not a magnitude."""
    fraction = jump_fraction(values)
    if fraction <= MAX_JUMP_FRACTION:
        return
    measured = (
        f"{100 * fraction:.1f}% of adjacent pixels differ by more than half the intensity range; "
        f"MR magnitude images: under {100 * MAX_JUMP_FRACTION:.0f}%"
    )
    if smooth_block_share(values) >= MIN_SMOOTH_BLOCKS:
        raise DataError(path, f"looks like a phase map ({measured}: wraps and a noise background)")
    raise DataError(path, f"looks like noise, not an MR magnitude image ({measured}, everywhere)")
