"""Complex DDPM with unit-modulus noise (PhaseGen): cosine schedule, forward process, eps loss, sampler.

The clean sample is the unit phasor z_0 = exp(i phase); the noise is eps = exp(i theta), theta ~ U(-pi, pi),
so E|eps|^2 = E|z_0|^2 = 1 and E|z_t|^2 = 1 at every t. Timesteps are indices 0..T-1 (index k is the
paper's t = k + 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (z_t (B,1,H,W), t (B,)) -> eps_hat


class CosineSchedule:
    """Nichol & Dhariwal's cosine schedule: abar(t) = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) * pi/2),
    betas clipped to <= 0.999 and abar recomputed from the clipped betas (float64)."""

    def __init__(self, timesteps: int = 1000, s: float = 0.008):
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        self.timesteps = timesteps
        grid = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((grid + s) / (1 + s) * math.pi / 2) ** 2
        self.betas = (1 - f[1:] / f[:-1]).clamp(0.0, 0.999)
        self.alpha_bars = torch.cumprod(1 - self.betas, dim=0)

    def coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(abar_t), sqrt(1 - abar_t) as float32 (B, 1, 1, 1) on t's device."""
        abar = self.alpha_bars.to(t.device)[t].float()[:, None, None, None]
        return abar.sqrt(), (1 - abar).sqrt()


def _phasor(uniform: torch.Tensor) -> torch.Tensor:
    """exp(i theta) with theta = (2u - 1) pi ~ U(-pi, pi) for u ~ U(0, 1)."""
    theta = (2 * uniform - 1) * math.pi
    return torch.polar(torch.ones_like(theta), theta)


def unit_phasor_noise(
    shape: Sequence[int], generator: torch.Generator, device: torch.device | str
) -> torch.Tensor:
    """exp(i theta), theta ~ U(-pi, pi), drawn on ``generator``'s device and made on ``device``."""
    return _phasor(torch.rand(tuple(shape), generator=generator, device=generator.device).to(device))


def slice_noise(
    generators: Sequence[torch.Generator], shape: Sequence[int], device: torch.device | str
) -> torch.Tensor:
    """(B, *shape) unit-phasor noise, slice i from (CPU) ``generators[i]``: independent of batch composition.

    Only the uniforms are drawn on the CPU; the phasor is formed on ``device``.
    """
    uniform = torch.stack([torch.rand(tuple(shape), generator=g) for g in generators])
    if torch.device(device).type == "cuda":
        # pinned + non_blocking: the copy does not wait for the network evaluation queued before it
        return _phasor(uniform.pin_memory().to(device, non_blocking=True))
    return _phasor(uniform.to(device))


def q_sample(z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule: CosineSchedule) -> torch.Tensor:
    """z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps for (B, 1, H, W) complex z_0, eps."""
    a, b = schedule.coefficients(t)
    return a * z0 + b * eps


def eps_mse(eps_hat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Complex L2 loss: mean |eps_hat - eps|^2 (the public code used L1)."""
    return (eps_hat - eps).abs().square().mean()


def sampling_timesteps(timesteps: int, steps: int | None = None) -> list[int]:
    """Descending timestep indices to visit: all T, or ``steps`` evenly spaced ones from T-1 down to 0."""
    if steps is None or steps >= timesteps:
        return list(range(timesteps - 1, -1, -1))
    if steps < 1:
        raise ValueError(f"sampling steps must be >= 1, got {steps}")
    picked = torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().long().unique()
    return sorted(picked.tolist(), reverse=True)


@torch.no_grad()
def sample_ancestral(
    eps_model: EpsModel,
    z: torch.Tensor,
    schedule: CosineSchedule,
    generators: Sequence[torch.Generator],
    steps: int | None = None,
) -> torch.Tensor:
    """Ancestral DDPM sampling from z = z_T (B, 1, H, W) complex; returns z_0.

    With a subset of timesteps (``steps``) the chain is the respaced DDPM of Nichol & Dhariwal: between
    visited indices t > s, alpha = abar_t / abar_s, beta = 1 - alpha and the posterior variance
    beta (1 - abar_s) / (1 - abar_t); with all T steps these are the usual DDPM coefficients. The
    per-step noise is unit-modulus like the forward noise, drawn per slice from ``generators``.
    """
    visit = sampling_timesteps(schedule.timesteps, steps)
    abars = schedule.alpha_bars.tolist()
    batch = z.shape[0]
    for i, t in enumerate(visit):
        abar_t = abars[t]
        abar_s = abars[visit[i + 1]] if i + 1 < len(visit) else 1.0
        alpha = abar_t / abar_s
        eps_hat = eps_model(z, torch.full((batch,), t, dtype=torch.long, device=z.device))
        # the CPU draws this step's noise while the device evaluates the network
        noise = slice_noise(generators, z.shape[1:], z.device) if i + 1 < len(visit) else None
        z = (z - (1 - alpha) / math.sqrt(1 - abar_t) * eps_hat) / math.sqrt(alpha)
        if noise is not None:
            z = z + math.sqrt((1 - alpha) * (1 - abar_s) / (1 - abar_t)) * noise
    return z
