"""PhaseGen's downstream reconstruction network (SPEC section 6): a complex-valued residual U-Net, the
k-Strip architecture, with data consistency after every spectral pooling of the downsampling path.

What is published. The PhaseGen study (Rempe et al. 2025) reconstructs with "a complex valued neural
network based on the k-Strip architecture" plus "a data consistency layer in the down-sampling path"
(its code: TIO-IKIM/PhaseGen, 2_reconstruction/src/models/cResUNet.py; k-Strip: TIO-IKIM/k-Strip):

- input: the zero-filled image of the undersampled k-space, standardized per slice ((x - mean) / std,
  complex mean); output: one complex image whose magnitude is compared with the target;
- encoder, per level of ``features``: a residual block that changes the width, then spectral pooling
  (a centre crop of k-space) followed by data consistency, then ``blocks`` (the public ``length``)
  residual blocks at the pooled resolution; the skip is the first block's output; a bottleneck block
  doubles the widest level at the lowest resolution;
- residual block: 3x3 complex conv - batch norm - ReLU - dropout, conv - batch norm - dropout, plus the
  input (through a 3x3 complex conv when the width changes), ReLU; convolutions with bias;
- data consistency: in k-space at the pooled resolution, the equally pooled acquired samples replace the
  features' samples where they were acquired, the same samples in every channel, scaled;
- decoder, per level: spectral upsampling (zero-padded k-space) plus the high frequencies that level's
  pooling cut off (repeated to the width), a 3x3 conv halving the width, a residual block without
  dropout on [skip, upsampled]; a final 1x1 conv to one complex channel; no data consistency after the
  bottleneck or at the output (commented out in the public code);
- split ReLU (``relu`` = ReLU on real and imaginary parts), AdamW, dropout 0.1 / 0.4. The public config
  has features (4, 8, 16, 32) with ``length`` 1: 208,849 complex weights and 976 real batch-norm weights,
  the paper's "209k"; features (16, 32, 64, 128) with length 1 gives 3,334,081 + 3,904, its "3.3M". So the
  study counts a complex weight once (torch's ``numel``), as :data:`SIZES` does here through
  ``count_parameters(model)["total"]``; as real numbers (real + imaginary parts, ``"real_equivalent"``)
  the two sizes are about 0.42M and 6.7M.

What we chose where the public code is unclear or defective:

- batch norm: the whitening complex batch norm of :mod:`phaselab.nn` (a symmetric 2x2 gamma, a complex
  beta), not the public ``x - mean / sqrt(var)`` (SPEC section 5 lists that defect); this adds about 1%
  parameters (small 210,801, large 3,341,889 in torch's count);
- the scale of the acquired samples: they are standardized with the input's own mean and std, i.e. they
  are exactly the samples of the network input in the network's units; the public code instead rescales
  them by the ratio of the mean magnitudes of predicted and acquired samples over the whole batch;
- the pooled mask: a pooled column counts as acquired only if every column that spectral pooling folds
  into it was (the centre crop, plus the Nyquist column folded onto the first when the pooled width is
  even), so data consistency never writes a value the acquisition does not determine;
- sizes: any H, W >= 2 ** levels (each pooling halves, rounding down); the public code crops squares;
- the output is un-standardized (x std + mean) so that the image is in the data's units, and returned as
  its k-space: the VarNet's interface (:func:`phaselab.recon.varnet.VarNet.image` gives the magnitude);
- autocast is turned off inside: the complex layers run in float32 (bf16 does not cover them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from phaselab.mri.fft import fft2c, ifft2c
from phaselab.mri.geometry import fourier_resize
from phaselab.nn.complex_layers import (
    ComplexBatchNorm2d,
    ComplexConv2d,
    ComplexDropout,
    SplitReLU,
    spectral_pool,
    spectral_resize,
    to_complex,
    to_split,
)

SIZES: dict[str, tuple[int, ...]] = {"small": (4, 8, 16, 32), "large": (16, 32, 64, 128)}


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-dropout, conv-BN-dropout, + (projected) input, ReLU; split tensors in and out."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float, kernel_size: int = 3):
        super().__init__()
        self.conv1 = ComplexConv2d(in_channels, out_channels, kernel_size)
        self.norm1 = ComplexBatchNorm2d(out_channels)
        self.conv2 = ComplexConv2d(out_channels, out_channels, kernel_size)
        self.norm2 = ComplexBatchNorm2d(out_channels)
        self.drop = ComplexDropout(dropout)
        self.act = SplitReLU()
        self.skip = (
            ComplexConv2d(in_channels, out_channels, kernel_size, bias=False)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act(self.norm1(self.conv1(x))))
        h = self.drop(self.norm2(self.conv2(h)))
        return self.act(h + self.skip(x))


def pool_columns(columns: torch.Tensor, width: int) -> torch.Tensor:
    """Acquired columns (..., W) bool at a spectrally pooled ``width`` <= W.

    Pooling keeps the centred ``width`` columns and, for an even ``width``, adds the positive Nyquist
    column to the first one (see :func:`phaselab.mri.geometry.fourier_resize`); a pooled column is
    acquired when all the columns it is made of were.
    """
    n = columns.shape[-1]
    if width == n:
        return columns
    start = n // 2 - width // 2
    pooled = columns[..., start : start + width].clone()
    if width % 2 == 0:
        pooled[..., 0] &= columns[..., start + width]
    return pooled


def replace_acquired(kspace: torch.Tensor, reference: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Hard data consistency: ``kspace`` (B, C, H, W) with every channel's acquired columns (``columns``
    (B, W) bool) taken from ``reference`` (B, H, W)."""
    keep = columns[:, None, None, :]
    return torch.where(keep, reference[:, None], kspace)


class ComplexResUNet(nn.Module):
    """Masked k-space (B, H, W) + acquired columns -> reconstructed k-space (B, H, W), as the VarNet.

    ``features``: widths per level (:data:`SIZES`); ``blocks``: residual blocks after the pooling of each
    level; ``dropout``: in the encoder and bottleneck. See the module docstring for the architecture.
    """

    def __init__(
        self,
        features: Sequence[int] = SIZES["small"],
        blocks: int = 1,
        dropout: float = 0.1,
        kernel_size: int = 3,
    ):
        super().__init__()
        features = [int(f) for f in features]
        if not features or min(features) < 1 or blocks < 0:
            raise ValueError(f"need >= 1 positive features and blocks >= 0, got {features}, {blocks}")
        self.levels = len(features)
        self.encoder = nn.ModuleList()
        c_in = 1
        for f in features:
            level = [ResidualBlock(c_in, f, dropout, kernel_size)]
            level += [ResidualBlock(f, f, dropout, kernel_size) for _ in range(blocks)]
            self.encoder.append(nn.ModuleList(level))
            c_in = f
        self.bottleneck = ResidualBlock(features[-1], 2 * features[-1], dropout, kernel_size)
        self.up_convs = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for f in reversed(features):
            self.up_convs.append(ComplexConv2d(2 * f, f, kernel_size))
            self.decoder.append(ResidualBlock(2 * f, f, 0.0, kernel_size))
        self.head = ComplexConv2d(features[0], 1, 1)

    def forward(self, masked_kspace: torch.Tensor, mask_columns: torch.Tensor) -> torch.Tensor:
        """masked_kspace complex (B, H, W), mask_columns bool (B, W) or (W,) -> k-space complex64 (B, H, W)"""
        if not masked_kspace.is_complex() or masked_kspace.ndim != 3:
            shape, dtype = tuple(masked_kspace.shape), masked_kspace.dtype
            raise ValueError(f"masked_kspace must be complex (B, H, W), got {shape} {dtype}")
        batch, height, width = masked_kspace.shape
        mask = mask_columns.to(device=masked_kspace.device, dtype=torch.bool)
        if mask.shape[-1] != width or mask.ndim not in (1, 2):
            shape = (batch, height, width)
            raise ValueError(f"mask_columns {tuple(mask.shape)} does not fit k-space {shape}")
        if min(height, width) < 2**self.levels:
            raise ValueError(f"k-space {(height, width)} is too small for {self.levels} poolings")
        with torch.autocast(masked_kspace.device.type, enabled=False):
            return self._forward(masked_kspace.to(torch.complex64), mask.expand(batch, width))

    def _forward(self, kspace: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        image = ifft2c(kspace)
        mean = image.mean(dim=(-2, -1), keepdim=True)
        std = (image - mean).abs().square().mean(dim=(-2, -1), keepdim=True).sqrt()
        std = torch.where(std > 0, std, torch.ones_like(std))  # an empty acquisition would give 0/0
        reference = (image - mean) / std  # the network input; its pooled k-space is the DC reference
        x = to_split(reference[:, None])
        skips, cut_offs = [], []
        for level in self.encoder:
            x = level[0](x)
            pooled = spectral_pool(x)
            skips.append(x)
            cut_offs.append(x - spectral_resize(pooled, tuple(x.shape[-2:])))  # what pooling removed
            reference = fourier_resize(reference, tuple(pooled.shape[-2:]))
            columns = pool_columns(columns, pooled.shape[-1])
            x = self.data_consistency(pooled, fft2c(reference), columns)
            for block in level[1:]:
                x = block(x)
        x = self.bottleneck(x)
        for up_conv, block, skip, cut_off in zip(
            self.up_convs, self.decoder, reversed(skips), reversed(cut_offs), strict=True
        ):
            x = spectral_resize(x, tuple(skip.shape[-2:])) + _repeat_channels(cut_off, 2)
            x = block(torch.cat([skip, up_conv(x)], dim=1))
        out = to_complex(self.head(x))[:, 0] * std + mean
        return fft2c(out)

    @staticmethod
    def data_consistency(x: torch.Tensor, reference: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Split features (B, 2C, h, w) whose k-space takes ``reference`` (B, h, w) at acquired columns."""
        return to_split(ifft2c(replace_acquired(fft2c(to_complex(x)), reference, columns)))


def _repeat_channels(x: torch.Tensor, times: int) -> torch.Tensor:
    """Split (B, 2C, H, W) -> split (B, 2 times C, H, W): the complex channels repeated ``times`` times."""
    re, im = x.chunk(2, dim=1)
    return torch.cat([re] * times + [im] * times, dim=1)
