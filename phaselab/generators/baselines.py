"""Untrained phase sources (SPEC section 3): gt, zero, iid_gaussian, smooth, sinusoid."""

import math

import torch

from phaselab.generators.base import (
    PhaseSource,
    SliceSeed,
    check_magnitude,
    register_phase_source,
    slice_generators,
)
from phaselab.mri.phase import wrap_phase


@register_phase_source("gt")
class AcquiredPhase(PhaseSource):
    """The acquired phase: the oracle upper bound. Needs ``true_phase``."""

    stochastic = False

    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_magnitude(magnitude)
        if true_phase is None:
            raise ValueError("phase source 'gt' needs true_phase")
        if true_phase.shape != magnitude.shape:
            raise ValueError(
                f"true_phase {tuple(true_phase.shape)} does not match magnitude {tuple(magnitude.shape)}"
            )
        return wrap_phase(true_phase.to(dtype=torch.float32, device=magnitude.device))


@register_phase_source("zero")
class ZeroPhase(PhaseSource):
    """Phase 0: what the FFT of a magnitude image amounts to."""

    stochastic = False

    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_magnitude(magnitude)
        return torch.zeros(magnitude.shape, dtype=torch.float32, device=magnitude.device)


def _per_slice(magnitude: torch.Tensor, seed: SliceSeed, draw) -> torch.Tensor:
    """Stack ``draw(generator, index)`` over slices; drawn on CPU so results do not depend on the device."""
    check_magnitude(magnitude)
    generators = slice_generators(seed, magnitude.shape[0])
    if not generators:
        return torch.zeros(magnitude.shape, dtype=torch.float32, device=magnitude.device)
    phase = torch.stack([draw(g, i) for i, g in enumerate(generators)])
    return wrap_phase(phase).to(magnitude.device)


@register_phase_source("iid_gaussian")
class IidGaussianPhase(PhaseSource):
    """Independent N(0, sigma^2) radians per pixel, wrapped (the first study's code's 'smooth phase')."""

    def __init__(self, sigma: float = 1.0):
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        super().__init__(sigma=float(sigma))

    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        shape = tuple(magnitude.shape[-2:])
        sigma = self.config["sigma"]
        return _per_slice(magnitude, seed, lambda g, _: sigma * torch.randn(shape, generator=g))


def gaussian_random_field(
    shape: tuple[int, int], correlation: float, generator: torch.Generator
) -> torch.Tensor:
    """Zero-mean, unit-std smooth field: white noise convolved with a Gaussian kernel.

    The kernel's standard deviation along each axis is ``correlation`` times that axis' size. The
    noise is filtered on a grid twice as large and then cropped, so the field is not periodic.
    """
    h, w = shape
    noise = torch.randn((2 * h, 2 * w), generator=generator, dtype=torch.float64)
    fy = torch.fft.fftfreq(2 * h, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(2 * w, dtype=torch.float64)[None, :]
    # Fourier transform of a Gaussian kernel with std (correlation * size) pixels
    kernel = torch.exp(-2 * math.pi**2 * ((correlation * h * fy) ** 2 + (correlation * w * fx) ** 2))
    field = torch.fft.ifft2(torch.fft.fft2(noise) * kernel).real[h // 2 : h // 2 + h, w // 2 : w // 2 + w]
    field = field - field.mean()
    return (field / field.std().clamp_min(1e-12)).float()


@register_phase_source("smooth")
class SmoothPhase(PhaseSource):
    """A smooth random phase like B0 / coil phase: Gaussian random field + linear ramp + global offset.

    ``correlation``: kernel width as a fraction of the image size; ``amplitude``: std of the field
    (rad); ``ramp``: the ramp's total change across the image along each axis is drawn from
    U(-ramp, ramp) rad; ``global_offset``: add a constant drawn from U(-pi, pi). Wrapped.
    """

    def __init__(
        self, correlation: float = 0.25, amplitude: float = 0.6, ramp: float = 1.0, global_offset: bool = True
    ):
        if correlation <= 0 or amplitude < 0 or ramp < 0:
            raise ValueError("correlation must be > 0, amplitude and ramp >= 0")
        super().__init__(
            correlation=float(correlation),
            amplitude=float(amplitude),
            ramp=float(ramp),
            global_offset=bool(global_offset),
        )

    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        h, w = magnitude.shape[-2:]
        y = (torch.arange(h, dtype=torch.float32) / h - 0.5)[:, None]
        x = (torch.arange(w, dtype=torch.float32) / w - 0.5)[None, :]
        c = self.config

        def draw(g: torch.Generator, _: int) -> torch.Tensor:
            field = c["amplitude"] * gaussian_random_field((h, w), c["correlation"], g)
            slopes = c["ramp"] * (2 * torch.rand(2, generator=g) - 1)
            offset = (2 * torch.rand((), generator=g) - 1) * math.pi if c["global_offset"] else 0.0
            return field + slopes[0] * y + slopes[1] * x + offset

        return _per_slice(magnitude, seed, draw)


def minmax_normalized(magnitude: torch.Tensor) -> torch.Tensor:
    """Per-slice (M - min) / (max - min); a constant slice maps to zeros."""
    low = magnitude.amin(dim=(-2, -1), keepdim=True)
    span = magnitude.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (magnitude - low) / span.clamp_min(torch.finfo(magnitude.dtype).tiny), 0.0)


@register_phase_source("sinusoid")
class SinusoidPhase(PhaseSource):
    """The second study's baseline: (sin(2 pi x / W) + cos(2 pi y / H)) * M_hat + N(0, noise^2), wrapped.

    x is the column index, y the row index, M_hat the per-slice min-max normalized magnitude.
    """

    def __init__(self, noise: float = 0.05):
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        super().__init__(noise=float(noise))

    def sample(
        self, magnitude: torch.Tensor, *, seed: SliceSeed, true_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_magnitude(magnitude)
        h, w = magnitude.shape[-2:]
        y = torch.arange(h, dtype=torch.float32)[:, None]
        x = torch.arange(w, dtype=torch.float32)[None, :]
        pattern = torch.sin(2 * math.pi * x / w) + torch.cos(2 * math.pi * y / h)
        m_hat = minmax_normalized(magnitude.detach().float().cpu())
        noise = self.config["noise"]
        return _per_slice(
            magnitude, seed, lambda g, i: pattern * m_hat[i] + noise * torch.randn((h, w), generator=g)
        )
