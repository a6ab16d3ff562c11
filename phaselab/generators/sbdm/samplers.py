"""Diffusion samplers as plain functions with one signature (k-diffusion style), and their sigma schedules.

Every sampler is ``sample_x(denoiser, x, sigmas, *, cond, generators, **options) -> x``:
``denoiser(x, sigma, cond)`` returns D(x; sigma) = x + sigma^2 * score (sigma is a (B,) tensor),
``x`` is the initial noise already scaled by ``sigmas[0]``, ``sigmas`` a decreasing schedule ending at
0, ``cond`` the magnitude (B, 1, H, W) and ``generators`` one CPU generator per slice for any noise a
sampler draws, so a slice's result does not depend on the rest of its batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Sampler(Protocol):
    def __call__(
        self,
        denoiser: Denoiser,
        x: torch.Tensor,
        sigmas: torch.Tensor,
        *,
        cond: torch.Tensor,
        generators: Sequence[torch.Generator],
        **options: float,
    ) -> torch.Tensor: ...


# ---- schedules ---------------------------------------------------------------------------------


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """EDM schedule: n noise levels from sigma_max to sigma_min, uniform in sigma^(1/rho), then 0."""
    if n < 1:
        raise ValueError(f"need at least one step, got {n}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def geometric_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """The VE-SDE discretization of score_sde: n levels geometric from sigma_max to sigma_min, then 0."""
    if n < 1:
        raise ValueError(f"need at least one step, got {n}")
    sigmas = torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64))
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def initial_noise(
    shape: tuple[int, ...],
    sigma_max: float,
    generators: Sequence[torch.Generator],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """sigma_max * N(0, I) of shape (B, *shape), slice i drawn from ``generators[i]``."""
    return float(sigma_max) * _slice_noise(generators, shape, torch.device(device))


def _slice_noise(
    generators: Sequence[torch.Generator], shape: tuple[int, ...], device: torch.device
) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)


def _level(sigma: float, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), sigma, dtype=torch.float32, device=x.device)


# ---- samplers ----------------------------------------------------------------------------------


@torch.no_grad()
def sample_euler(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: torch.Tensor,
    generators: Sequence[torch.Generator],
    **options: float,
) -> torch.Tensor:
    """Deterministic Euler steps of the probability-flow ODE dx/dsigma = (x - D) / sigma; n evaluations."""
    _no_options("euler", options)
    for sigma, nxt in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d = (x - denoiser(x, _level(sigma, x), cond)) / sigma
        x = x + (nxt - sigma) * d
    return x


@torch.no_grad()
def sample_heun(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: torch.Tensor,
    generators: Sequence[torch.Generator],
    **options: float,
) -> torch.Tensor:
    """EDM Algorithm 1 (deterministic Heun); 2 evaluations per step, 1 for the last step to sigma = 0."""
    _no_options("heun", options)
    for sigma, nxt in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d = (x - denoiser(x, _level(sigma, x), cond)) / sigma
        euler = x + (nxt - sigma) * d
        if nxt == 0:
            x = euler
        else:
            d_next = (euler - denoiser(euler, _level(nxt, x), cond)) / nxt
            x = x + (nxt - sigma) * 0.5 * (d + d_next)
    return x


@torch.no_grad()
def sample_pc(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: torch.Tensor,
    generators: Sequence[torch.Generator],
    snr: float = 0.075,
    corrector_steps: int = 1,
) -> torch.Tensor:
    """The study's predictor-corrector: Langevin corrector(s) then a reverse-diffusion predictor per level.

    As score_sde's ``pc_sampler`` (corrector first, noise-free mean at the end), except that the
    Langevin step size uses each slice's own score and noise norms instead of batch means, so that a
    slice's sample does not depend on its batch. (1 + corrector_steps) evaluations per level.
    """
    shape = tuple(x.shape[1:])
    mean = x
    for sigma, nxt in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        level = _level(sigma, x)
        for _ in range(int(corrector_steps)):
            score = (denoiser(x, level, cond) - x) / sigma**2
            noise = _slice_noise(generators, shape, x.device)
            ratio = noise.flatten(1).norm(dim=1) / score.flatten(1).norm(dim=1).clamp_min(1e-12)
            step = (2 * (snr * ratio) ** 2)[:, None, None, None]
            x = x + step * score + (2 * step).sqrt() * noise
        score = (denoiser(x, level, cond) - x) / sigma**2
        g2 = sigma**2 - nxt**2
        mean = x + g2 * score
        x = mean + math.sqrt(g2) * _slice_noise(generators, shape, x.device)
    return mean


SAMPLERS: dict[str, Sampler] = {"euler": sample_euler, "heun": sample_heun, "pc": sample_pc}


def get_sampler(name: str) -> Sampler:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name]


def evaluations_per_slice(name: str, steps: int, corrector_steps: int = 1) -> int:
    """Network evaluations a sampler makes for a schedule of ``steps`` levels (ending at 0)."""
    get_sampler(name)
    return {"euler": steps, "heun": 2 * steps - 1, "pc": steps * (1 + corrector_steps)}[name]


class CountingDenoiser:
    """Wraps a denoiser and counts its (batched) calls: network evaluations per slice."""

    def __init__(self, denoiser: Denoiser):
        self.denoiser = denoiser
        self.evaluations = 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        return self.denoiser(x, sigma, cond)


def _no_options(name: str, options: dict) -> None:
    # deterministic samplers accept the shared keywords of a config (e.g. snr) but nothing else
    unknown = set(options) - {"snr", "corrector_steps"}
    if unknown:
        raise TypeError(f"sampler {name!r} got unexpected options {sorted(unknown)}")
