"""PhaseGen's complex residual U-Net: predicts the complex noise from [z_t, magnitude] and the timestep.

Layout of the published network (SPEC section 5): per encoder level one residual block that changes
the width plus ``blocks`` residual blocks, dropout in the encoder, spectral pooling; a bottleneck block
doubling the widest level; per decoder level a spectral upsampling + 3x3 convolution and one residual
block on [skip, upsampled]; a final 1x1 convolution. Unlike the public code every residual block
(bottleneck included) receives the sinusoidal time embedding, and there is one U-Net, not two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from phaselab.nn.complex_layers import (
    ComplexBatchNorm2d,
    ComplexConv2d,
    ComplexDropout,
    ComplexLinear,
    SplitPReLU,
    spectral_pool,
    spectral_resize,
    to_complex,
    to_split,
)

PAPER_FEATURES = (16, 32, 64, 128, 256)


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) timestep indices -> (B, dim) real [sin, cos] features at geometric frequencies (Vaswani)."""
    if dim % 2:
        raise ValueError(f"time embedding dim must be even, got {dim}")
    freqs = torch.exp(-math.log(10000.0) * torch.arange(dim // 2, device=timesteps.device) / (dim // 2))
    angles = timesteps.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-dropout, + time shift, conv-BN-dropout, + (projected) input, PReLU."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, dropout: float, kernel_size: int):
        super().__init__()
        self.conv1 = ComplexConv2d(in_channels, out_channels, kernel_size, bias=False)
        self.norm1 = ComplexBatchNorm2d(out_channels)
        self.act1 = SplitPReLU(out_channels)
        self.time = ComplexLinear(time_dim, out_channels)
        self.conv2 = ComplexConv2d(out_channels, out_channels, kernel_size, bias=False)
        self.norm2 = ComplexBatchNorm2d(out_channels)
        self.drop = ComplexDropout(dropout)
        self.act2 = SplitPReLU(out_channels)
        # the public network projects the input with a full-size convolution when the width changes
        self.skip = (
            ComplexConv2d(in_channels, out_channels, kernel_size, bias=False)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act1(self.norm1(self.conv1(x))))
        h = h + to_split(self.time(time)[:, :, None, None])
        h = self.drop(self.norm2(self.conv2(h)))
        return self.act2(h + self.skip(x))


class ComplexUNet(nn.Module):
    """(B, in_channels, H, W) complex + (B,) timesteps -> (B, out_channels, H, W) complex.

    Inside, feature maps are split real tensors (see phaselab.nn.complex_layers).

    H and W must be divisible by 2 ** len(features) (one spectral pooling per level, then the
    bottleneck), e.g. 256 for the paper's five levels.
    """

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 1,
        features: Sequence[int] = PAPER_FEATURES,
        blocks: int = 3,
        dropout: float = 0.2,
        time_dim: int = 256,
        kernel_size: int = 3,
    ):
        super().__init__()
        features = [int(f) for f in features]
        if not features or min(features) < 1 or blocks < 0:
            raise ValueError(f"need >= 1 positive features and blocks >= 0, got {features}, {blocks}")
        self.time_dim = time_dim
        self.levels = len(features)

        def block(c_in: int, c_out: int, p: float) -> ResidualBlock:
            return ResidualBlock(c_in, c_out, time_dim, p, kernel_size)

        self.encoder = nn.ModuleList()
        c_in = in_channels
        for f in features:
            self.encoder.append(
                nn.ModuleList([block(c_in, f, dropout)] + [block(f, f, dropout) for _ in range(blocks)])
            )
            c_in = f
        self.bottleneck = block(features[-1], 2 * features[-1], dropout)
        self.up_convs = nn.ModuleList()
        self.decoder = nn.ModuleList()
        c_in = 2 * features[-1]
        for f in reversed(features):
            self.up_convs.append(ComplexConv2d(c_in, f, kernel_size))
            self.decoder.append(block(2 * f, f, 0.0))
            c_in = f
        self.head = ComplexConv2d(features[0], out_channels, 1)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        factor = 2**self.levels
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by {factor}")
        # the embedding enters the complex linear layers as a real-valued (zero imaginary) vector
        time = F.silu(sinusoidal_embedding(timesteps, self.time_dim)).to(torch.complex64)
        x = to_split(x)
        skips = []
        for level in self.encoder:
            for res in level:
                x = res(x, time)
            skips.append(x)
            x = spectral_pool(x)
        x = self.bottleneck(x, time)
        for up_conv, res, skip in zip(self.up_convs, self.decoder, reversed(skips), strict=True):
            x = up_conv(spectral_resize(x, tuple(skip.shape[-2:])))
            x = res(torch.cat([skip, x], dim=1), time)
        return to_complex(self.head(x))
