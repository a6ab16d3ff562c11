"""The variance-exploding SDE of the first study and its denoising score-matching loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# s(x_t, sigma, y): noisy encoding (B, 2, H, W), sigma (B,), magnitude (B, 1, H, W) -> score (B, 2, H, W)
ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class VESDE:
    """dx = sqrt(d sigma^2 / dt) dw with sigma(t) = sigma_min (sigma_max / sigma_min)^t, t in [eps, 1].

    ``sigma_max`` should be about the largest distance between training examples (Song & Ermon 2020):
    378 for (cos, sin) encodings at 256x256; proportionally smaller for small demo images.
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


def dsm_loss(
    score_fn: ScoreFn, x0: torch.Tensor, cond: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Per-slice denoising score matching loss mean ||sigma s(x0 + sigma z, sigma, y) + z||^2 (B,).

    Averaged over pixels and channels (not summed) so that it reads ~1 for a zero score at any size.
    The condition ``cond`` (clean magnitude) is never noised.
    """
    s = sigma[:, None, None, None]
    score = score_fn(x0 + s * noise, sigma, cond)
    return (s * score + noise).pow(2).flatten(1).mean(dim=1)
