"""Phase maps as angles and as complex images: wrapping, atan2, and magnitude x e^{i phase} -> k-space.

Every phase source supplies only phase; the complex image and its k-space are built here, from the
caller's magnitude, so no generator can change the magnitude.
"""

import math

import torch

from phaselab.mri.fft import fft2c


def wrap_phase(phase: torch.Tensor) -> torch.Tensor:
    """Wrap to (-pi, pi]; values already in range are returned bit-for-bit."""
    wrapped = math.pi - torch.remainder(math.pi - phase, 2 * math.pi)
    # remainder may round up to exactly 2*pi, which would give -pi
    wrapped = torch.where(wrapped <= -math.pi, torch.full_like(wrapped, math.pi), wrapped)
    inside = (phase > -math.pi) & (phase <= math.pi)
    return torch.where(inside, phase, wrapped)


def phase_of(image: torch.Tensor) -> torch.Tensor:
    """``atan2(imag, real)`` in (-pi, pi]: torch.angle, its -pi (negative real, imag -0.0) mapped to pi."""
    phase = torch.angle(image)
    return torch.where(phase == -math.pi, torch.full_like(phase, math.pi), phase)


def synthesize_image(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Complex64 ``magnitude * exp(i phase)``; its modulus equals the magnitude up to float32 rounding."""
    if magnitude.shape != phase.shape:
        raise ValueError(f"magnitude {tuple(magnitude.shape)} and phase {tuple(phase.shape)} differ in shape")
    if magnitude.is_complex() or phase.is_complex():
        raise ValueError("magnitude and phase must be real tensors")
    return torch.polar(magnitude.float(), phase.to(dtype=torch.float32, device=magnitude.device))


def synthesize_kspace(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal k-space of :func:`synthesize_image`."""
    return fft2c(synthesize_image(magnitude, phase))
