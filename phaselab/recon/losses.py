"""SSIM loss as in fastMRI: 7x7 uniform window, k1 0.01, k2 0.03, data range per sample."""

import torch
from torch import nn
from torch.nn import functional as F


class SSIMLoss(nn.Module):
    """``1 - SSIM`` over valid 7x7 windows, averaged over windows and samples.

    Local variances use the unbiased (N / (N - 1)) window normalization, like fastMRI and skimage.
    """

    def __init__(self, win_size: int = 7, k1: float = 0.01, k2: float = 0.03):
        super().__init__()
        self.win_size, self.k1, self.k2 = win_size, k1, k2
        self.register_buffer("window", torch.ones(1, 1, win_size, win_size) / win_size**2, persistent=False)
        self.cov_norm = win_size**2 / (win_size**2 - 1)

    def ssim_map(self, pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor) -> torch.Tensor:
        """SSIM per valid window, (B, 1, H - win + 1, W - win + 1), for images (B, H, W) or (B, 1, H, W)."""
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        x = pred.float().reshape(pred.shape[0], 1, *pred.shape[-2:])
        y = target.float().reshape(target.shape[0], 1, *target.shape[-2:])
        data_range = torch.as_tensor(data_range, dtype=torch.float32, device=x.device).reshape(-1, 1, 1, 1)
        c1 = (self.k1 * data_range) ** 2
        c2 = (self.k2 * data_range) ** 2
        w = self.window.to(x.device)
        ux, uy = F.conv2d(x, w), F.conv2d(y, w)
        vx = self.cov_norm * (F.conv2d(x * x, w) - ux * ux)
        vy = self.cov_norm * (F.conv2d(y * y, w) - uy * uy)
        vxy = self.cov_norm * (F.conv2d(x * y, w) - ux * uy)
        return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))

    def forward(self, pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor) -> torch.Tensor:
        return 1 - self.ssim_map(pred, target, data_range).mean()

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor) -> torch.Tensor:
        """SSIM (not the loss) of each sample, (B,)."""
        return self.ssim_map(pred, target, data_range).mean(dim=(1, 2, 3))
