"""The Inception v3 of the FID (TensorFlow's 2015-12-05 graph), in plain torch, for a local weights file.

Same layers, layer names and TensorFlow-compatible details (average pools that ignore padding, a max
pool in the last block, TF 1.x bilinear resize to 299 x 299, inputs scaled by (x - 128) / 128) as the
ports that ship converted weights: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` and
torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` (the same state dict) load into it
unchanged. Written here so that FID needs neither torch-fidelity nor torchvision (PyPI's torchvision
is a CUDA build that does not load against a CPU-only torch).
"""

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 299


class _Conv(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool leaves the zero padding out of the mean
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = _Conv(c_in, 64, 1)
        self.branch5x5_1 = _Conv(c_in, 48, 1)
        self.branch5x5_2 = _Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _Conv(c_in, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, padding=1)
        self.branch_pool = _Conv(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        five = self.branch5x5_2(self.branch5x5_1(x))
        return torch.cat([self.branch1x1(x), five, double, self.branch_pool(_avg_pool(x))], 1)


class _BlockB(nn.Module):
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = _Conv(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = _Conv(c_in, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), double, F.max_pool2d(x, 3, stride=2)], 1)


class _BlockC(nn.Module):
    def __init__(self, c_in: int, c7: int):
        super().__init__()
        self.branch1x1 = _Conv(c_in, 192, 1)
        self.branch7x7_1 = _Conv(c_in, c7, 1)
        self.branch7x7_2 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _Conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _Conv(c_in, c7, 1)
        self.branch7x7dbl_2 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _Conv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _Conv(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), seven, double, self.branch_pool(_avg_pool(x))], 1)


class _BlockD(nn.Module):
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = _Conv(c_in, 192, 1)
        self.branch3x3_2 = _Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _Conv(c_in, 192, 1)
        self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_2(self.branch3x3_1(x))
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([three, seven, F.max_pool2d(x, 3, stride=2)], 1)


class _BlockE(nn.Module):
    def __init__(self, c_in: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool  # the TF graph's last block max-pools where the paper average-pools
        self.branch1x1 = _Conv(c_in, 320, 1)
        self.branch3x3_1 = _Conv(c_in, 384, 1)
        self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _Conv(c_in, 448, 1)
        self.branch3x3dbl_2 = _Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _Conv(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        three = torch.cat([self.branch3x3_2a(three), self.branch3x3_2b(three)], 1)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        double = torch.cat([self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), three, double, self.branch_pool(pooled)], 1)


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) to size x size as TensorFlow 1.x ``resize_bilinear`` with
    align_corners=False: the source of output index i is i * in / out (no half-pixel offset), the
    neighbour beyond the last row or column is clamped, columns are interpolated first."""

    def taps(n_in: int):
        source = torch.arange(size, dtype=torch.float32) * torch.tensor(n_in / size, dtype=torch.float32)
        low = source.floor().long().clamp(max=n_in - 1)
        return low, (low + 1).clamp(max=n_in - 1), (source - low).to(x.dtype)

    (top, bottom, fy), (left, right, fx) = taps(x.shape[-2]), taps(x.shape[-1])
    rows = torch.cat([x[..., top, :], x[..., bottom, :]], dim=-2)  # (N, C, 2 * size, W)
    cols = rows[..., left] + (rows[..., right] - rows[..., left]) * fx
    upper, lower = cols[..., :size, :], cols[..., size:, :]
    return upper + (lower - upper) * fy[:, None]


class FidInceptionV3(nn.Module):
    """uint8 images (N, 3, H, W) -> the 2048 pool features (N, 2048), float32. Always in eval mode."""

    num_features = 2048

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b = _BlockA(192, 32)
        self.Mixed_5c = _BlockA(256, 64)
        self.Mixed_5d = _BlockA(288, 64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, 128)
        self.Mixed_6c = _BlockC(768, 160)
        self.Mixed_6d = _BlockC(768, 160)
        self.Mixed_6e = _BlockC(768, 192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)  # only so the state dict matches; the logits are not used
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FidInceptionV3":
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        x = (resize_bilinear_tf1(images.float(), INPUT_SIZE) - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))
