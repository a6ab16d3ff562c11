"""Phantom slices and volumes: one patient's anatomy and phase rendered to a noisy complex image."""

from typing import NamedTuple

import numpy as np

from phaselab.data.phantoms.anatomy import _brain, _Canvas, _draw_anatomy, _frame, _knee, _texture
from phaselab.data.phantoms.phase import (
    _CHI,
    _FATTY,
    _OFFSET,
    PHASE_EDGE,
    _anatomy_phase,
    _draw_phase,
    _mix,
    _smooth_phase,
)

KINDS = ("knee", "brain")
# std of the complex noise at 256 x 256 relative to the brightest tissue; coarser grids average more
# signal per pixel, so their default noise is lower in proportion to the size
NOISE_AT_256 = 0.012
_KIND_CODE = {"knee": 1, "brain": 2}


class PhantomSlice(NamedTuple):
    """One slice; ``image`` includes noise, the other arrays are noise-free."""

    image: np.ndarray  # complex64 (H, W)
    magnitude: np.ndarray  # float32 (H, W), noise-free |image|
    phase: np.ndarray  # float32 (H, W), noise-free phase in (-pi, pi]
    anatomy_phase: np.ndarray  # float32 (H, W), tissue offsets + susceptibility part of the phase (rad)
    labels: np.ndarray  # uint8 (H, W), dominant tissue per pixel, see TISSUES


class PhantomVolume(NamedTuple):
    """One patient: arrays (S, H, W); ``kspace = fft2c(image)`` (centered, orthonormal)."""

    kspace: np.ndarray  # complex64
    image: np.ndarray  # complex64, with noise
    phase: np.ndarray  # float32, noise-free phase
    magnitude: np.ndarray  # float32, noise-free magnitude
    labels: np.ndarray  # uint8
    anatomy_phase: np.ndarray  # float32


def _slice_position(index: int, slices: int) -> float:
    """Slice position in the slab, in normalized units; the slab spans at most [-0.5, 0.5]."""
    return (index - (slices - 1) / 2) * min(0.12, 1.0 / max(slices - 1, 1))


def _patient(kind: str, seed: int, patient_index: int) -> tuple[dict, dict]:
    rng = np.random.default_rng([seed, _KIND_CODE[kind], patient_index])
    return _draw_anatomy(kind, rng), _draw_phase(rng)


def _render(
    kind: str, size: int, anatomy: dict, phase: dict, z: float, noise_rng, noise: float
) -> PhantomSlice:
    f = _frame(size, anatomy["rotation"], anatomy["shift"], anatomy["scale"])
    canvas = _Canvas((size, size))
    (_knee if kind == "knee" else _brain)(anatomy, f, z, canvas)
    fractions = canvas.f

    offsets = _OFFSET * np.where(_FATTY, phase["fat_shift"], phase["contrast"])
    micro = _texture(anatomy["micro"], f, z)
    anatomy_phase = phase["micro"] * micro + _anatomy_phase(
        _mix(offsets, fractions), _mix(_CHI, fractions), phase["rad_per_ppm"], PHASE_EDGE / f.px
    )
    smooth, shading = _smooth_phase(phase, f, z)
    texture = 1 + 0.05 * _texture(anatomy["texture"], f, z)
    magnitude = _mix(anatomy["intensity"], fractions) * texture * shading
    clean_phase = np.angle(np.exp(1j * (smooth + anatomy_phase)))
    clean = magnitude * np.exp(1j * clean_phase)
    image = clean + noise * (noise_rng.normal(size=clean.shape) + 1j * noise_rng.normal(size=clean.shape))
    return PhantomSlice(
        image=image.astype(np.complex64),
        magnitude=magnitude.astype(np.float32),
        phase=clean_phase.astype(np.float32),
        anatomy_phase=anatomy_phase.astype(np.float32),
        labels=fractions.argmax(0).astype(np.uint8),
    )


# ---- public API ----------------------------------------------------------------------------------


def _check(kind: str, size: int, slices: int, noise: float | None) -> float:
    """Validate the common arguments; returns the noise level to use."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if size < 32:
        raise ValueError(f"size must be >= 32 pixels, got {size}")
    if slices < 1:
        raise ValueError(f"slices must be >= 1, got {slices}")
    if noise is None:
        return NOISE_AT_256 * size / 256
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    return float(noise)


def make_phantom_slice(
    kind: str,
    size: int,
    *,
    seed: int,
    patient_index: int,
    slice_index: int,
    slices: int,
    noise: float | None = None,
) -> PhantomSlice:
    """Slice ``slice_index`` of ``slices`` of one patient; identical to that slice of its volume."""
    noise = _check(kind, size, slices, noise)
    if not 0 <= slice_index < slices:
        raise ValueError(f"slice_index must be in [0, {slices}), got {slice_index}")
    anatomy, phase = _patient(kind, seed, patient_index)
    noise_rng = np.random.default_rng([seed, _KIND_CODE[kind], patient_index, 1, slice_index])
    return _render(kind, size, anatomy, phase, _slice_position(slice_index, slices), noise_rng, noise)


def make_phantom_volume(
    kind: str, size: int, slices: int, seed: int, patient_index: int, noise: float | None = None
) -> PhantomVolume:
    """All slices of one phantom patient; deterministic in (kind, size, slices, seed, patient_index, noise).

    ``noise`` is the std of the real and of the imaginary Gaussian noise added to the image, relative
    to the nominal brightest tissue (intensity ~1); None: ``NOISE_AT_256 * size / 256``. Outside the
    object the phase is then uniform.
    """
    noise = _check(kind, size, slices, noise)
    if patient_index < 0 or seed < 0:
        raise ValueError(f"seed and patient_index must be >= 0, got {seed}, {patient_index}")
    anatomy, phase = _patient(kind, seed, patient_index)
    parts = [
        _render(
            kind,
            size,
            anatomy,
            phase,
            _slice_position(s, slices),
            np.random.default_rng([seed, _KIND_CODE[kind], patient_index, 1, s]),
            noise,
        )  # fmt: skip
        for s in range(slices)
    ]
    image = np.stack([p.image for p in parts])
    # centered orthonormal FFT, as phaselab.mri.fft.fft2c (kept in numpy: the HDF5 layer is numpy)
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return PhantomVolume(
        kspace=kspace.astype(np.complex64),
        image=image,
        phase=np.stack([p.phase for p in parts]),
        magnitude=np.stack([p.magnitude for p in parts]),
        labels=np.stack([p.labels for p in parts]),
        anatomy_phase=np.stack([p.anatomy_phase for p in parts]),
    )
