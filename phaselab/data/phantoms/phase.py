"""Phantom phase: tissue offsets and susceptibility (they follow the anatomy) plus B0, coil and global phase
(smooth, patient-specific, independent of the anatomy)."""

import math

import numpy as np

from phaselab.data.phantoms.anatomy import FAT, MARROW, TISSUES, _Frame

# width (normalized units, the image spans 2) over which phase changes at tissue boundaries: ~2
# pixels at 256 x 256, so phase gradients scale with the image size as measured on real data
PHASE_EDGE = 0.016
# Per tissue (index = label): phase offset in rad (fat and marrow are scaled by the patient's fat
# shift, the rest by its tissue-contrast factor); susceptibility in ppm relative to water (air +9,
# cortical bone -2.2, fat +0.6, venous blood +0.45).
_OFFSET = np.array([0.0, 1.0, 0.0, 0.0, 0.9, 0.35, -0.45, 0.3, -0.6, 0.4, -0.35, 0.0, 0.8])
_CHI = np.array([9.0, 0.6, 0.0, -2.2, 0.5, -0.1, 0.0, -0.1, 0.0, 0.0, -0.05, 9.0, 0.45])
_FATTY = np.isin(np.arange(len(TISSUES)), [FAT, MARROW])


def _draw_phase(rng: np.random.Generator) -> dict:
    u = rng.uniform
    return {
        "fat_shift": u(1.1, 1.6),  # chemical shift of fat at the echo time, rad
        "contrast": u(0.9, 1.3),
        "rad_per_ppm": u(0.18, 0.3),  # field strength x echo time
        "b0": rng.normal(0, [0.3, 0.3, 0.15, 0.15, 0.15]),  # x, y, x^2, xy, y^2
        "b0_drift": rng.normal(0, 0.15, 5),  # change of the B0 terms through the slab
        "coil": (u(0, 2 * math.pi), u(1.5, 2.0), u(0.6, 1.1), u(0.4, 0.9)),  # angle, distance, phase, shading
        "global": u(-math.pi, math.pi),
        "micro": 0.0,  # rad per unit of tissue microstructure (iron, myelin, fibres)
    }


def _mix(per_tissue: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Fraction-weighted sum of a per-tissue property, (T,) x (T, H, W) -> (H, W)."""
    return np.einsum("t,thw->hw", per_tissue, fractions, optimize=False)


def _anatomy_phase(offset: np.ndarray, chi: np.ndarray, rad_per_ppm: float, edge: float) -> np.ndarray:
    """Tissue offsets (rad) plus the dipole field of the susceptibility map chi (ppm), B0 along the
    rows (y), both smoothed by a Gaussian of ``edge`` pixels (a fixed physical width)."""
    h, w = chi.shape
    # mirror padding keeps the FFT's periodic copies from touching the object
    pad = ((h // 2, h // 2), (w // 2, w // 2))
    ky = np.fft.fftfreq(2 * (h // 2) + h)[:, None]
    kx = np.fft.fftfreq(2 * (w // 2) + w)[None, :]
    k2 = kx**2 + ky**2
    dipole = np.where(k2 > 0, 1 / 3 - ky**2 / np.where(k2 > 0, k2, 1), 0.0)
    spectrum = np.fft.fft2(np.pad(offset, pad, mode="reflect"))
    spectrum += rad_per_ppm * dipole * np.fft.fft2(np.pad(chi, pad, mode="reflect"))
    spectrum *= np.exp(-2 * math.pi**2 * edge**2 * k2)
    return np.fft.ifft2(spectrum).real[h // 2 : h // 2 + h, w // 2 : w // 2 + w]


def _smooth_phase(q: dict, f: _Frame, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy-independent phase (B0 polynomial + coil + global) and the coil's intensity shading."""
    x, y = f.x[None, :], f.x[:, None]
    coeff = q["b0"] + z * q["b0_drift"]
    b0 = coeff[0] * x + coeff[1] * y + coeff[2] * x**2 + coeff[3] * x * y + coeff[4] * y**2
    angle, distance, strength, falloff = q["coil"]
    centre = distance * np.exp(1j * (angle + 0.3 * z))
    offset = (x + 1j * y) - centre
    coil = strength * np.angle(offset * np.exp(-1j * np.angle(-centre)))
    shading = (distance / np.abs(offset)) ** falloff
    return b0 + coil + q["global"] + 0.3 * z, shading
