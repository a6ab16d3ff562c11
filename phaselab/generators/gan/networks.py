"""pix2pix networks: the U-Net generator with seeded dropout, and the PatchGAN discriminator.

Layer for layer as junyanz/pytorch-CycleGAN-and-pix2pix (``UnetGenerator``, ``NLayerDiscriminator``,
``init_weights('normal', 0.02)``), written as flat down/up lists instead of nested blocks so that the
dropout noise can be passed down explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

Norm = Literal["instance", "batch"]
# where dropout masks come from: one generator for the whole batch (training), one per slice
# (sampling, so a slice's output never depends on its batch), or None for no dropout
DropoutNoise = torch.Generator | Sequence[torch.Generator] | None


def norm_layer(norm: Norm, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        # pix2pix's instance norm: no affine parameters, no running statistics
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"norm must be 'instance' or 'batch', got {norm!r}")


def init_pix2pix_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix 'normal' init: conv weights N(0, 0.02), biases 0, batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def dropout(x: torch.Tensor, p: float, noise: DropoutNoise) -> torch.Tensor:
    """Inverted dropout with masks drawn from ``noise`` (see :data:`DropoutNoise`)."""
    if noise is None or p == 0.0:
        return x
    if isinstance(noise, torch.Generator):
        draws = torch.rand(x.shape, generator=noise, device=noise.device)
    else:
        if len(noise) != x.shape[0]:
            raise ValueError(f"got {len(noise)} dropout generators for a batch of {x.shape[0]}")
        draws = torch.stack([torch.rand(x.shape[1:], generator=g, device=g.device) for g in noise])
    keep = (draws.to(x.device) >= p).to(x.dtype)
    return x * keep / (1.0 - p)


class UNetGenerator(nn.Module):
    """pix2pix U-Net: ``levels`` stride-2 downsamplings to 1x1 at ``size`` (8 at 256), skips by concat.

    Down level i: [LeakyReLU(0.2)] Conv4x4/2 [Norm] (no activation before the first level, no norm at the
    outermost and innermost); up level i: ReLU ConvTranspose4x4/2 Norm [Dropout], the outermost ends in
    tanh. Dropout (p) follows the ``dropout_blocks`` up levels just outside the innermost, as pix2pix's
    three ``ngf*8`` middle blocks at 256x256.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        *,
        size: int = 256,
        ngf: int = 64,
        norm: Norm = "instance",
        dropout: float = 0.5,
        dropout_blocks: int = 3,
    ):
        super().__init__()
        levels = int(round(math.log2(size)))
        if size < 4 or 2**levels != size:
            raise ValueError(f"size must be a power of two >= 4, got {size}")
        self.levels, self.p = levels, float(dropout)
        use_bias = norm == "instance"  # batch norm has its own shift
        channels = [ngf * min(2**i, 8) for i in range(levels)]
        self.down = nn.ModuleList()
        for i, c in enumerate(channels):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if i == 0 else channels[i - 1], c, 4, 2, 1, bias=use_bias))
            if 0 < i < levels - 1:
                layers.append(norm_layer(norm, c))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i, c in enumerate(channels):
            inner = c if i == levels - 1 else 2 * c  # the innermost has no skip to concatenate
            if i == 0:
                layers = [nn.ReLU(), nn.ConvTranspose2d(inner, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                outer = channels[i - 1]
                layers = [
                    nn.ReLU(),
                    nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=use_bias),
                    norm_layer(norm, outer),
                ]
            self.up.append(nn.Sequential(*layers))
        self.dropout_levels = frozenset(range(max(1, levels - 1 - dropout_blocks), levels - 1))
        init_pix2pix_weights(self)

    def forward(self, x: torch.Tensor, noise: DropoutNoise = None) -> torch.Tensor:
        if x.shape[-1] % 2**self.levels or x.shape[-2] % 2**self.levels:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by 2**{self.levels}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(self.levels - 2, -1, -1):
            if i + 1 in self.dropout_levels:
                x = dropout(x, self.p, noise)
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return x


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN: ``n_layers`` stride-2 convs, one stride-1, then 1 logit per patch (70x70 at 3)."""

    def __init__(self, in_channels: int = 3, *, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance"):
        super().__init__()
        use_bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=use_bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_pix2pix_weights(self)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        """Patch logits (B, 1, h, w) for (B, in_channels, H, W) = (magnitude, encoding) pairs."""
        return self.model(pair)


def receptive_field(module: nn.Module) -> int:
    """Receptive field (pixels) of a plain stack of convolutions, from kernel sizes and strides."""
    field = 1
    for conv in reversed([m for m in module.modules() if isinstance(m, nn.Conv2d)]):
        field = field * conv.stride[0] + conv.dilation[0] * (conv.kernel_size[0] - 1) + 1 - conv.stride[0]
    return field
