"""Complex-valued layers shared by PhaseGen's diffusion U-Net and the complex reconstruction U-Net:
convolution, linear, split PReLU / ReLU, whitening batch norm, dropout, spectral pooling.

Representation: weights are complex64 parameters (W = A + iB counts as one complex parameter; only the
batch-norm gamma and the PReLU slopes are real). Feature maps travel in *split* layout, a real tensor
(B, 2C, H, W) holding the C real parts then the C imaginary parts (:func:`to_split`, :func:`to_complex`),
so that a complex convolution is ONE real convolution with the block weight [[A, -B], [B, A]]: on CPU
that is ~3x faster than torch's complex conv2d (three real convolutions plus strided copies). Everything
runs in float32: bf16 autocast does not cover complex parameters, so networks built from these layers run
in float32 (PhaseGen samples in float32; the complex reconstruction U-Net turns autocast off).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from phaselab.mri.geometry import fourier_resize


def to_split(z: torch.Tensor) -> torch.Tensor:
    """Complex (B, C, H, W) -> real (B, 2C, H, W) = [real parts, imaginary parts]."""
    return torch.cat([z.real, z.imag], dim=1)


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """Real split (B, 2C, H, W) -> complex64 (B, C, H, W)."""
    re, im = x.chunk(2, dim=1)
    return torch.complex(re.float(), im.float())


def _complex_he_(weight: torch.Tensor, fan_in: int) -> None:
    """Complex He init (Trabelsi et al. 2018): Rayleigh modulus, uniform phase, E|W|^2 = 2 / fan_in."""
    with torch.no_grad():
        std = 1.0 / math.sqrt(fan_in)  # per real and imaginary part
        weight.copy_(torch.complex(torch.randn(weight.shape) * std, torch.randn(weight.shape) * std))


class ComplexConv2d(nn.Module):
    """(A + iB)(x + iy) = (Ax - By) + i(Bx + Ay), zero 'same' padding (odd kernels); split layout in/out."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.padding = kernel_size // 2
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(shape, dtype=torch.complex64))
        _complex_he_(self.weight, in_channels * kernel_size**2)
        self.bias = nn.Parameter(torch.zeros(out_channels, dtype=torch.complex64)) if bias else None

    def block_weight(self) -> torch.Tensor:
        """The real (2 out, 2 in, k, k) weight [[A, -B], [B, A]] acting on split tensors."""
        a, b = self.weight.real, self.weight.imag
        return torch.cat([torch.cat([a, -b], dim=1), torch.cat([b, a], dim=1)], dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else torch.cat([self.bias.real, self.bias.imag])
        return F.conv2d(x, self.block_weight(), bias, padding=self.padding)


class ComplexLinear(nn.Module):
    """y = W x + b with complex W, b, on complex (B, in) tensors (real input = zero imaginary part)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=torch.complex64))
        _complex_he_(self.weight, in_features)
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=torch.complex64)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.complex64), self.weight, self.bias)


class SplitPReLU(nn.PReLU):
    """PReLU on the real and on the imaginary part separately (per channel, own slope for each part)."""

    def __init__(self, channels: int, init: float = 0.25):
        super().__init__(2 * channels, init)  # on split tensors: slopes of the real parts, then imaginary


class SplitReLU(nn.ReLU):
    """ReLU on the real and on the imaginary part separately (CReLU, Trabelsi et al. 2018; k-Strip's
    ``relu``): on split tensors that is a plain ReLU."""


class ComplexBatchNorm2d(nn.Module):
    """Complex batch norm (Trabelsi et al. 2018) on split tensors: whiten (re, im) with the inverse square
    root of its per-channel 2x2 covariance, then a learnable symmetric 2x2 ``gamma`` and complex ``beta``.

    Training uses batch statistics and updates running ones (momentum, unbiased covariance, like torch's
    BatchNorm); eval uses the running ones. ``gamma`` starts at the identity, so a fresh layer outputs
    zero-mean features with identity covariance (Var re = Var im = 1, re and im uncorrelated).
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        # gamma as (g_rr, g_ri, g_ii) of [[g_rr, g_ri], [g_ri, g_ii]]; running_cov as (V_rr, V_ri, V_ii)
        self.gamma = nn.Parameter(torch.tensor([1.0, 0.0, 1.0]).repeat(channels, 1))
        self.beta = nn.Parameter(torch.zeros(channels, dtype=torch.complex64))
        self.register_buffer("running_mean", torch.zeros(channels, dtype=torch.complex64))
        self.register_buffer("running_cov", torch.tensor([1.0, 0.0, 1.0]).repeat(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = x.chunk(2, dim=1)
        if self.training:
            mean_re, mean_im = re.mean(dim=(0, 2, 3)), im.mean(dim=(0, 2, 3))
            re, im = re - mean_re[:, None, None], im - mean_im[:, None, None]
            v_rr, v_ri, v_ii = (re * re).mean((0, 2, 3)), (re * im).mean((0, 2, 3)), (im * im).mean((0, 2, 3))
            with torch.no_grad():
                n = re.numel() // re.shape[1]
                unbiased = torch.stack([v_rr, v_ri, v_ii], dim=1) * (n / max(n - 1, 1))
                self.running_mean.lerp_(torch.complex(mean_re, mean_im), self.momentum)
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
        w_rr, w_ri, w_ii = (
            w[:, None, None] for w in ((v_ii + s) * inv_st, -v_ri * inv_st, (v_rr + s) * inv_st)
        )
        white_re, white_im = w_rr * re + w_ri * im, w_ri * re + w_ii * im
        g_rr, g_ri, g_ii = (g[:, None, None] for g in self.gamma.unbind(dim=1))
        out_re = g_rr * white_re + g_ri * white_im + self.beta.real[:, None, None]
        out_im = g_ri * white_re + g_ii * white_im + self.beta.imag[:, None, None]
        return torch.cat([out_re, out_im], dim=1)


class ComplexDropout(nn.Module):
    """Zeroes whole complex values of split tensors: one Bernoulli mask for the real and imaginary part.

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
        b, c2, h, w = x.shape
        keep = torch.rand((b, 1, c2 // 2, h, w), generator=self.generator, device=x.device) >= self.p
        mask = (keep / (1.0 - self.p)).expand(b, 2, c2 // 2, h, w).reshape(b, c2, h, w)
        return x * mask


def set_dropout_generator(module: nn.Module, generator: torch.Generator | None) -> None:
    for layer in module.modules():
        if isinstance(layer, ComplexDropout):
            layer.generator = generator


def spectral_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a split tensor (B, 2C, H, W) by cropping / zero-padding each channel's centred k-space.

    Values are kept (not energy): cropping a band-limited image gives exactly its samples (spectral
    pooling, Rippel et al. 2015); zero-padding is band-limited interpolation.
    """
    return to_split(fourier_resize(to_complex(x), size))


def spectral_pool(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Downsample a split tensor by ``factor`` with :func:`spectral_resize`."""
    return spectral_resize(x, (x.shape[-2] // factor, x.shape[-1] // factor))


def count_parameters(module: nn.Module) -> dict[str, int]:
    """Parameter counts: complex parameters, real parameters, and the total as torch counts it
    (one per complex number) and as real numbers (two per complex number)."""
    complex_n = sum(p.numel() for p in module.parameters() if p.is_complex())
    real_n = sum(p.numel() for p in module.parameters() if not p.is_complex())
    return {
        "complex": complex_n,
        "real": real_n,
        "total": complex_n + real_n,
        "real_equivalent": 2 * complex_n + real_n,
    }
