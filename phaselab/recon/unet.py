"""fastMRI-style U-Net and the normalized complex U-Net that serves as the VarNet regularizer."""

import torch
from torch import nn
from torch.nn import functional as F


class ConvBlock(nn.Sequential):
    """(3x3 conv, instance norm, LeakyReLU 0.2, dropout) twice."""

    def __init__(self, in_chans: int, out_chans: int, drop_prob: float = 0.0):
        layers: list[nn.Module] = []
        for chans in (in_chans, out_chans):
            layers += [
                nn.Conv2d(chans, out_chans, kernel_size=3, padding=1, bias=False),
                nn.InstanceNorm2d(out_chans),
                nn.LeakyReLU(negative_slope=0.2, inplace=True),
                nn.Dropout2d(drop_prob),
            ]
        super().__init__(*layers)


class TransposeConvBlock(nn.Sequential):
    """2x upsampling: 2x2 stride-2 transposed conv, instance norm, LeakyReLU 0.2."""

    def __init__(self, in_chans: int, out_chans: int):
        super().__init__(
            nn.ConvTranspose2d(in_chans, out_chans, kernel_size=2, stride=2, bias=False),
            nn.InstanceNorm2d(out_chans),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
        )


class Unet(nn.Module):
    """U-Net (Ronneberger et al. 2015) as in fastMRI: average-pool down, transposed-conv up, skips."""

    def __init__(
        self, in_chans: int, out_chans: int, chans: int = 32, num_pool_layers: int = 4, drop_prob: float = 0.0
    ):
        super().__init__()
        self.down = nn.ModuleList([ConvBlock(in_chans, chans, drop_prob)])
        ch = chans
        for _ in range(num_pool_layers - 1):
            self.down.append(ConvBlock(ch, ch * 2, drop_prob))
            ch *= 2
        self.bottleneck = ConvBlock(ch, ch * 2, drop_prob)
        self.up_transpose = nn.ModuleList()
        self.up = nn.ModuleList()
        for _ in range(num_pool_layers):
            self.up_transpose.append(TransposeConvBlock(ch * 2, ch))
            self.up.append(ConvBlock(ch * 2, ch, drop_prob))
            ch //= 2
        self.head = nn.Conv2d(chans, out_chans, kernel_size=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> (N, out_chans, H, W)."""
        skips = []
        x = image
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.avg_pool2d(x, kernel_size=2, stride=2)
        x = self.bottleneck(x)
        for transpose, block in zip(self.up_transpose, self.up, strict=True):
            skip = skips.pop()
            x = transpose(x)
            # odd sizes lose a row/column when pooled: reflect-pad right/bottom to match the skip
            pad_w, pad_h = skip.shape[-1] - x.shape[-1], skip.shape[-2] - x.shape[-2]
            if pad_w or pad_h:
                x = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class NormUnet(nn.Module):
    """Complex image -> complex image through a 2-channel U-Net.

    Real and imaginary parts are normalized per sample (mean/std each), zero-padded to a multiple of
    2**pools so pooling is exact, and the output is un-padded and un-normalized.
    """

    def __init__(self, chans: int, num_pools: int, drop_prob: float = 0.0):
        super().__init__()
        self.unet = Unet(2, 2, chans=chans, num_pool_layers=num_pools, drop_prob=drop_prob)
        self.multiple = 2**num_pools

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, H, W) complex -> (B, H, W) complex64."""
        if not image.is_complex():
            raise ValueError(f"NormUnet expects a complex image, got {image.dtype}")
        x = torch.view_as_real(image).permute(0, 3, 1, 2)  # (B, 2, H, W)
        mean = x.mean(dim=(-2, -1), keepdim=True)
        std = x.std(dim=(-2, -1), keepdim=True)
        std = torch.where(std > 0, std, torch.ones_like(std))  # a constant input would give 0/0
        x = (x - mean) / std
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        x = self.unet(x)[..., pad_h // 2 : pad_h // 2 + h, pad_w // 2 : pad_w // 2 + w]
        x = x.float() * std + mean  # float32 again when the U-Net ran under bf16 autocast
        return torch.view_as_complex(x.permute(0, 2, 3, 1).contiguous())
