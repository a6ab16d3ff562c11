"""The variance-exploding SDE of the first study, how the network becomes a denoiser, and the DSM loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

# F(x, sigma): the raw network on [noisy encoding (B, 2, H, W), magnitude (B, 1, H, W)] -> (B, 2, H, W)
Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class VESDE:
    """dx = sqrt(d sigma^2 / dt) dw with sigma(t) = sigma_min (sigma_max / sigma_min)^t, t in [eps, 1].

    ``sigma_max`` should be about the largest distance between training examples (Song & Ermon 2020,
    technique 1): for (cos, sin) encodings at most 2 sqrt(H W); ``SBDMPhaseSource`` measures it on the
    training data when configured as "auto".
    """

    sigma_min: float = 0.01
    sigma_max: float = 378.0
    eps: float = 1e-5
    num_steps: int = 1000  # N of the study's discretization (predictor-corrector sampling)

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if not 0 < self.eps < 1 or self.num_steps < 1:
            raise ValueError(f"need 0 < eps < 1 and num_steps >= 1, got {self.eps}, {self.num_steps}")

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def sample_times(self, batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """t ~ U(eps, 1), one per slice."""
        return self.eps + (1 - self.eps) * torch.rand(batch, generator=generator, device=device)


@dataclass(frozen=True)
class Preconditioning:
    """How the raw network F becomes the denoiser D(x; sigma) ~ E[x0 | x] (Karras et al. 2022, Table 1).

    ``"score_sde"`` is the study's parameterization: F's output divided by sigma is the score, so
    D = x + sigma^2 F / sigma; nothing keeps D on the data's scale at large sigma. ``"edm"`` wraps F in
    c_skip, c_out and c_in, so that F's input and its training target have unit variance at every noise
    level and D = c_skip x + c_out F(c_in x) stays on the data's scale (here: unit-length (cos, sin)).
    """

    kind: Literal["edm", "score_sde"] = "edm"
    sigma_data: float = 0.5  # rms of the data per channel (EDM's default; (cos, sin) data: 1/sqrt(2))

    def denoise(self, net: Network, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        s = sigma.to(x.dtype)[:, None, None, None]
        if self.kind == "score_sde":  # the network divides its output by sigma itself
            return x + s**2 * net(torch.cat([x, cond], dim=1), sigma).to(x.dtype)
        sd = self.sigma_data
        norm = (s**2 + sd**2).sqrt()
        raw = net(torch.cat([x / norm, cond], dim=1), sigma).to(x.dtype)
        return sd**2 / norm**2 * x + s * sd / norm * raw

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """lambda(sigma) of the denoising loss: 1 / c_out^2 for EDM (the network's target has unit variance
        at every sigma); 1 / sigma^2 for score_sde, which makes it the study's ||sigma s + z||^2."""
        if self.kind == "score_sde":
            return 1 / sigma**2
        sd = self.sigma_data
        return (sigma**2 + sd**2) / (sigma * sd) ** 2


def denoising_loss(
    net: Network,
    precond: Preconditioning,
    x0: torch.Tensor,
    cond: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    weighting: Preconditioning | None = None,
) -> torch.Tensor:
    """Per-slice lambda(sigma) * mean ||D(x0 + sigma z; sigma) - x0||^2 (B,), averaged over pixels and
    channels; the condition ``cond`` (clean magnitude) is never noised. ``weighting`` picks lambda
    (default: ``precond``'s): validation uses one fixed weighting so that losses of networks with other
    preconditionings or sigma ranges compare at the same noise levels.

    With the score_sde preconditioning this is the study's denoising score matching loss; it reads ~1
    for an untrained (zero-output) network at every noise level.
    """
    s = sigma[:, None, None, None]
    denoised = precond.denoise(net, x0 + s * noise, sigma, cond)
    weight = (weighting or precond).loss_weight(sigma)
    return weight * (denoised - x0).pow(2).flatten(1).mean(dim=1)


def largest_distance(x: torch.Tensor, max_items: int = 512, seed: int = 0) -> float:
    """The largest Euclidean distance between two items of ``x`` (N, ...): sigma_max of Song & Ermon's
    technique 1. Above ``max_items`` a seeded random subset is used (the maximum of a subset is a lower
    bound; the callers round up)."""
    flat = x.flatten(1).double()
    if flat.shape[0] > max_items:
        keep = torch.randperm(flat.shape[0], generator=torch.Generator().manual_seed(seed))[:max_items]
        flat = flat[keep]
    return float(torch.cdist(flat, flat).max())
