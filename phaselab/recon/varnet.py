"""Single-coil end-to-end VarNet (Sriram et al. 2020) without a sensitivity network (SPEC section 6)."""

import torch
from torch import nn

from phaselab.mri.fft import fft2c, ifft2c
from phaselab.recon.unet import NormUnet


class VarNetCascade(nn.Module):
    """One unrolled step: k <- k - eta * M (k - k0) - F(U(F^-1 k)), eta learnable (init 1)."""

    def __init__(self, regularizer: nn.Module):
        super().__init__()
        self.regularizer = regularizer
        self.dc_weight = nn.Parameter(torch.ones(1))

    def forward(self, kspace: torch.Tensor, ref_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        soft_dc = torch.where(
            mask, kspace - ref_kspace, torch.zeros((), dtype=kspace.dtype, device=kspace.device)
        )
        return kspace - self.dc_weight * soft_dc - fft2c(self.regularizer(ifft2c(kspace)))


class VarNet(nn.Module):
    """Cascades of soft data consistency + a normalized U-Net regularizer, on one-coil k-space."""

    def __init__(self, cascades: int = 12, chans: int = 18, pools: int = 4):
        super().__init__()
        self.cascades = nn.ModuleList(VarNetCascade(NormUnet(chans, pools)) for _ in range(cascades))

    def forward(self, masked_kspace: torch.Tensor, mask_columns: torch.Tensor) -> torch.Tensor:
        """masked_kspace complex (B, H, W), mask_columns bool (B, W) or (W,) -> k-space complex (B, H, W)."""
        if not masked_kspace.is_complex() or masked_kspace.ndim != 3:
            shape, dtype = tuple(masked_kspace.shape), masked_kspace.dtype
            raise ValueError(f"masked_kspace must be complex (B, H, W), got {shape} {dtype}")
        mask = mask_columns.to(device=masked_kspace.device, dtype=torch.bool)
        if mask.shape[-1] != masked_kspace.shape[-1] or mask.ndim not in (1, 2):
            raise ValueError(
                f"mask_columns {tuple(mask.shape)} does not fit k-space {tuple(masked_kspace.shape)}"
            )
        mask = mask.unsqueeze(-2)  # (B, 1, W) or (1, W): broadcast over rows
        kspace = masked_kspace
        for cascade in self.cascades:
            kspace = cascade(kspace, masked_kspace, mask)
        return kspace

    @staticmethod
    def image(kspace: torch.Tensor) -> torch.Tensor:
        """Magnitude image |F^-1 k| (B, H, W) float32."""
        return ifft2c(kspace).abs()
