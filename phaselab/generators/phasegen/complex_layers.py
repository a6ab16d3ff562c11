"""Complex-valued layers for PhaseGen: convolution, linear, split PReLU, whitening batch norm, dropout,
spectral pooling.

Representation: activations and weights are torch complex64 tensors (a weight W = A + iB is one complex
parameter); only the batch-norm affine transform and the PReLU slopes are real. No bf16 autocast: it
does not cover complex ops, so these layers run in complex64 on every device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from phaselab.data.geometry import fourier_resize


def _complex_he_(weight: torch.Tensor, fan_in: int) -> None:
    """Complex He init (Trabelsi et al. 2018): Rayleigh modulus, uniform phase, E|W|^2 = 2 / fan_in."""
    with torch.no_grad():
        std = 1.0 / math.sqrt(fan_in)  # per real and imaginary part
        weight.copy_(torch.complex(torch.randn(weight.shape) * std, torch.randn(weight.shape) * std))


class ComplexConv2d(nn.Module):
    """(A + iB)(x + iy) = (Ax - By) + i(Bx + Ay) with zero 'same' padding (odd kernels)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, kernel_size, kernel_size, dtype=torch.complex64)
        )
        _complex_he_(self.weight, in_channels * kernel_size**2)
        self.bias = nn.Parameter(torch.zeros(out_channels, dtype=torch.complex64)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch evaluates complex convolutions with real convolutions (Gauss' three-product trick)
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class ComplexLinear(nn.Module):
    """y = W x + b with complex W, b."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=torch.complex64))
        _complex_he_(self.weight, in_features)
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=torch.complex64)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.complex64), self.weight, self.bias)


class SplitPReLU(nn.Module):
    """PReLU on the real and on the imaginary part separately, with per-channel slopes for each."""

    def __init__(self, channels: int, init: float = 0.25):
        super().__init__()
        self.real = nn.PReLU(channels, init)
        self.imag = nn.PReLU(channels, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.complex(self.real(x.real), self.imag(x.imag))


class ComplexBatchNorm2d(nn.Module):
    """Complex batch norm (Trabelsi et al. 2018): whiten (re, im) with the inverse square root of its
    per-channel 2x2 covariance, then a learnable symmetric 2x2 ``gamma`` and a complex ``beta``.

    Training uses batch statistics and updates running ones (momentum, unbiased covariance, as
    torch's BatchNorm); eval uses the running ones. ``gamma`` starts at the identity, so a fresh layer
    outputs zero-mean, identity-covariance features (Var re = Var im = 1, uncorrelated).
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        # gamma as (g_rr, g_ri, g_ii) of the symmetric matrix [[g_rr, g_ri], [g_ri, g_ii]]
        self.gamma = nn.Parameter(torch.tensor([1.0, 0.0, 1.0]).repeat(channels, 1))
        self.beta = nn.Parameter(torch.zeros(channels, dtype=torch.complex64))
        self.register_buffer("running_mean", torch.zeros(channels, dtype=torch.complex64))
        # running covariance as (V_rr, V_ri, V_ii)
        self.register_buffer("running_cov", torch.tensor([1.0, 0.0, 1.0]).repeat(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = x.real, x.imag
        if self.training:
            mean_re, mean_im = re.mean(dim=(0, 2, 3)), im.mean(dim=(0, 2, 3))
            re, im = re - mean_re[:, None, None], im - mean_im[:, None, None]
            v_rr, v_ri, v_ii = (re * re).mean((0, 2, 3)), (re * im).mean((0, 2, 3)), (im * im).mean((0, 2, 3))
            with torch.no_grad():
                n = x.numel() // x.shape[1]
                unbiased = torch.stack([v_rr, v_ri, v_ii], dim=1) * (n / max(n - 1, 1))
                self.running_mean.lerp_(torch.complex(mean_re, mean_im).detach(), self.momentum)
                self.running_cov.lerp_(unbiased, self.momentum)
        else:
            re = re - self.running_mean.real[:, None, None]
            im = im - self.running_mean.imag[:, None, None]
            v_rr, v_ri, v_ii = self.running_cov.unbind(dim=1)
        v_rr, v_ii = v_rr + self.eps, v_ii + self.eps
        # closed-form inverse square root of a 2x2 SPD matrix V: with s = sqrt(det V) and
        # t = sqrt(tr V + 2 s), V^(-1/2) = [[V_ii + s, -V_ri], [-V_ri, V_rr + s]] / (s t)
        s = torch.sqrt(v_rr * v_ii - v_ri * v_ri)
        inv_st = 1.0 / (s * torch.sqrt(v_rr + v_ii + 2 * s))
        w_rr, w_ri, w_ii = (v_ii + s) * inv_st, -v_ri * inv_st, (v_rr + s) * inv_st
        w_rr, w_ri, w_ii = w_rr[:, None, None], w_ri[:, None, None], w_ii[:, None, None]
        white_re, white_im = w_rr * re + w_ri * im, w_ri * re + w_ii * im
        g_rr, g_ri, g_ii = (g[:, None, None] for g in self.gamma.unbind(dim=1))
        out_re = g_rr * white_re + g_ri * white_im + self.beta.real[:, None, None]
        out_im = g_ri * white_re + g_ii * white_im + self.beta.imag[:, None, None]
        return torch.complex(out_re, out_im)


class ComplexDropout(nn.Module):
    """Zeroes whole complex values: one Bernoulli mask for the real and the imaginary part.

    ``generator`` (set by the training step, see :func:`set_dropout_generator`) makes the masks
    reproducible from the training seed and step; None uses torch's global generator.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.p
        return x * (keep / (1.0 - self.p))


def set_dropout_generator(module: nn.Module, generator: torch.Generator | None) -> None:
    for layer in module.modules():
        if isinstance(layer, ComplexDropout):
            layer.generator = generator


def spectral_pool(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Downsample (..., H, W) by ``factor`` by cropping the centred k-space (Rippel et al. 2015).

    Values are kept (not energy): a band-limited image pools to exactly its samples ``x[..., ::f, ::f]``.
    """
    return fourier_resize(x, (x.shape[-2] // factor, x.shape[-1] // factor))


def spectral_upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample (..., h, w) to ``size`` by zero-padding the centred k-space (band-limited interpolation)."""
    return fourier_resize(x, size)
